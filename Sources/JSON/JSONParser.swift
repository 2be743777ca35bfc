/// Why a text is not acceptable JSON, and where (byte offset, line and column, from 1).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var offset: Int
    public var line: Int
    public var column: Int

    public var description: String { "line \(self.line), column \(self.column): \(self.reason)" }
}

extension JSONParseError {
    /// The error at byte `offset` of `bytes` (at most its end), its line and column counted there.
    public init(reason: String, offset: Int, in bytes: UnsafeBufferPointer<UInt8>) {
        let offset = min(offset, bytes.count)
        var line = 1
        var lineStart = 0
        for position in 0..<offset where bytes[position] == UInt8(ascii: "\n") {
            line += 1
            lineStart = position + 1
        }
        self.init(reason: reason, offset: offset, line: line, column: offset - lineStart + 1)
    }
}

/// What a backslash escape other than `\u` stands for (`n` → 0x0A, `"` → `"`, …); nil for no such escape.
@inlinable
public func jsonEscapedByte(_ escaped: UInt8) -> UInt8? {
    switch escaped {
    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escaped
    case UInt8(ascii: "b"): 0x08
    case UInt8(ascii: "f"): 0x0C
    case UInt8(ascii: "n"): 0x0A
    case UInt8(ascii: "r"): 0x0D
    case UInt8(ascii: "t"): 0x09
    default: nil
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes: no trailing commas, no comments, no duplicate keys, valid
/// UTF-8 only, nesting bounded, numbers that fit a Double. Hostile input gives an error, never a crash.
public struct JSONParser {
    /// Deepest nesting of arrays and objects accepted.
    public static let defaultMaxDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let maxDepth: Int

    public static func parse(_ bytes: [UInt8], maxDepth: Int = Self.defaultMaxDepth) throws(JSONParseError) -> JSONValue
    {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer, maxDepth: maxDepth)
            do throws(JSONParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String, maxDepth: Int = Self.defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try self.parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? self.index, in: self.bytes)
    }

    private mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        // A UTF-8 byte order mark is tolerated.
        if self.bytes.count >= 3, self.bytes[0] == 0xEF, self.bytes[1] == 0xBB, self.bytes[2] == 0xBF { self.index = 3 }
        self.skipWhitespace()
        guard self.index < self.bytes.count else { throw self.fail("the document is empty") }
        let value = try self.parseValue(depth: 0)
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.fail("unexpected text after the JSON value") }
        return value
    }

    private mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard self.index < self.bytes.count else { throw self.fail("unexpected end of the document") }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"):
            try self.expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try self.parseNumber())
        default: throw self.fail("unexpected character '\(Self.printable(self.bytes[self.index]))'")
        }
    }

    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.fail("unexpected end of the document") }
        let matches = literal.withUTF8Buffer { expected in
            (0..<count).allSatisfy { self.bytes[self.index + $0] == expected[$0] }
        }
        guard matches else { throw self.fail("unexpected character '\(Self.printable(self.bytes[self.index]))'") }
        self.index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if try self.opensEmpty(UInt8(ascii: "}"), depth: depth) { return .object([]) }
        var members: [(key: String, value: JSONValue)] = []
        var keys = Set<String>()
        while true {
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                throw self.fail(
                    self.index < self.bytes.count ? "expected a key in double quotes" : "unexpected end of the document"
                )
            }
            let keyOffset = self.index
            let key = try self.parseString()
            guard keys.insert(key).inserted else { throw self.fail("duplicate key \"\(key)\"", at: keyOffset) }
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ":") else {
                throw self.fail("expected ':' after a key")
            }
            self.index += 1
            self.skipWhitespace()
            members.append((key, try self.parseValue(depth: depth)))
            if try self.endsContainer(UInt8(ascii: "}"), "expected ',' or '}' in an object") {
                return .object(members)
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if try self.opensEmpty(UInt8(ascii: "]"), depth: depth) { return .array([]) }
        var items: [JSONValue] = []
        while true {
            self.skipWhitespace()
            items.append(try self.parseValue(depth: depth))
            if try self.endsContainer(UInt8(ascii: "]"), "expected ',' or ']' in an array") { return .array(items) }
        }
    }

    /// Steps over a container's opening bracket (refusing one nested deeper than `maxDepth`): true when `closing`
    /// follows at once (consumed), an empty container.
    private mutating func opensEmpty(_ closing: UInt8, depth: Int) throws(JSONParseError) -> Bool {
        guard depth <= self.maxDepth else { throw self.fail("nesting deeper than \(self.maxDepth) levels") }
        self.index += 1
        self.skipWhitespace()
        guard self.index < self.bytes.count, self.bytes[self.index] == closing else { return false }
        self.index += 1
        return true
    }

    /// After a member or an item: true at the container's end (`closing`, consumed), false after a `,` (consumed);
    /// anything else is refused with `expected`.
    private mutating func endsContainer(_ closing: UInt8, _ expected: String) throws(JSONParseError) -> Bool {
        self.skipWhitespace()
        guard self.index < self.bytes.count else { throw self.fail("unexpected end of the document") }
        switch self.bytes[self.index] {
        case UInt8(ascii: ","):
            self.index += 1
            return false
        case closing:
            self.index += 1
            return true
        default: throw self.fail(expected)
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = self.index
        func digits() -> Int {
            let from = self.index
            while self.index < self.bytes.count,
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index])
            { self.index += 1 }
            return self.index - from
        }
        if self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
        let integerStart = self.index
        let integerDigits = digits()
        guard integerDigits > 0 else { throw self.fail("a number needs digits") }
        if integerDigits > 1, self.bytes[integerStart] == UInt8(ascii: "0") {
            throw self.fail("a number may not start with 0", at: integerStart)
        }
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
            self.index += 1
            guard digits() > 0 else { throw self.fail("a number needs digits after '.'") }
        }
        if self.index < self.bytes.count,
            self.bytes[self.index] == UInt8(ascii: "e") || self.bytes[self.index] == UInt8(ascii: "E")
        {
            self.index += 1
            if self.index < self.bytes.count,
                self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-")
            {
                self.index += 1
            }
            guard digits() > 0 else { throw self.fail("a number needs digits in its exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw self.fail("number \(text.prefix(40)) is too large", at: start)
        }
        return value
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])
                guard let text = String(validating: slice, as: UTF8.self) else {
                    throw self.fail("invalid UTF-8 in a string", at: start)
                }
                self.index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.fail("control character in a string (escape it)") }
            self.index += 1
        }
        var buffer = Array(UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]))
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: buffer, as: UTF8.self) else {
                    throw self.fail("invalid UTF-8 in a string", at: start)
                }
                self.index += 1
                return text
            case UInt8(ascii: "\\"):
                self.index += 1
                guard self.index < self.bytes.count else { throw self.fail("unexpected end of the document") }
                let escaped = self.bytes[self.index]
                self.index += 1
                if let byte = jsonEscapedByte(escaped) {
                    buffer.append(byte)
                    continue
                }
                switch escaped {
                case UInt8(ascii: "u"):
                    var scalar = try self.parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard self.index + 1 < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
                            self.bytes[self.index + 1] == UInt8(ascii: "u")
                        else {
                            throw self.fail("unpaired surrogate in a \\u escape")
                        }
                        self.index += 2
                        let low = try self.parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw self.fail("unpaired surrogate in a \\u escape")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw self.fail("unpaired surrogate in a \\u escape")
                    }
                    buffer.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default: throw self.fail("invalid escape '\\\(Self.printable(escaped))'")
                }
            default:
                if byte < 0x20 { throw self.fail("control character in a string (escape it)") }
                buffer.append(byte)
                self.index += 1
            }
        }
        throw self.fail("unterminated string", at: start - 1)
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.fail("unexpected end of the document") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw self.fail("invalid hex digit in a \\u escape")
            }
            value = value * 16 + digit
            self.index += 1
        }
        return value
    }
}
