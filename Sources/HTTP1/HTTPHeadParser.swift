public import NIOCore

/// Parses message heads strictly: CRLF line endings, token field names with the colon right after,
/// no obsolete line folding, no control characters in values, one Content-Length at most, never both
/// Content-Length and Transfer-Encoding, and no transfer coding but `chunked`. What is ambiguous
/// between two parsers (the root of request smuggling) is refused.
public enum HTTPHeadParser {
    /// Looks for the end of a head (`\r\n\r\n`) in `buffer` from `searchFrom`; returns the head's length.
    public static func headLength(in buffer: ByteBuffer, searchFrom: Int) -> Int? {
        buffer.withUnsafeReadableBytes { raw in
            var index = max(0, searchFrom - 3)
            while index + 3 < raw.count {
                let last = raw[index + 3]
                if last == 0x0A {
                    if raw[index + 2] == 0x0D, raw[index + 1] == 0x0A, raw[index] == 0x0D { return index + 4 }
                    index += 1
                } else if last == 0x0D {
                    index += 1
                } else {
                    // No CR or LF at index + 3: no terminator can start at index…index + 3.
                    index += 4
                }
            }
            return nil
        }
    }

    /// Whether any byte of `word` is below 0x20 or is 0x7F (the bytes a field value may not hold, tab and CR among
    /// them): exact when false, so a word it passes needs no byte-by-byte look.
    @inline(__always)
    static func hasControlOrDelete(_ word: UInt64) -> Bool {
        let high: UInt64 = 0x8080_8080_8080_8080
        let below = (word &- 0x2020_2020_2020_2020) & ~word & high
        let delete = word ^ 0x7F7F_7F7F_7F7F_7F7F
        let deletes = (delete &- 0x0101_0101_0101_0101) & ~delete & high
        return (below | deletes) != 0
    }

    /// Whether any byte of `word` is below 0x0E (CR and LF among them): exact when false.
    @inline(__always)
    static func hasByteBelow14(_ word: UInt64) -> Bool {
        ((word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080) != 0
    }

    /// Each byte's class, by its value: `1` a token byte (RFC 9110: a field name's), `:` the colon, `0` any other.
    /// A literal, so reading it is a load from constant memory (no lazy initialization, no bounds check).
    @usableFromInline
    static var byteClasses: StaticString {
        """
        0000000000000000000000000000000001011111001101101111111111:00000\
        0111111111111111111111111110001111111111111111111111111111101010\
        0000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000
        """
    }

    /// RFC 9110 token characters (field names, methods): a bit per ASCII byte, in two words.
    @inlinable @inline(__always)
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        // ! # $ % & ' * + - . 0-9 | A-Z ^ _ ` a-z | ~
        let low: UInt64 = 0x03ff_6cfa_0000_0000
        let high: UInt64 = 0x57ff_ffff_c7ff_fffe
        return byte < 64 ? (low >> UInt64(byte)) & 1 == 1 : byte < 128 && (high >> UInt64(byte - 64)) & 1 == 1
    }

    /// Parses a request head (the bytes up to and including the empty line).
    public static func parseRequest(_ bytes: ByteBuffer) throws(HeadError) -> HTTPHead {
        var storage: [HTTPHead.Field] = []
        return try self.parse(bytes, isRequest: true, fieldStorage: &storage)
    }

    /// Parses a request head into the field array `fieldStorage` held (it is left empty): an array that the last
    /// head let go of is reused without an allocation.
    public static func parseRequest(
        _ bytes: ByteBuffer, fieldStorage: inout [HTTPHead.Field]
    ) throws(HeadError) -> HTTPHead {
        try self.parse(bytes, isRequest: true, fieldStorage: &fieldStorage)
    }

    /// Parses a response head.
    public static func parseResponse(_ bytes: ByteBuffer) throws(HeadError) -> HTTPHead {
        var storage: [HTTPHead.Field] = []
        return try self.parse(bytes, isRequest: false, fieldStorage: &storage)
    }

    /// Parses a response head into the field array `fieldStorage` held (see `parseRequest(_:fieldStorage:)`).
    public static func parseResponse(
        _ bytes: ByteBuffer, fieldStorage: inout [HTTPHead.Field]
    ) throws(HeadError) -> HTTPHead {
        try self.parse(bytes, isRequest: false, fieldStorage: &fieldStorage)
    }

    /// ASCII case-insensitive comparison of `raw[range]` with a lowercase ASCII name.
    @inlinable @inline(__always)
    public static func equalsLowercase(
        _ raw: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ lower: StaticString
    ) -> Bool {
        guard range.count == lower.utf8CodeUnitCount else { return false }
        let expected = lower.utf8Start
        var offset = 0
        for position in range {
            let byte = raw[position]
            let lowered = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if lowered != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    private static func parse(
        _ bytes: ByteBuffer, isRequest: Bool, fieldStorage: inout [HTTPHead.Field]
    ) throws(HeadError) -> HTTPHead {
        try bytes.withUnsafeReadableBytes { (raw) throws(HeadError) -> HTTPHead in
            try Self.parse(
                raw.assumingMemoryBound(to: UInt8.self), bytes: bytes, isRequest: isRequest,
                fieldStorage: &fieldStorage)
        }
    }

    /// The parse proper, over the head's bytes (`view`, the readable bytes of `bytes`) without bounds checks per byte.
    private static func parse(
        _ view: UnsafeBufferPointer<UInt8>, bytes: ByteBuffer, isRequest: Bool, fieldStorage: inout [HTTPHead.Field]
    ) throws(HeadError) -> HTTPHead {
        let count = view.count
        guard let base = view.baseAddress else { throw .malformed("an unterminated line") }

        func lineEnd(from start: Int) throws(HeadError) -> Int {
            var position = start
            while true {
                // Eight bytes at a time while none can be CR or LF (none below 0x0E).
                while position &+ 8 <= count,
                    !Self.hasByteBelow14(UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                {
                    position &+= 8
                }
                guard position < count else { break }
                let byte = view[position]
                if byte == 0x0D {
                    guard position + 1 < count, view[position + 1] == 0x0A else {
                        throw .malformed("a bare CR in the head")
                    }
                    return position
                }
                if byte == 0x0A { throw .malformed("a bare LF in the head (lines end with CRLF)") }
                position += 1
            }
            throw .malformed("an unterminated line")
        }

        // Start line.
        let startEnd = try lineEnd(from: 0)
        var firstSpace = 0
        while firstSpace < startEnd, view[firstSpace] != 0x20 { firstSpace += 1 }
        guard firstSpace < startEnd else { throw .malformed("a malformed start line") }
        let first = 0..<firstSpace
        var head: HTTPHead
        if isRequest {
            var secondSpace = firstSpace + 1
            while secondSpace < startEnd, view[secondSpace] != 0x20 { secondSpace += 1 }
            guard secondSpace < startEnd else { throw .malformed("a malformed request line") }
            let target = (firstSpace + 1)..<secondSpace
            let version = (secondSpace + 1)..<startEnd
            guard !first.isEmpty else { throw .malformed("an invalid method") }
            for position in first where !Self.isTokenByte(view[position]) { throw .malformed("an invalid method") }
            guard !target.isEmpty else { throw .malformed("an invalid request target") }
            for position in target where view[position] <= 0x20 || view[position] == 0x7F {
                throw .malformed("an invalid request target")
            }
            let minor = try Self.version(view, version)
            head = HTTPHead(bytes: bytes, startLine: (first, target, version), versionMinor: minor)
            // absolute-form (`http://host/path?q`): routed and forwarded by its path, in origin-form, and its
            // authority stands for Host (RFC 9112 §3.2.2).
            if view[target.lowerBound] != 0x2F, let schemeEnd = Self.absoluteFormAuthorityStart(view, target) {
                var pathStart = schemeEnd
                while pathStart < target.upperBound, view[pathStart] != 0x2F, view[pathStart] != 0x3F { pathStart += 1 }
                head.absoluteAuthority = schemeEnd..<pathStart
                head.startLine.second = pathStart..<target.upperBound
            }
        } else {
            let minor = try Self.version(view, first)
            let codeEnd = min(firstSpace + 4, startEnd)
            let code = (firstSpace + 1)..<codeEnd
            guard code.count == 3, codeEnd == startEnd || view[codeEnd] == 0x20 else {
                throw .malformed("an invalid status code")
            }
            var status: UInt = 0
            for position in code {
                let digit = view[position]
                guard digit >= 0x30, digit <= 0x39 else { throw .malformed("an invalid status code") }
                status = status * 10 + UInt(digit - 0x30)
            }
            head = HTTPHead(
                bytes: bytes, startLine: (first, code, min(codeEnd + 1, startEnd)..<startEnd), versionMinor: minor)
            head.parsedStatus = status
        }
        // The storage handed in becomes the head's (unique if its last head is gone: emptied in place).
        swap(&head.fields, &fieldStorage)
        head.fields.removeAll(keepingCapacity: true)
        head.fields.reserveCapacity(16)
        var index = startEnd + 2

        let classes = Self.byteClasses.utf8Start
        var contentLengths = 0
        var transferEncodings = 0
        var hosts = 0
        while index < count {
            // One pass over each field line: the name up to its colon (token bytes), then the value up to CR
            // (no control characters); the errors are those of the line's first defect.
            let firstByte = view[index]
            if firstByte == 0x0D {
                guard index + 1 < count, view[index + 1] == 0x0A else { throw .malformed("a bare CR in the head") }
                break  // the empty line
            }
            if firstByte == 0x20 || firstByte == 0x09 { throw .malformed("obsolete line folding") }
            // The name: token bytes, by table (one load per byte), up to the first byte that is not one.
            var colon = index
            while colon < count, classes[Int(view[colon])] == 0x31 { colon &+= 1 }
            guard colon < count else { throw .malformed("an unterminated line") }
            let stop = view[colon]
            if stop != 0x3A {
                switch stop {
                case 0x0D:
                    guard colon + 1 < count, view[colon + 1] == 0x0A else { throw .malformed("a bare CR in the head") }
                    throw .malformed("a header line without ':'")
                case 0x0A: throw .malformed("a bare LF in the head (lines end with CRLF)")
                default: throw .malformed("an invalid header name")
                }
            }
            guard colon > index else { throw .malformed("an invalid header name") }
            var end = colon + 1
            while true {
                // Eight bytes at a time while none is a control byte or DEL: the value's common bytes cost a few
                // instructions per word instead of per byte. The byte loop below sees the rest (CR, tab, defects).
                while end &+ 8 <= count,
                    !Self.hasControlOrDelete(UnsafeRawPointer(base + end).loadUnaligned(as: UInt64.self))
                {
                    end &+= 8
                }
                guard end < count else { throw .malformed("an unterminated line") }
                let byte = view[end]
                if byte == 0x0D {
                    guard end + 1 < count, view[end + 1] == 0x0A else { throw .malformed("a bare CR in the head") }
                    break
                }
                if byte < 0x20 && byte != 0x09 || byte == 0x7F {
                    throw .malformed(
                        byte == 0x0A
                            ? "a bare LF in the head (lines end with CRLF)" : "a control character in a header value")
                }
                end += 1
            }
            let name = index..<colon
            var valueStart = colon + 1
            var valueEnd = end
            while valueStart < valueEnd, view[valueStart] == 0x20 || view[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, view[valueEnd - 1] == 0x20 || view[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            let value = valueStart..<valueEnd
            head.fields.append((name, value))

            switch name.count {
            case 14 where Self.equalsLowercase(view, name, "content-length"):
                contentLengths += 1
                guard contentLengths == 1 else { throw .malformed("several Content-Length headers") }
                guard !value.isEmpty, value.count <= 18 else { throw .malformed("a malformed Content-Length") }
                var length = 0
                for position in value {
                    let byte = view[position]
                    guard byte >= 0x30, byte <= 0x39 else { throw .malformed("a malformed Content-Length") }
                    length = length * 10 + Int(byte - 0x30)
                }
                head.contentLength = length
            case 17 where Self.equalsLowercase(view, name, "transfer-encoding"):
                transferEncodings += 1
                guard transferEncodings == 1, Self.equalsLowercase(view, value, "chunked") else {
                    throw .malformed("a Transfer-Encoding other than chunked")
                }
                head.chunked = true
            case 17 where Self.equalsLowercase(view, name, "strangler-dry-run"):
                head.hasDryRunField = true
                head.hasInternalFields = true
            case 7 where Self.equalsLowercase(view, name, "upgrade"):
                head.hasUpgradeField = true
            case 6 where Self.equalsLowercase(view, name, "expect"):
                if Self.equalsLowercase(view, value, "100-continue") { head.expectsContinue = true }
            case 4 where Self.equalsLowercase(view, name, "host"):
                hosts += 1
            case 10 where Self.equalsLowercase(view, name, "connection"):
                if Self.equalsLowercase(view, value, "keep-alive") {
                    head.hasKeepAlive = true
                } else if Self.equalsLowercase(view, value, "close") {
                    head.hasClose = true
                } else {
                    for token in head.string(value).split(separator: ",") {
                        let token = String(
                            token.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
                                .reversed()
                        ).lowercased()
                        switch token {
                        case "close": head.hasClose = true
                        case "keep-alive": head.hasKeepAlive = true
                        default: head.connectionNamedFields.append(token)
                        }
                    }
                }
            default:
                // One test of the first byte on the common path: only names that start with `s` look further.
                if name.count >= 10, view[name.lowerBound] | 0x20 == 0x73, Self.isInternalName(view, name) {
                    head.hasInternalFields = true
                }
            }
            index = end + 2
        }
        if head.contentLength != nil, head.chunked { throw .malformed("both Content-Length and Transfer-Encoding") }
        if isRequest {
            if head.chunked, head.versionMinor == 0 { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
            if hosts > 1 { throw .malformed("several Host headers") }
            if hosts == 0, head.versionMinor >= 1, head.absoluteAuthority == nil { throw .malformed("no Host header") }
        }
        return head
    }

    /// Whether a field name starts with `strangler-` (any case): the proxy's own fields.
    @inlinable
    public static func isInternalName(_ raw: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> Bool {
        name.count >= 10 && Self.equalsLowercase(raw, name.lowerBound..<(name.lowerBound + 10), "strangler-")
    }

    /// Where the authority starts in an absolute-form target (`http://` or `https://`), if it is one.
    private static func absoluteFormAuthorityStart(_ view: UnsafeBufferPointer<UInt8>, _ target: Range<Int>) -> Int? {
        for scheme in ["http://", "https://"] {
            let bytes = Array(scheme.utf8)
            guard target.count > bytes.count else { continue }
            var matches = true
            for (offset, expected) in bytes.enumerated() {
                let byte = view[target.lowerBound + offset]
                if ((byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte) != expected {
                    matches = false
                    break
                }
            }
            if matches { return target.lowerBound + bytes.count }
        }
        return nil
    }

    private static func version(_ view: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(HeadError) -> Int {
        let start = range.lowerBound
        guard range.count == 8, view[start] == 0x48, view[start + 1] == 0x54, view[start + 2] == 0x54,
            view[start + 3] == 0x50,
            view[start + 4] == 0x2F, view[start + 5] == 0x31, view[start + 6] == 0x2E
        else {
            throw .malformed("an unsupported HTTP version")
        }
        let minor = view[range.lowerBound + 7]
        guard minor == 0x30 || minor == 0x31 else { throw .malformed("an unsupported HTTP version") }
        return Int(minor - 0x30)
    }
}
