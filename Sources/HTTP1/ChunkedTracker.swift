/// Follows chunked framing (RFC 9112 §7.1) across reads: says where the message ends, and where its data
/// is, without buffering it. Chunk extensions are skipped; trailers are passed over.
public struct ChunkedTracker {
    /// Where in the chunked framing the tracker is.
    public enum State: Sendable {
        case size(value: Int, digits: Int)
        case sizeWhitespace(value: Int)
        case extensionPart(value: Int)
        case sizeLF(value: Int)
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine(sawColon: Bool)
        case trailerLF(empty: Bool)
        case done
    }

    /// A tracker at the start of a chunked body.
    public init() {}

    /// Where in the framing the bytes so far end.
    public private(set) var state: State = .size(value: 0, digits: 0)

    /// The message ended (its trailers were read).
    public var isDone: Bool {
        if case .done = self.state { return true }
        return false
    }

    /// Consumes `bytes`; returns how many belong to this message (the rest is the next message's), and
    /// calls `data` with each range that is chunk data. Throws on malformed framing.
    public mutating func consume(
        _ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void = { _ in }
    ) throws(HeadError) -> Int {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch self.state {
            case .size(let value, let digits):
                if let digit = Self.hexValue(byte) {
                    guard digits < 15 else { throw .malformed("a chunk size too large") }
                    self.state = .size(value: value * 16 + digit, digits: digits + 1)
                } else if digits > 0, byte == 0x3B {
                    self.state = .extensionPart(value: value)
                } else if digits > 0, byte == 0x20 || byte == 0x09 {
                    self.state = .sizeWhitespace(value: value)
                } else if digits > 0, byte == 0x0D {
                    self.state = .sizeLF(value: value)
                } else {
                    throw .malformed("a malformed chunk size")
                }
                index += 1
            case .sizeWhitespace(let value):
                // Whitespace after the size may only lead to an extension.
                if byte == 0x3B {
                    self.state = .extensionPart(value: value)
                } else if byte != 0x20 && byte != 0x09 {
                    throw .malformed("a malformed chunk size")
                }
                index += 1
            case .extensionPart(let value):
                if byte == 0x0D {
                    self.state = .sizeLF(value: value)
                } else if byte == 0x0A || (byte < 0x20 && byte != 0x09) {
                    throw .malformed("a malformed chunk extension")
                }
                index += 1
            case .sizeLF(let value):
                guard byte == 0x0A else { throw .malformed("a chunk size line without CRLF") }
                self.state = value == 0 ? .trailerLineStart : .data(remaining: value)
                index += 1
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                data(index..<(index + take))
                index += take
                self.state = remaining - take == 0 ? .dataCR : .data(remaining: remaining - take)
            case .dataCR:
                guard byte == 0x0D else { throw .malformed("chunk data longer than its size") }
                self.state = .dataLF
                index += 1
            case .dataLF:
                guard byte == 0x0A else { throw .malformed("chunk data without CRLF") }
                self.state = .size(value: 0, digits: 0)
                index += 1
            case .trailerLineStart:
                if byte == 0x0D {
                    self.state = .trailerLF(empty: true)
                } else {
                    guard HTTPHeadParser.isTokenByte(byte) else { throw .malformed("a malformed trailer field") }
                    self.state = .trailerLine(sawColon: false)
                }
                index += 1
            case .trailerLine(let sawColon):
                if byte == 0x0D {
                    guard sawColon else { throw .malformed("a trailer field without ':'") }
                    self.state = .trailerLF(empty: false)
                } else if byte == 0x3A {
                    self.state = .trailerLine(sawColon: true)
                } else if (byte < 0x20 && byte != 0x09) || byte == 0x7F {
                    throw .malformed("a control character in a trailer")
                } else if !sawColon, !HTTPHeadParser.isTokenByte(byte) {
                    throw .malformed("a malformed trailer field")
                }
                index += 1
            case .trailerLF(let empty):
                guard byte == 0x0A else { throw .malformed("a trailer line without CRLF") }
                index += 1
                if empty {
                    self.state = .done
                    return index
                }
                self.state = .trailerLineStart
            case .done:
                return index
            }
        }
        return index
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }
}
