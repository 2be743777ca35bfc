/// Changes a JSON text into another document by replacing values where they stand, so that everything else the text's
/// author chose (spacing, line breaks, key order, number spelling) stays as it was.
///
/// ```swift
/// let text = #"{ "routes": [ { "id": "a", "stage": "transform" } ] }"#
/// var document = try JSONParser.parse(text)   // … set /routes/0/stage to "coexist" …
/// JSONTextEdit.editing(text, into: document)
/// // { "routes": [ { "id": "a", "stage": "coexist" } ] }
/// ```
public enum JSONTextEdit {
    /// `text` changed into `target` by replacing only the scalar values (strings, numbers, booleans, null) that differ,
    /// when `target` has the shape of the text's document: the same keys in the same order and the same array lengths.
    /// Nil when the shapes differ, or when `text` is not valid JSON.
    public static func editing(_ text: String, into target: JSONValue) -> String? {
        let bytes = Array(text.utf8)
        guard let source = try? JSONParser.parse(bytes) else { return nil }
        var changes: [[Int]: JSONValue] = [:]
        guard Self.scalarChanges(from: source, to: target, at: [], into: &changes) else { return nil }
        guard !changes.isEmpty else { return text }
        var spans: [(range: Range<Int>, value: JSONValue)] = []
        var scanner = SpanScanner(bytes: bytes, wanted: changes)
        scanner.skipWhitespace()
        scanner.value(at: [], into: &spans)
        guard spans.count == changes.count else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 16)
        var copied = 0
        for span in spans.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            output += bytes[copied..<span.range.lowerBound]
            output += Array(span.value.jsonText.utf8)
            copied = span.range.upperBound
        }
        output += bytes[copied...]
        // The edit must give exactly the target; anything else (it cannot happen, but the file is the table) is
        // refused.
        guard let edited = try? JSONParser.parse(output), edited == target else { return nil }
        return String(decoding: output, as: UTF8.self)
    }

    /// Collects, by their path (a child's position in its object or array at each level), the scalars of `target` that
    /// differ from `source`; false when the two differ in shape.
    private static func scalarChanges(
        from source: JSONValue, to target: JSONValue, at path: [Int], into changes: inout [[Int]: JSONValue]
    ) -> Bool {
        switch (source, target) {
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (index, (old, new)) in zip(a, b).enumerated() {
                guard old.key == new.key,
                    Self.scalarChanges(from: old.value, to: new.value, at: path + [index], into: &changes)
                else { return false }
            }
            return true
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for (index, (old, new)) in zip(a, b).enumerated() {
                guard Self.scalarChanges(from: old, to: new, at: path + [index], into: &changes) else { return false }
            }
            return true
        case (.object, _), (.array, _), (_, .object), (_, .array):
            return false
        default:
            if source != target { changes[path] = target }
            return true
        }
    }

    /// Finds the byte ranges of the wanted scalars in a text already known to be valid JSON.
    private struct SpanScanner {
        let bytes: [UInt8]
        let wanted: [[Int]: JSONValue]
        var index = 0

        mutating func skipWhitespace() {
            while self.index < self.bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(self.bytes[self.index]) {
                self.index += 1
            }
        }

        mutating func value(at path: [Int], into spans: inout [(range: Range<Int>, value: JSONValue)]) {
            guard self.index < self.bytes.count else { return }
            switch self.bytes[self.index] {
            case UInt8(ascii: "{"): self.members(at: path, closedBy: UInt8(ascii: "}"), keyed: true, into: &spans)
            case UInt8(ascii: "["): self.members(at: path, closedBy: UInt8(ascii: "]"), keyed: false, into: &spans)
            default:
                let start = self.index
                if self.bytes[self.index] == UInt8(ascii: "\"") {
                    self.string()
                } else {
                    while self.index < self.bytes.count, !Self.ends(self.bytes[self.index]) { self.index += 1 }
                }
                if let value = self.wanted[path] { spans.append((start..<self.index, value)) }
            }
        }

        /// An object's members (`keyed`) or an array's elements, the opening bracket at `index`.
        mutating func members(
            at path: [Int], closedBy close: UInt8, keyed: Bool,
            into spans: inout [(range: Range<Int>, value: JSONValue)]
        ) {
            self.index += 1
            var position = 0
            self.skipWhitespace()
            while self.index < self.bytes.count, self.bytes[self.index] != close {
                if keyed {
                    self.string()
                    self.skipWhitespace()
                    self.index += 1  // :
                    self.skipWhitespace()
                }
                self.value(at: path + [position], into: &spans)
                position += 1
                self.skipWhitespace()
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ",") { self.index += 1 }
                self.skipWhitespace()
            }
            self.index += 1
        }

        /// Skips a string, quotes included.
        mutating func string() {
            self.index += 1
            while self.index < self.bytes.count, self.bytes[self.index] != UInt8(ascii: "\"") {
                self.index += self.bytes[self.index] == UInt8(ascii: "\\") ? 2 : 1
            }
            self.index += 1
        }

        static func ends(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
                || [0x20, 0x09, 0x0A, 0x0D].contains(byte)
        }
    }
}
