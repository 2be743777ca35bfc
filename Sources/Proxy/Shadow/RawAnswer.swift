public import Diff

/// An answer as read: status, the head's raw bytes, the body. Its fields are parsed only when needed, off the
/// event loop (or, for the few the fast match compares, as byte ranges without allocating).
public struct RawAnswer: Sendable {
    public var status: Int
    public var head: [UInt8]
    public var body: [UInt8]

    /// The head's fields (all of them, or only those named, lowercase).
    public func fields(only names: [String]? = nil) -> [(name: String, value: String)] {
        RawAnswer.fields(of: self.head, only: names)
    }

    public func snapshot(headers names: [String]?) -> ResponseSnapshot {
        ResponseSnapshot(status: self.status, headers: self.fields(only: names), body: self.body)
    }

    /// Calls `body` with the name and the trimmed value of each field of a head that the proxy's parser accepted
    /// (CRLF lines, `name: value`), after the start line.
    static func forEachField(
        in head: UnsafeBufferPointer<UInt8>, _ body: (_ name: Range<Int>, _ value: Range<Int>) -> Void
    ) {
        var lineStart = 0
        var index = 0
        while index + 1 < head.count {
            guard head[index] == UInt8(ascii: "\r"), head[index + 1] == UInt8(ascii: "\n") else {
                index += 1
                continue
            }
            let lineEnd = index
            index += 2
            defer { lineStart = index }
            guard lineStart > 0, let colon = head[lineStart..<lineEnd].firstIndex(of: UInt8(ascii: ":")) else {
                continue
            }
            var valueStart = colon + 1
            var valueEnd = lineEnd
            while valueStart < valueEnd, head[valueStart] == UInt8(ascii: " ") || head[valueStart] == UInt8(ascii: "\t")
            { valueStart += 1 }
            while valueEnd > valueStart,
                head[valueEnd - 1] == UInt8(ascii: " ") || head[valueEnd - 1] == UInt8(ascii: "\t")
            { valueEnd -= 1 }
            body(lineStart..<colon, valueStart..<valueEnd)
        }
    }

    /// Whether a field name (bytes of a head) is `lower` (lowercase bytes), ignoring ASCII case.
    static func nameIs(_ lower: [UInt8], _ name: Range<Int>, in head: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count == lower.count else { return false }
        var offset = 0
        for position in name {
            let byte = head[position]
            if ((byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte) != lower[offset] { return false }
            offset += 1
        }
        return true
    }

    /// The fields of a head (all of them, or only those named, lowercase).
    public static func fields(of head: [UInt8], only names: [String]? = nil) -> [(name: String, value: String)] {
        let wanted = names?.map { Array($0.utf8) }
        var result: [(name: String, value: String)] = []
        head.withUnsafeBufferPointer { head in
            Self.forEachField(in: head) { name, value in
                if let wanted, !wanted.contains(where: { Self.nameIs($0, name, in: head) }) { return }
                result.append(
                    (
                        name: String(decoding: UnsafeBufferPointer(rebasing: head[name]), as: UTF8.self),
                        value: String(decoding: UnsafeBufferPointer(rebasing: head[value]), as: UTF8.self)
                    ))
            }
        }
        return result
    }

    /// The field ranges of a parsed head.
    typealias Fields = [(name: Range<Int>, value: Range<Int>)]

    /// Whether two parsed heads carry the same values, in the same order, for a field (lowercase name bytes),
    /// from the ranges their parse found: no scan, no allocation (the fast match runs on the event loop).
    static func sameValues(
        of name: [UInt8], _ left: UnsafeBufferPointer<UInt8>, _ leftFields: Fields, _ right: UnsafeBufferPointer<UInt8>,
        _ rightFields: Fields
    ) -> Bool {
        var rightIndex = rightFields.startIndex
        func nextRight() -> Range<Int>? {
            while rightIndex < rightFields.endIndex {
                defer { rightIndex += 1 }
                if Self.nameIs(name, rightFields[rightIndex].name, in: right) { return rightFields[rightIndex].value }
            }
            return nil
        }
        for field in leftFields where Self.nameIs(name, field.name, in: left) {
            guard let value = nextRight(), left[field.value].elementsEqual(right[value]) else { return false }
        }
        return nextRight() == nil
    }
}
