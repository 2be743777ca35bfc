public import JSON

/// Redacts one sample's parts under ``RedactionRules`` with keyed hashes, and remembers the hashes it made (so the
/// store can find every sample that held a value: `strangler purge --subject`).
///
/// A redacted value keeps its type: a string becomes `"[redacted:<16 hex>]"` (``RedactionKey/token(_:)``), a number
/// becomes the whole number made of the hash's first 40 bits, a boolean or `null` stays (it says nothing about a
/// person), and an object or array keeps its shape with each leaf redacted. A value found by a detector inside a
/// longer string (or a free-text body, a query value, a path segment, a kept header) is replaced by its token in
/// place. The same value gives the same token everywhere (strings: their unescaped UTF-8; numbers: their text as
/// ``JSONValue/format(_:)`` writes it), so the two sides of a comparison still disagree visibly.
///
/// ```swift
/// var redaction = Redaction(rules: RedactionRules(), key: key)
/// let body = redaction.body(Array(#"{"email":"ada@example.com","n":1}"#.utf8))
/// // {"email":"[redacted:3f1c0a9e5b7d2c41]","n":1}
/// redaction.hashes   // ["3f1c0a9e5b7d2c41"]
/// ```
///
/// Linear in the size of what it is given: one walk of the body's tape, the detectors linear per string.
public struct Redaction: Sendable {
    public let rules: RedactionRules
    public let key: RedactionKey
    /// The keyed hashes of every value redacted so far.
    public private(set) var hashes: Set<String> = []
    private let compiled: CompiledRules

    public init(rules: RedactionRules, key: RedactionKey) {
        self.rules = rules
        self.key = key
        self.compiled = CompiledRules(DiffOptions(ignore: rules.pointers))
    }

    // MARK: Tokens

    /// The token of a string value (its UTF-8 bytes).
    public mutating func token(_ value: some Collection<UInt8>) -> String {
        let hash = self.key.hash(value)
        self.hashes.insert(hash)
        return RedactionKey.token(hash: hash)
    }

    private mutating func number(_ canonical: String) -> Double {
        let (number, hash) = self.key.number(Array(canonical.utf8))
        self.hashes.insert(hash)
        return number
    }

    /// The bytes with every detected value replaced by its token, or nil when nothing was detected.
    private mutating func detected(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard self.rules.detectors else { return nil }
        let matches = PersonalDataDetector.matches(in: bytes)
        guard !matches.isEmpty else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var copied = 0
        for match in matches {
            output.append(contentsOf: bytes[copied..<match.range.lowerBound])
            output.append(contentsOf: self.token(bytes[match.range]).utf8)
            copied = match.range.upperBound
        }
        output.append(contentsOf: bytes[copied...])
        return output
    }

    /// Free text with the detected values replaced (unchanged with the detectors off).
    public mutating func text(_ text: String) -> String {
        var text = text
        let replaced = text.withUTF8 { self.detected($0) }
        return replaced.map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    // MARK: Bodies

    /// A body as stored, read by the message's `headers` (`Content-Type`, `Content-Encoding`).
    ///
    /// - JSON (starting with `{` or `[`): members whose names match a field, values at the pointers, and detected
    ///   values in strings (and keys) redacted, every other byte kept. JSON that does not parse cannot be searched
    ///   safely: with any rule in force it is replaced whole by one token.
    /// - A form (`application/x-www-form-urlencoded`): as a query string (fields by name, detectors on the decoded
    ///   values).
    /// - An encoded body (`Content-Encoding` other than `identity`: gzip, br…) or a multipart one cannot be searched
    ///   as it is: replaced whole by one token.
    /// - Any other body is free text: the detectors run on it.
    public mutating func body(_ body: [UInt8], headers: [(name: String, value: String)] = []) -> [UInt8] {
        guard !self.rules.isEmpty, !body.isEmpty else { return body }
        func header(_ name: String, upTo end: Character? = nil) -> String? {
            guard let value = headers.first(where: { $0.name.lowercased() == name })?.value else { return nil }
            let cut = end.map { mark in value.prefix { $0 != mark } } ?? value[...]
            return String(cut.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
                .lowercased()
        }
        let type = header("content-type", upTo: ";")
        if let encoding = header("content-encoding"), !encoding.isEmpty, encoding != "identity" {
            return self.whole(body)
        }
        if type?.hasPrefix("multipart/") == true { return self.whole(body) }
        if type == "application/x-www-form-urlencoded" {
            return Array(self.query(String(decoding: body, as: UTF8.self)).utf8)
        }
        guard ResponseDiffer.looksLikeJSON(body) else {
            return body.withUnsafeBufferPointer { self.detected($0) } ?? body
        }
        guard let document = try? JSONDocument(parsing: body, maxDepth: JSONDiff.depthLimit) else {
            return self.whole(body)
        }
        var edits: [(range: Range<Int>, replacement: [UInt8])] = []
        document.withTape { tape in self.collect(tape, into: &edits) }
        guard !edits.isEmpty else { return body }
        edits.sort { $0.range.lowerBound < $1.range.lowerBound }
        var output: [UInt8] = []
        output.reserveCapacity(body.count)
        var copied = 0
        for edit in edits {
            output.append(contentsOf: body[copied..<edit.range.lowerBound])
            output.append(contentsOf: edit.replacement)
            copied = edit.range.upperBound
        }
        output.append(contentsOf: body[copied...])
        return output
    }

    /// One token for the whole body, as a JSON string.
    private mutating func whole(_ body: [UInt8]) -> [UInt8] {
        var whole: [UInt8] = []
        JSONValue.appendQuoted(self.wholeToken(body), to: &whole)
        return whole
    }

    /// The token of a value redacted whole, after recording the hashes of what the detectors find inside it: a
    /// field `"contact": "Ada <ada@example.com>"` is then found by an erasure of `ada@example.com` too.
    private mutating func wholeToken(_ bytes: [UInt8]) -> String {
        _ = bytes.withUnsafeBufferPointer { self.detected($0) }
        return self.token(bytes)
    }

    /// The replacements of a document's leaves (strings with their quotes, numbers, keys), without recursion.
    private mutating func collect(_ tape: Tape, into edits: inout [(range: Range<Int>, replacement: [UInt8])]) {
        var pending: [(index: Int, state: RuleState?, redacted: Bool)] = [(0, self.compiled.rootState, false)]
        while let (index, state, inherited) = pending.popLast() {
            let node = tape.nodes[index]
            let redacted = inherited || self.compiled.isIgnored(state)
            switch node.kind {
            case TapeNode.string:
                if let replacement = self.string(tape, node, redacted: redacted) {
                    edits.append(((Int(node.start) - 1)..<(Int(node.end) + 1), replacement))
                }
            case TapeNode.number:
                let raw = tape.rawBytes(node)
                if redacted || self.isCardNumber(raw) {
                    let number = self.number(JSONValue.format(tape.double(node)))
                    edits.append((Int(node.start)..<Int(node.end), Array(JSONValue.format(number).utf8)))
                }
            case TapeNode.array:
                let start = pending.count
                var child = index + 1
                for position in 0..<node.count {
                    pending.append((child, self.compiled.descend(state, index: position), redacted))
                    child = Int(tape.nodes[child].next)
                }
                pending[start...].reverse()
            case TapeNode.object:
                let start = pending.count
                var child = index + 1
                for _ in 0..<node.count {
                    let keyNode = tape.nodes[child]
                    let name = tape.stringBytes(keyNode)
                    if let replacement = self.string(tape, keyNode, redacted: false) {
                        edits.append(((Int(keyNode.start) - 1)..<(Int(keyNode.end) + 1), replacement))
                    }
                    pending.append(
                        (child + 1, self.compiled.descend(state, key: name), redacted || self.rules.redactsField(name)))
                    child = Int(tape.nodes[child + 1].next)
                }
                pending[start...].reverse()
            default:
                break  // true, false, null: kept
            }
        }
    }

    /// A string node's replacement (quoted), or nil to keep it.
    private mutating func string(_ tape: Tape, _ node: TapeNode, redacted: Bool) -> [UInt8]? {
        var quoted: [UInt8] = []
        if redacted {
            JSONValue.appendQuoted(self.wholeToken(tape.stringBytes(node)), to: &quoted)
            return quoted
        }
        guard self.rules.detectors else { return nil }
        let replaced: [UInt8]?
        if node.isEscaped {
            replaced = tape.stringBytes(node).withUnsafeBufferPointer { self.detected($0) }
        } else {
            replaced = self.detected(tape.rawBytes(node))
        }
        guard let replaced else { return nil }
        JSONValue.appendQuoted(String(decoding: replaced, as: UTF8.self), to: &quoted)
        return quoted
    }

    /// A JSON number's text that is a payment card number (digits only, detected as a card).
    private func isCardNumber(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        guard self.rules.detectors, (13...19).contains(raw.count), raw.allSatisfy(PersonalDataDetector.isDigit) else {
            return false
        }
        return PersonalDataDetector.matches(in: raw).contains { $0.kind == .card && $0.range == 0..<raw.count }
    }

    // MARK: Values (the diff's)

    /// A value found at `pointer` of a body (a difference's `left` or `right`), redacted as it would be in the body:
    /// whole when the pointer is at or under a redacted pointer or a member whose name matches a field; otherwise
    /// what the rules name inside it.
    public mutating func value(_ value: JSONValue, at pointer: String) -> JSONValue {
        guard !self.rules.isEmpty else { return value }
        let segments = PointerPattern.segments(pointer) ?? []
        if segments.contains(where: { self.rules.redactsField($0.utf8) }) {
            return self.value(value, state: nil, redacted: true)
        }
        var inner: [String] = []
        for pattern in self.rules.pointers {
            if PointerPattern.covers(pattern: pattern, pointer: pointer) {
                return self.value(value, state: nil, redacted: true)
            }
            guard let patternSegments = PointerPattern.segments(pattern), patternSegments.count > segments.count else {
                continue
            }
            if zip(patternSegments.prefix(segments.count), segments).allSatisfy({ $0 == "*" || $0 == $1 }) {
                inner.append(PointerPattern.pointer(patternSegments.dropFirst(segments.count)))
            }
        }
        let rules = CompiledRules(DiffOptions(ignore: inner))
        return self.value(value, state: rules.rootState, redacted: false, rules: rules)
    }

    private mutating func value(
        _ value: JSONValue, state: RuleState?, redacted inherited: Bool, rules: CompiledRules? = nil
    ) -> JSONValue {
        let rules = rules ?? CompiledRules(DiffOptions())
        let redacted = inherited || rules.isIgnored(state)
        switch value {
        case .string(let text):
            if redacted { return .string(self.wholeToken(Array(text.utf8))) }
            return .string(self.text(text))
        case .number(let number):
            let text = JSONValue.format(number)
            if redacted || Array(text.utf8).withUnsafeBufferPointer({ self.isCardNumber($0) }) {
                return .number(self.number(text))
            }
            return value
        case .array(let items):
            var result: [JSONValue] = []
            result.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                result.append(
                    self.value(item, state: rules.descend(state, index: index), redacted: redacted, rules: rules))
            }
            return .array(result)
        case .object(let members):
            var result: [(key: String, value: JSONValue)] = []
            result.reserveCapacity(members.count)
            for member in members {
                let below = rules.descend(state, key: Array(member.key.utf8))
                result.append(
                    (
                        self.text(member.key),
                        self.value(
                            member.value, state: below, redacted: redacted || self.rules.redactsField(member.key.utf8),
                            rules: rules)
                    ))
            }
            return .object(result)
        case .bool, .null:
            return value
        }
    }

    // MARK: Requests and headers

    /// A query string as stored: a parameter whose name matches a field has its (percent-decoded) value replaced by
    /// its token; in the others, detected values are replaced (the value is then stored percent-encoded again).
    public mutating func query(_ query: String) -> String {
        guard !self.rules.isEmpty, !query.isEmpty else { return query }
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            guard let equals = part.firstIndex(of: "=") else {
                return Self.percentDecoded(part).withUnsafeBufferPointer { self.detected($0) }.map(Self.percentEncoded)
                    ?? String(part)
            }
            let name = part[..<equals]
            let raw = part[part.index(after: equals)...]
            let decoded = Self.percentDecoded(raw)
            if self.rules.redactsField(Self.percentDecoded(name)) { return name + "=" + self.token(decoded) }
            guard let replaced = decoded.withUnsafeBufferPointer({ self.detected($0) }) else { return String(part) }
            return name + "=" + Self.percentEncoded(replaced)
        }
        return parts.joined(separator: "&")
    }

    /// A request path as stored: each segment (percent-decoded) passes the detectors.
    public mutating func path(_ path: String) -> String {
        guard self.rules.detectors else { return path }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            guard let replaced = Self.percentDecoded(segment).withUnsafeBufferPointer({ self.detected($0) }) else {
                return String(segment)
            }
            return Self.percentEncoded(replaced)
        }
        return segments.joined(separator: "/")
    }

    /// Request headers as stored: those the rules keep pass the detectors; every other one keeps its name and has
    /// its value replaced by its token.
    public mutating func requestHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        headers.map {
            self.rules.keepsRequestHeader($0.name)
                ? (name: $0.name, value: self.text($0.value)) : (name: $0.name, value: self.token(Array($0.value.utf8)))
        }
    }

    /// Answer headers as stored, likewise with the answer allow-list.
    public mutating func responseHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)]
    {
        headers.map { (name: $0.name, value: self.responseHeader(name: $0.name, value: $0.value)) }
    }

    /// One header value as an answer's header would be stored (for the diff's header differences). A kept `Location`
    /// is a URL: its query passes the query rules (`/reset?token=…`), the rest the detectors.
    public mutating func responseHeader(name: String, value: String) -> String {
        guard self.rules.keepsResponseHeader(name) else { return self.token(Array(value.utf8)) }
        if name.lowercased() == "location", let mark = value.firstIndex(of: "?") {
            return self.text(String(value[..<mark])) + "?" + self.query(String(value[value.index(after: mark)...]))
        }
        return self.text(value)
    }

    // MARK: Stored bodies

    /// Where a stored body holds what redaction replaced: members whose names match a field, and strings with a
    /// token (`[redacted:…]`, or the `[redacted]` of samples stored before keyed hashes). A replayed answer cannot
    /// match there, so a replay ignores these pointers (with the rules' own pointers).
    public static func redactedPointers(in value: JSONValue, rules: RedactionRules) -> [String] {
        var found: [String] = []
        var pending: [(value: JSONValue, pointer: String)] = [(value, "")]
        while let (value, pointer) = pending.popLast() {
            switch value {
            case .string(let text) where text.contains("[redacted"):
                found.append(pointer)
            case .array(let items):
                for (index, item) in items.enumerated() { pending.append((item, pointer + "/\(index)")) }
            case .object(let members):
                for member in members {
                    let below = pointer + "/" + PointerPattern.escape(member.key)
                    if rules.redactsField(member.key.utf8) {
                        found.append(below)
                    } else {
                        pending.append((member.value, below))
                    }
                }
            default:
                break
            }
        }
        return found.sorted()
    }

    // MARK: Percent-encoding

    static func percentDecoded(_ text: some StringProtocol) -> [UInt8] {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = Tape.hexValue(bytes[index + 1]),
                let low = Tape.hexValue(bytes[index + 2])
            {
                output.append(UInt8(high << 4 | low))
                index += 3
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return output
    }

    /// Unreserved characters (RFC 3986) and the token's `[`, `:` and `]` as they are; every other byte as `%XX`.
    static func percentEncoded(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        for byte in bytes {
            if PersonalDataDetector.isAlphanumeric(byte) || "-._~[]:".utf8.contains(byte) {
                output.append(byte)
            } else {
                output += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
