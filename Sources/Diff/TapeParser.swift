import JSON

/// Builds the tape of a ``JSONDocument`` in one pass, without recursion. Strings are scanned 8 bytes at a time.
struct TapeParser {
    private let base: UnsafePointer<UInt8>
    private let count: Int
    private let maxDepth: Int
    private var position = 0
    private var nodes: [TapeNode] = []
    /// Fingerprints and node indices of the keys of the objects being parsed, to refuse duplicate keys.
    private var keyPrints: [UInt64] = []
    private var keyNodes: [Int] = []

    private struct Frame {
        var node: Int
        var count: Int
        var isObject: Bool
        var keyMark: Int
    }

    /// `bytes` must stay valid while parsing.
    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        // An empty buffer may have no address; the parser never reads it (count is 0).
        self.base = UnsafePointer(bytes.baseAddress) ?? UnsafePointer(bitPattern: 1)!
        self.count = bytes.count
        self.maxDepth = maxDepth
    }

    mutating func parse() throws(JSONParseError) -> [TapeNode] {
        guard self.count < Int(UInt32.max) else {
            throw self.fail("documents of 4 GiB or more are not supported", at: 0)
        }
        if self.count >= 3, self.base[0] == 0xEF, self.base[1] == 0xBB, self.base[2] == 0xBF { self.position = 3 }
        self.skipWhitespace()
        guard self.position < self.count else { throw self.fail("the document is empty") }
        self.nodes.reserveCapacity(self.count / 10 + 16)
        try self.parseValues()
        self.skipWhitespace()
        guard self.position == self.count else { throw self.fail("unexpected text after the JSON value") }
        return self.nodes
    }

    func fail(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(
            reason: reason, offset: offset ?? self.position,
            in: UnsafeBufferPointer(start: self.base, count: self.count))
    }

    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while self.position < self.count {
            let byte = self.base[self.position]
            guard byte <= 0x20, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            self.position += 1
        }
    }

    // MARK: - Values

    private mutating func parseValues() throws(JSONParseError) {
        var stack: [Frame] = []
        var frame = Frame(node: -1, count: 0, isObject: false, keyMark: 0)
        var inContainer = false
        value: while true {
            self.skipWhitespace()
            guard self.position < self.count else { throw self.fail("unexpected end of the document") }
            let byte = self.base[self.position]
            switch byte {
            case UInt8(ascii: "\""):
                try self.parseString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = byte == UInt8(ascii: "{")
                let depth = stack.count + (inContainer ? 1 : 0) + 1
                guard depth <= self.maxDepth else { throw self.fail("nesting deeper than \(self.maxDepth) levels") }
                if inContainer { stack.append(frame) }
                inContainer = true
                frame = Frame(node: self.nodes.count, count: 0, isObject: isObject, keyMark: self.keyPrints.count)
                self.nodes.append(
                    TapeNode(
                        tag: isObject ? TapeNode.object : TapeNode.array, start: UInt32(self.position), end: 0, next: 0)
                )
                self.position += 1
                self.skipWhitespace()
                guard self.position < self.count else { throw self.fail("unexpected end of the document") }
                let closing = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if self.base[self.position] == closing {
                    self.position += 1
                    self.close(frame)
                    if let outer = stack.popLast() { frame = outer } else { inContainer = false }
                } else {
                    if isObject { try self.parseKey() }
                    continue value
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try self.parseNumber()
            case UInt8(ascii: "t"):
                try self.expectLiteral(0x6575_7274, length: 4)  // "true"
                self.appendLiteral(TapeNode.true, length: 4)
            case UInt8(ascii: "f"):
                try self.expectLiteral(0x736C_6166, length: 4)  // "fals", then "e"
                guard self.position < self.count else { throw self.fail("unexpected end of the document") }
                guard self.base[self.position] == UInt8(ascii: "e") else {
                    throw self.fail("unexpected character '\(Self.printable(self.base[self.position]))'")
                }
                self.position += 1
                self.appendLiteral(TapeNode.false, length: 5)
            case UInt8(ascii: "n"):
                try self.expectLiteral(0x6C6C_756E, length: 4)  // "null"
                self.appendLiteral(TapeNode.null, length: 4)
            default:
                throw self.fail("unexpected character '\(Self.printable(byte))'")
            }
            // A value is complete: what follows it in its container.
            while true {
                guard inContainer else { return }
                self.skipWhitespace()
                guard self.position < self.count else { throw self.fail("unexpected end of the document") }
                let byte = self.base[self.position]
                if byte == UInt8(ascii: ",") {
                    self.position += 1
                    frame.count += 1
                    if frame.isObject {
                        self.skipWhitespace()
                        try self.parseKey()
                    }
                    continue value
                }
                guard byte == (frame.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                    throw self.fail(
                        frame.isObject ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
                }
                self.position += 1
                frame.count += 1
                guard frame.count <= TapeNode.maxCount else {
                    throw self.fail("more than \(TapeNode.maxCount) members in one container")
                }
                if frame.isObject { try self.checkDuplicateKeys(frame) }
                self.close(frame)
                if let outer = stack.popLast() { frame = outer } else { inContainer = false }
            }
        }
    }

    private mutating func close(_ frame: Frame) {
        self.nodes[frame.node].tag |= UInt32(frame.count) << TapeNode.countShift
        self.nodes[frame.node].end = UInt32(self.position)
        self.nodes[frame.node].next = UInt32(self.nodes.count)
        if frame.isObject {
            self.keyPrints.removeLast(self.keyPrints.count - frame.keyMark)
            self.keyNodes.removeLast(self.keyNodes.count - frame.keyMark)
        }
    }

    /// Appends the node of a literal (`true`, `false`, `null`) of `length` bytes that ends where parsing is.
    @inline(__always)
    private mutating func appendLiteral(_ tag: UInt32, length: Int) {
        self.nodes.append(
            TapeNode(
                tag: tag, start: UInt32(self.position - length), end: UInt32(self.position),
                next: UInt32(self.nodes.count + 1)))
    }

    @inline(__always)
    private mutating func expectLiteral(_ expected: UInt32, length: Int) throws(JSONParseError) {
        guard self.position + length <= self.count else {
            // Report the first byte that does not fit, or the end.
            var index = self.position
            let literal = withUnsafeBytes(of: expected.littleEndian) { Array($0) }
            while index < self.count, self.base[index] == literal[index - self.position] { index += 1 }
            throw index < self.count
                ? self.fail("unexpected character '\(Self.printable(self.base[self.position]))'")
                : self.fail("unexpected end of the document")
        }
        let word = UInt32(littleEndian: UnsafeRawPointer(self.base + self.position).loadUnaligned(as: UInt32.self))
        guard word == expected else {
            throw self.fail("unexpected character '\(Self.printable(self.base[self.position]))'")
        }
        self.position += length
    }

    // MARK: - Strings

    private mutating func parseKey() throws(JSONParseError) {
        guard self.position < self.count, self.base[self.position] == UInt8(ascii: "\"") else {
            throw self.fail(
                self.position < self.count ? "expected a key in double quotes" : "unexpected end of the document")
        }
        let node = self.nodes.count
        let start = self.position + 1
        let escaped = try self.parseString()
        // The key's contents end just before the closing quote, which the parser has passed.
        self.keyPrints.append(
            escaped
                ? self.escapedFingerprint(node)
                : Tape.fingerprint(self.base + start, count: self.position - 1 - start, readable: self.count - start))
        self.keyNodes.append(node)
        self.skipWhitespace()
        guard self.position < self.count, self.base[self.position] == UInt8(ascii: ":") else {
            throw self.fail("expected ':' after a key")
        }
        self.position += 1
    }

    /// Appends a string node; `position` is at the opening quote, and ends after the closing one.
    @inline(__always) @discardableResult
    private mutating func parseString() throws(JSONParseError) -> Bool {
        let quote = self.position
        self.position += 1
        var escaped = false
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while true {
            // Eight bytes at a time, up to the first quote, backslash, control character or non-ASCII byte.
            while self.position + 8 <= self.count {
                let word = UInt64(
                    littleEndian: UnsafeRawPointer(self.base + self.position).loadUnaligned(as: UInt64.self))
                let quotes = word ^ (ones &* 0x22)
                let backslashes = word ^ (ones &* 0x5C)
                let special =
                    ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)
                    | ((word &- ones &* 0x20) & ~word) | word
                let found = special & highs
                if found == 0 {
                    self.position += 8
                    continue
                }
                self.position += found.trailingZeroBitCount >> 3
                break
            }
            guard self.position < self.count else { throw self.fail("unterminated string", at: quote) }
            let byte = self.base[self.position]
            if byte == UInt8(ascii: "\"") {
                self.nodes.append(
                    TapeNode(
                        tag: TapeNode.string | (escaped ? TapeNode.escaped : 0),
                        start: UInt32(quote + 1),
                        end: UInt32(self.position),
                        next: UInt32(self.nodes.count + 1)
                    )
                )
                self.position += 1
                return escaped
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
                try self.parseEscape()
            } else if byte < 0x20 {
                throw self.fail("control character in a string (escape it)")
            } else if byte >= 0x80 {
                try self.parseUTF8Sequence(byte)
            } else {
                self.position += 1
            }
        }
    }

    private mutating func parseEscape() throws(JSONParseError) {
        guard self.position + 1 < self.count else { throw self.fail("unexpected end of the document", at: self.count) }
        let escaped = self.base[self.position + 1]
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"),
            UInt8(ascii: "t"):
            self.position += 2
        case UInt8(ascii: "u"):
            self.position += 2
            let scalar = try self.parseHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard self.position + 1 < self.count, self.base[self.position] == UInt8(ascii: "\\"),
                    self.base[self.position + 1] == UInt8(ascii: "u")
                else {
                    throw self.fail("unpaired surrogate in a \\u escape")
                }
                self.position += 2
                let low = try self.parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw self.fail("unpaired surrogate in a \\u escape") }
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw self.fail("unpaired surrogate in a \\u escape")
            }
        default:
            self.position += 1
            throw self.fail("invalid escape '\\\(Self.printable(escaped))'")
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard self.position < self.count else { throw self.fail("unexpected end of the document") }
            guard let digit = Tape.hexValue(self.base[self.position]) else {
                throw self.fail("invalid hex digit in a \\u escape")
            }
            value = value << 4 | digit
            self.position += 1
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence (no overlong forms, no surrogates, at most U+10FFFF).
    @inline(__always)
    private mutating func parseUTF8Sequence(_ lead: UInt8) throws(JSONParseError) {
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: throw self.fail("invalid UTF-8 in a string")
        }
        guard self.position + length <= self.count else { throw self.fail("invalid UTF-8 in a string") }
        let second = self.base[self.position + 1]
        guard second >= low, second <= high else { throw self.fail("invalid UTF-8 in a string") }
        for index in 2..<length where self.base[self.position + index] & 0xC0 != 0x80 {
            throw self.fail("invalid UTF-8 in a string")
        }
        self.position += length
    }

    // MARK: - Numbers

    private mutating func parseNumber() throws(JSONParseError) {
        let start = self.position
        var index = start
        @inline(__always) func isDigit(_ index: Int) -> Bool {
            index < self.count && self.base[index] &- UInt8(ascii: "0") < 10
        }
        if self.base[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw self.fail("a number needs digits", at: index) }
        let integerStart = index
        if self.base[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { throw self.fail("a number may not start with 0", at: integerStart) }
        } else {
            while isDigit(index) { index += 1 }
        }
        let integerDigits = index - integerStart
        if index < self.count, self.base[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw self.fail("a number needs digits after '.'", at: index) }
            while isDigit(index) { index += 1 }
        }
        var hasExponent = false
        if index < self.count, self.base[index] | 0x20 == UInt8(ascii: "e") {
            hasExponent = true
            index += 1
            if index < self.count, self.base[index] == UInt8(ascii: "+") || self.base[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard isDigit(index) else { throw self.fail("a number needs digits in its exponent", at: index) }
            while isDigit(index) { index += 1 }
        }
        // Without an exponent, up to 308 integer digits always fit a Double.
        if hasExponent || integerDigits > 308 {
            let text = String(
                decoding: UnsafeBufferPointer(start: self.base + start, count: index - start), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw self.fail("number \(text.prefix(40)) is too large for a Double", at: start)
            }
        }
        self.nodes.append(
            TapeNode(tag: TapeNode.number, start: UInt32(start), end: UInt32(index), next: UInt32(self.nodes.count + 1))
        )
        self.position = index
    }

    // MARK: - Duplicate keys

    /// The fingerprint of an escaped key's unescaped bytes, so that it equals the same key written literally.
    private func escapedFingerprint(_ node: Int) -> UInt64 {
        let key = self.nodes[node]
        let decoded = Tape.unescape(UnsafeBufferPointer(start: self.base + Int(key.start), count: key.length))
        return decoded.withUnsafeBufferPointer {
            Tape.fingerprint($0.baseAddress ?? self.base, count: $0.count, readable: $0.count)
        }
    }

    private func checkDuplicateKeys(_ frame: Frame) throws(JSONParseError) {
        let count = self.keyPrints.count - frame.keyMark
        guard count > 1 else { return }
        if count <= 32 {
            // Pairwise over the fingerprints: a few dozen word compares; keys are only compared on a match.
            let collision: (Int, Int)? = self.keyPrints.withUnsafeBufferPointer { prints in
                for first in frame.keyMark..<(prints.count - 1) {
                    let print = prints[first]
                    for second in (first + 1)..<prints.count where prints[second] == print { return (first, second) }
                }
                return nil
            }
            guard var (first, second) = collision else { return }
            // Rare: a duplicate, or a fingerprint collision; check every matching pair from there.
            while first < self.keyPrints.count - 1 {
                if self.keyPrints[first] == self.keyPrints[second] {
                    try self.checkDistinct(self.keyNodes[first], self.keyNodes[second])
                }
                second += 1
                if second == self.keyPrints.count {
                    first += 1
                    second = first + 1
                }
            }
        } else {
            var seen: [UInt64: Int] = [:]
            seen.reserveCapacity(count)
            for index in frame.keyMark..<self.keyPrints.count {
                if let earlier = seen.updateValue(index, forKey: self.keyPrints[index]) {
                    // Rare: a fingerprint collision or a real duplicate; compare with every earlier key of that print.
                    for other in frame.keyMark..<index where self.keyPrints[other] == self.keyPrints[index] {
                        try self.checkDistinct(self.keyNodes[other], self.keyNodes[index])
                    }
                    _ = earlier
                }
            }
        }
    }

    private func checkDistinct(_ first: Int, _ second: Int) throws(JSONParseError) {
        let tape = Tape(
            bytes: UnsafeBufferPointer(start: self.base, count: self.count),
            nodes: UnsafeBufferPointer(start: nil, count: 0))
        let a = self.nodes[first]
        let b = self.nodes[second]
        if tape.stringEquals(a, tape, b) {
            throw self.fail(
                "duplicate key \"\(String(decoding: Tape.unescape(tape.rawBytes(b)), as: UTF8.self))\"",
                at: Int(b.start) - 1)
        }
    }
}
