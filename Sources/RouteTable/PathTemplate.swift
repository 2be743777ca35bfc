/// A route's path template: literal segments, `{param}` segments, and an optional trailing `*` or trailing slash.
///
/// `/contacts/{id}` matches `/contacts/con_1`; `/static/*` matches `/static/a/b.css` (and `/static`); `/orders/`
/// matches `/orders/` only (a template with the slash is its own route; see `RouteTable.routing(method:path:)`).
/// When several templates match a path, the most specific wins: segment by segment from the left, a
/// literal beats a parameter, which beats the wildcard.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
    }

    public let segments: [Segment]
    public let hasTrailingWildcard: Bool
    /// The template ends with `/` after a segment (`/orders/`): it matches paths with that slash only.
    public let hasTrailingSlash: Bool
    /// The template as written.
    public let description: String

    /// Specificity ranks, compared lexicographically: 2 for a literal, 1 for a parameter, 0 for the wildcard.
    let ranks: [UInt8]
    /// Per segment, a literal's bytes (empty for a parameter: literals are never empty).
    let literalBytes: [[UInt8]]

    /// The template with parameter names erased (`/contacts/{}`): two templates with the same shape match
    /// the same paths.
    public var shape: String {
        "/"
            + self.segments.map { segment in
                switch segment {
                case .literal(let text): text
                case .parameter: "{}"
                }
            }.joined(separator: "/") + (self.hasTrailingWildcard ? (self.segments.isEmpty ? "*" : "/*") : "")
            + (self.hasTrailingSlash ? "/" : "")
    }

    /// Parses a template, or returns why it is not one.
    public static func parse(_ text: String) -> Result<PathTemplate, TemplateError> {
        guard text.hasPrefix("/") else { return .failure(TemplateError(reason: "must start with '/'")) }
        var parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts == [""] { parts = [] }
        // One trailing slash after a segment is part of the template (`/orders/`); `//` anywhere is not.
        var trailingSlash = false
        if parts.count > 1, parts.last == "" {
            trailingSlash = true
            parts.removeLast()
        }
        var wildcard = false
        if parts.last == "*" {
            if trailingSlash { return .failure(TemplateError(reason: "'*' is allowed only as the whole last segment")) }
            wildcard = true
            parts.removeLast()
        }
        var segments: [Segment] = []
        var names = Set<String>()
        for part in parts {
            if part.isEmpty { return .failure(TemplateError(reason: "has an empty segment ('//')")) }
            if part.hasPrefix("{") || part.hasSuffix("}") {
                let name = String(part.dropFirst().dropLast())
                guard part.hasPrefix("{"), part.hasSuffix("}"), !name.isEmpty,
                    name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
                else {
                    return .failure(TemplateError(reason: "segment '\(part)' is not a parameter such as {id}"))
                }
                guard names.insert(name).inserted else {
                    return .failure(TemplateError(reason: "repeats parameter {\(name)}"))
                }
                segments.append(.parameter(name))
            } else if part.contains("*") {
                return .failure(TemplateError(reason: "'*' is allowed only as the whole last segment"))
            } else if part.contains("{") || part.contains("}") || part.contains("?") || part.contains("#") {
                return .failure(TemplateError(reason: "segment '\(part)' has a character not allowed in a path"))
            } else if part == "." || part == ".." {
                return .failure(
                    TemplateError(reason: "segment '\(part)' is a dot-segment, which no canonical path has"))
            } else {
                // Requests are routed by their canonical path: a literal must be canonical too, or nothing matches it.
                switch CanonicalPath.normalize("/" + part) {
                case .failure(let problem): return .failure(TemplateError(reason: "segment '\(part)' \(problem)"))
                case .success(let canonical) where canonical != "/" + part:
                    return .failure(
                        TemplateError(
                            reason: "segment '\(part)' is not canonical (write it '\(canonical.dropFirst())')"))
                case .success: segments.append(.literal(part))
                }
            }
        }
        return .success(
            PathTemplate(
                segments: segments, hasTrailingWildcard: wildcard, hasTrailingSlash: trailingSlash, description: text))
    }

    init(segments: [Segment], hasTrailingWildcard: Bool, hasTrailingSlash: Bool = false, description: String) {
        self.segments = segments
        self.hasTrailingWildcard = hasTrailingWildcard
        self.hasTrailingSlash = hasTrailingSlash
        self.description = description
        var ranks: [UInt8] = segments.map {
            if case .literal = $0 { return 2 } else { return 1 }
        }
        if hasTrailingWildcard { ranks.append(0) }
        self.ranks = ranks
        self.literalBytes = segments.map {
            if case .literal(let text) = $0 { return Array(text.utf8) } else { return [] }
        }
    }

    public static func == (lhs: PathTemplate, rhs: PathTemplate) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.description) }

    /// Whether `path` (canonical, without its query string) matches, segment by segment; a trailing slash matches
    /// only a template that ends with one.
    public func matches(_ path: Substring.UTF8View) -> Bool {
        if let result = path.withContiguousStorageIfAvailable({ self.matches(bytes: $0) }) { return result }
        return Array(path).withUnsafeBufferPointer { self.matches(bytes: $0) }
    }

    /// The match over the path's bytes.
    func matches(bytes path: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        guard !path.isEmpty, path[0] == slash else { return false }
        var position = 1
        var endsWithSlash = false
        for index in self.segments.indices {
            // The next segment runs to the next '/' or the end of the path.
            var end = position
            while end < path.count, path[end] != slash { end += 1 }
            if end == position { return false }
            let literal = self.literalBytes[index]
            if !literal.isEmpty {
                guard literal.count == end - position else { return false }
                for offset in 0..<literal.count where literal[offset] != path[position + offset] { return false }
            }
            position = end
            endsWithSlash = position != path.count
            if endsWithSlash { position += 1 }
        }
        if self.hasTrailingWildcard { return true }
        return position == path.count && endsWithSlash == self.hasTrailingSlash
    }

    /// The values of the `{param}` segments in `path` (which must match).
    public func parameters(in path: Substring) -> [String: String] {
        var result: [String: String] = [:]
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (segment, part) in zip(self.segments, parts) {
            if case .parameter(let name) = segment { result[name] = String(part) }
        }
        return result
    }

    /// Whether this template is more specific than `other`, for two templates that match the same path.
    public func isMoreSpecific(than other: PathTemplate) -> Bool {
        for (mine, theirs) in zip(self.ranks, other.ranks) where mine != theirs { return mine > theirs }
        // Same ranks as far as both go: an exact end beats a trailing wildcard.
        if self.ranks.count > other.ranks.count { return self.ranks[other.ranks.count] != 0 }
        if other.ranks.count > self.ranks.count { return other.ranks[self.ranks.count] == 0 }
        return false
    }
}

public struct TemplateError: Error, Sendable, Equatable {
    public var reason: String
}
