/// One HTTP response as the diff engine sees it.
public struct ResponseSnapshot: Sendable {
    public var status: Int
    /// In order, names as received (they are compared case-insensitively).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The values of a header (case-insensitive), joined with `, `; nil when absent.
    public func header(_ name: String) -> String? {
        let values = self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: self.body, as: UTF8.self) }
}

extension ResponseSnapshot: CustomStringConvertible {
    /// The status and the body's text (its first 600 characters).
    public var description: String {
        let body = self.text
        return "\(self.status) \(body.count > 600 ? String(body.prefix(600)) + "…" : body)"
    }
}

/// A compared header whose values differ. Several fields of one name are joined with `, `; nil when absent.
public struct HeaderDifference: Sendable, Equatable {
    /// Lowercase.
    public var name: String
    public var left: String?
    public var right: String?

    /// `changed`, `added` (only on the right) or `removed` (only on the left).
    public var kind: DifferenceKind { self.left == nil ? .added : self.right == nil ? .removed : .changed }
}

/// How two bodies compare.
public enum BodyComparison: Sendable {
    /// Same bytes, or JSON documents with no difference (after ignore rules and tolerance).
    case equal
    /// Both bodies are JSON and differ; the result is never empty.
    case json(DiffResult)
    /// Compared as bytes (not JSON, or not valid JSON): the first differing byte offset (the shorter length when one
    /// body is a prefix of the other) and, when both bodies are UTF-8 text, its line (from 1).
    case bytes(offset: Int, line: Int?)
}

/// The comparison of two responses: status, chosen headers, body.
public struct ResponseComparison: Sendable {
    /// Both statuses; nil when equal.
    public var status: (left: Int, right: Int)?
    /// The chosen headers that differ, in the order of ``DiffOptions/headers``.
    public var headers: [HeaderDifference]
    /// Both media types (`type/subtype`, lowercased, parameters left out) when both answers name one and they differ;
    /// nil otherwise. Two answers in different media types are not the same representation: their bodies are not
    /// compared (`body` is `.equal`), and the difference is its own signature, `media type changed`.
    public var mediaType: (left: String, right: String)?
    public var body: BodyComparison

    /// Nothing differs.
    public var isMatch: Bool {
        guard self.status == nil, self.headers.isEmpty, self.mediaType == nil else { return false }
        if case .equal = self.body { return true }
        if case .json(let result) = self.body { return result.isEqual }
        return false
    }

    /// What kind of mismatch this is: body entries by pointer pattern (`/items/*/title changed`), `status changed`,
    /// `header content-type changed` (or `added`/`removed`), and `body changed` for bodies compared as bytes.
    /// Empty for a match.
    public var signature: Signature {
        var entries: [Signature.Entry] = []
        if self.status != nil {
            entries.append(Signature.Entry(pattern: "status", kind: DifferenceKind.changed.rawValue))
        }
        if self.mediaType != nil {
            entries.append(Signature.Entry(pattern: "media type", kind: DifferenceKind.changed.rawValue))
        }
        for header in self.headers {
            entries.append(Signature.Entry(pattern: "header \(header.name)", kind: header.kind.rawValue))
        }
        switch self.body {
        case .equal: break
        case .json(let result): entries.append(contentsOf: result.signature.entries)
        case .bytes: entries.append(Signature.Entry(pattern: "body", kind: DifferenceKind.changed.rawValue))
        }
        return Signature(entries: entries)
    }

    /// Whether the two answers show the same records at different versions (a `changed` difference under one of the
    /// `versions` pointers): one side has not applied the latest change yet (a read right after a write, with the
    /// service still catching up). Such a pair says nothing about whether the service computes the same answer, so
    /// it is counted as stale, not as a mismatch.
    public func isStale(versions: [String]) -> Bool {
        guard !versions.isEmpty, self.status == nil, case .json(let result) = self.body else { return false }
        return result.differences.contains { difference in
            difference.kind == .changed
                && versions.contains { PointerPattern.covers(pattern: $0, pointer: difference.pointer) }
        }
    }

    /// The distinct pointers of the reported body differences, indices kept, in order of first appearance (empty unless
    /// the bodies were compared as JSON).
    public var pointers: [String] {
        guard case .json(let result) = self.body else { return [] }
        var seen = Set<String>()
        return result.differences.compactMap { seen.insert($0.pointer).inserted ? $0.pointer : nil }
    }
}

/// Compares two HTTP responses.
///
/// ```swift
/// let comparison = ResponseDiffer.compare(monolith, service, options: DiffOptions(ignore: ["/meta"]))
/// if !comparison.isMatch { store.count(route, signature: comparison.signature) }
/// ```
public enum ResponseDiffer {
    /// JSON structural comparison when both bodies are JSON (by Content-Type application/json or +json on either side,
    /// or both bodies starting with `{` or `[`) and both parse; otherwise bytes. Two empty bodies are equal. Two
    /// answers whose Content-Types name different media types are compared by status only: their difference is the
    /// media type (`media type changed`), and the Content-Type header is not reported again.
    public static func compare(
        _ left: ResponseSnapshot, _ right: ResponseSnapshot, options: DiffOptions
    ) -> ResponseComparison {
        let status = left.status == right.status ? nil : (left: left.status, right: right.status)
        if let leftType = self.mediaType(self.headerValue("content-type", in: left.headers)),
            let rightType = self.mediaType(self.headerValue("content-type", in: right.headers)), leftType != rightType
        {
            var headers: [HeaderDifference] = []
            var seen: Set<String> = ["content-type"]
            for name in options.headers.map({ $0.lowercased() }) where seen.insert(name).inserted {
                let leftValue = self.headerValue(name, in: left.headers)
                let rightValue = self.headerValue(name, in: right.headers)
                if leftValue != rightValue {
                    headers.append(HeaderDifference(name: name, left: leftValue, right: rightValue))
                }
            }
            return ResponseComparison(
                status: status, headers: headers, mediaType: (leftType, rightType), body: .equal)
        }
        var headers: [HeaderDifference] = []
        var seen = Set<String>()
        for name in options.headers.map({ $0.lowercased() }) where seen.insert(name).inserted {
            let leftValue = self.headerValue(name, in: left.headers)
            let rightValue = self.headerValue(name, in: right.headers)
            if leftValue != rightValue {
                headers.append(HeaderDifference(name: name, left: leftValue, right: rightValue))
            }
        }
        return ResponseComparison(
            status: status, headers: headers, mediaType: nil, body: self.compareBodies(left, right, options: options))
    }

    static func compareBodies(
        _ left: ResponseSnapshot, _ right: ResponseSnapshot, options: DiffOptions
    ) -> BodyComparison {
        if left.body == right.body { return .equal }
        let json =
            self.isJSONMediaType(self.headerValue("content-type", in: left.headers))
            || self.isJSONMediaType(self.headerValue("content-type", in: right.headers))
            || (self.looksLikeJSON(left.body) && self.looksLikeJSON(right.body))
        if json, let result = try? JSONDiff.diff(left.body, right.body, options: options) {
            return result.isEqual ? .equal : .json(result)
        }
        return self.compareBytes(left.body, right.body)
    }

    /// The first differing offset, and its line when both are UTF-8 text (valid UTF-8, no NUL byte).
    public static func compareBytes(_ left: [UInt8], _ right: [UInt8]) -> BodyComparison {
        let common = min(left.count, right.count)
        var offset = 0
        left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                while offset < common, left[offset] == right[offset] { offset += 1 }
            }
        }
        if offset == common, left.count == right.count { return .equal }
        guard self.isText(left), self.isText(right) else { return .bytes(offset: offset, line: nil) }
        var line = 1
        for byte in left[..<offset] where byte == UInt8(ascii: "\n") { line += 1 }
        return .bytes(offset: offset, line: line)
    }

    static func isText(_ bytes: [UInt8]) -> Bool {
        !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
    }

    static func headerValue(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        let values = headers.filter { $0.name.lowercased() == name }.map { Self.trimmed($0.value) }
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    private static func trimmed(_ value: String) -> String {
        let utf8 = value.utf8
        guard let first = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let last = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        return String(value[first...last])
    }

    /// `type/subtype` of a Content-Type, lowercased (parameters left out); nil when absent or empty.
    static func mediaType(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        let mediaType = Self.trimmed(String(contentType.prefix { $0 != ";" })).lowercased()
        return mediaType.isEmpty ? nil : mediaType
    }

    static func isJSONMediaType(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = Self.trimmed(String(contentType.prefix { $0 != ";" })).lowercased()
        return mediaType == "application/json" || mediaType.hasSuffix("+json")
    }

    /// The first byte that is not whitespace is `{` or `[`.
    static func looksLikeJSON(_ body: [UInt8]) -> Bool {
        var index = 0
        if body.count >= 3, body[0] == 0xEF, body[1] == 0xBB, body[2] == 0xBF { index = 3 }
        while index < body.count, [0x20, 0x0A, 0x0D, 0x09].contains(body[index]) { index += 1 }
        return index < body.count && (body[index] == UInt8(ascii: "{") || body[index] == UInt8(ascii: "["))
    }
}
