/// Writes JSON text with keys in the order they are written, explicit `null`s, and no Foundation round trip.
///
/// The monolith's answers are built with it so that every answer has one byte-exact form: the same entity
/// always serialises to the same bytes, which keeps the outbox payloads, the HTTP answers and the shadow
/// diffs free of noise from key order.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = [false]

    init(capacity: Int = 256) {
        self.bytes.reserveCapacity(capacity)
    }

    var string: String { String(decoding: self.bytes, as: UTF8.self) }

    mutating func beginObject() { self.open(UInt8(ascii: "{")) }
    mutating func endObject() { self.close(UInt8(ascii: "}")) }
    mutating func beginArray() { self.open(UInt8(ascii: "[")) }
    mutating func endArray() { self.close(UInt8(ascii: "]")) }

    private mutating func open(_ bracket: UInt8) {
        self.separate()
        self.bytes.append(bracket)
        self.needsComma.append(false)
    }

    private mutating func close(_ bracket: UInt8) {
        self.needsComma.removeLast()
        self.bytes.append(bracket)
    }

    /// Writes an object key; the next value written is its value.
    mutating func key(_ name: String) {
        self.separate()
        Self.appendQuoted(name, to: &self.bytes)
        self.bytes.append(UInt8(ascii: ":"))
        self.needsComma[self.needsComma.count - 1] = false
    }

    mutating func value(_ value: String?) {
        self.separate()
        if let value { Self.appendQuoted(value, to: &self.bytes) } else { self.appendNull() }
    }

    mutating func value(_ value: Int?) {
        self.separate()
        if let value { self.bytes.append(contentsOf: String(value).utf8) } else { self.appendNull() }
    }

    mutating func value(_ value: Int64?) {
        self.separate()
        if let value { self.bytes.append(contentsOf: String(value).utf8) } else { self.appendNull() }
    }

    mutating func value(_ value: Bool) {
        self.separate()
        self.bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func value(_ values: [String]) {
        self.beginArray()
        for value in values { self.value(value) }
        self.endArray()
    }

    /// Appends JSON text that is already valid (a stored payload, say) as one value.
    mutating func rawValue(_ json: some Collection<UInt8>) {
        self.separate()
        self.bytes.append(contentsOf: json)
    }

    mutating func field(_ name: String, _ value: String?) {
        self.key(name)
        self.value(value)
    }

    mutating func field(_ name: String, _ value: Int?) {
        self.key(name)
        self.value(value)
    }

    mutating func field(_ name: String, _ value: Int64?) {
        self.key(name)
        self.value(value)
    }

    mutating func field(_ name: String, _ value: [String]) {
        self.key(name)
        self.value(value)
    }

    private mutating func appendNull() {
        self.bytes.append(contentsOf: "null".utf8)
    }

    private mutating func separate() {
        let last = self.needsComma.count - 1
        if self.needsComma[last] {
            self.bytes.append(UInt8(ascii: ","))
        } else {
            self.needsComma[last] = true
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendQuoted(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
