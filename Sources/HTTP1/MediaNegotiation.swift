/// Proactive negotiation by `Accept` (RFC 9110 §12.5.1): which of the media types a server can send the client prefers.
///
/// Each offered type takes the weight (`q`) of the most specific range that matches it (`text/html;level=1` before
/// `text/html` before `text/*` before `*/*`); the highest weight above 0 wins, ties going to the server's order. No
/// `Accept` (or an empty one) accepts anything: the first offered type.
///
/// ```swift
/// MediaNegotiation.choose(["application/json", "text/html"], accept: "text/html;q=0.9, */*;q=0.1")  // "text/html"
/// MediaNegotiation.choose(["application/json"], accept: "image/png")                                // nil: 406
/// ```
public enum MediaNegotiation {
    /// One range of an `Accept` value.
    public struct Range: Sendable, Equatable {
        /// Lowercased; `*` for a wildcard.
        public var type: String
        public var subtype: String
        /// Media type parameters other than `q`, lowercased names, as sent.
        public var parameters: [(name: String, value: String)]
        /// 0 to 1.
        public var quality: Double

        public static func == (lhs: Range, rhs: Range) -> Bool {
            lhs.type == rhs.type && lhs.subtype == rhs.subtype && lhs.quality == rhs.quality
                && lhs.parameters.map(\.name) == rhs.parameters.map(\.name)
                && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
        }

        /// How specific the range is: parameters, then a full type, then `type/*`, then `*/*`; nil if it does not
        /// match `media` (`type/subtype` with optional parameters, lowercased type).
        func specificity(for media: ParsedType) -> Int? {
            if self.type != "*", self.type != media.type { return nil }
            if self.subtype != "*", self.subtype != media.subtype { return nil }
            if self.type == "*" { return self.subtype == "*" ? 0 : nil }
            if self.subtype == "*" { return 1 }
            for parameter in self.parameters {
                guard media.parameters.contains(where: { $0.name == parameter.name && $0.value == parameter.value })
                else { return nil }
            }
            return 2 + self.parameters.count
        }
    }

    struct ParsedType {
        var type: String
        var subtype: String
        var parameters: [(name: String, value: String)]
    }

    /// The ranges of an `Accept` value; ranges that are not `type/subtype` (or carry a malformed `q`) are left out,
    /// as a server may ignore what it cannot read.
    public static func parse(_ accept: String) -> [Range] {
        var ranges: [Range] = []
        for item in Self.splitList(accept) {
            let pieces = Self.splitParameters(item)
            guard let media = pieces.first, let parsed = Self.parseType(media) else { continue }
            var quality = 1.0
            var parameters: [(name: String, value: String)] = []
            var valid = true
            for piece in pieces.dropFirst() {
                guard let equals = piece.firstIndex(of: "=") else {
                    valid = false
                    break
                }
                let name = piece[..<equals].trimmingWhitespace().lowercased()
                var value = String(piece[piece.index(after: equals)...].trimmingWhitespace())
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                    value = String(value.dropFirst().dropLast())
                }
                if name == "q" {
                    guard let weight = Self.weight(value) else {
                        valid = false
                        break
                    }
                    quality = weight
                    // Parameters after `q` are accept-extensions, not the media type's.
                    break
                }
                parameters.append((name, value))
            }
            guard valid else { continue }
            ranges.append(Range(type: parsed.type, subtype: parsed.subtype, parameters: parameters, quality: quality))
        }
        return ranges
    }

    /// The weight `media` gets from `ranges` (0: not acceptable).
    public static func quality(of media: String, in ranges: [Range]) -> Double {
        guard let parsed = Self.parseType(media) else { return 0 }
        var best: (specificity: Int, quality: Double)?
        for range in ranges {
            guard let specificity = range.specificity(for: parsed) else { continue }
            if best == nil || specificity > best!.specificity { best = (specificity, range.quality) }
        }
        return best?.quality ?? 0
    }

    /// The offered type the client prefers, or nil when it accepts none of them (a 406, or the server's default).
    public static func choose(_ offered: [String], accept: String?) -> String? {
        guard let accept, !accept.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "," }) else { return offered.first }
        let ranges = Self.parse(accept)
        // Nothing readable in it: as if no Accept had been sent.
        guard !ranges.isEmpty else { return offered.first }
        var chosen: (media: String, quality: Double)?
        for media in offered {
            let quality = Self.quality(of: media, in: ranges)
            if quality > 0, chosen == nil || quality > chosen!.quality { chosen = (media, quality) }
        }
        return chosen?.media
    }

    /// `type/subtype` with its parameters, lowercased names; nil if it is not one.
    static func parseType(_ text: some StringProtocol) -> ParsedType? {
        let pieces = Self.splitParameters(String(text))
        guard let media = pieces.first else { return nil }
        let parts = media.trimmingWhitespace().lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, Self.isToken(parts[0]), Self.isToken(parts[1]) else { return nil }
        var parameters: [(name: String, value: String)] = []
        for piece in pieces.dropFirst() {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            parameters.append(
                (
                    piece[..<equals].trimmingWhitespace().lowercased(),
                    String(piece[piece.index(after: equals)...].trimmingWhitespace())
                ))
        }
        return ParsedType(type: String(parts[0]), subtype: String(parts[1]), parameters: parameters)
    }

    /// `0`, `0.5`, `1`, `1.000`: at most three decimals, from 0 to 1.
    static func weight(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1"), bytes.count <= 5
        else { return nil }
        if bytes.count > 1 {
            guard bytes[1] == UInt8(ascii: ".") else { return nil }
            for byte in bytes.dropFirst(2) {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                if first == UInt8(ascii: "1"), byte != UInt8(ascii: "0") { return nil }
            }
        }
        return Double(text.hasSuffix(".") ? String(text.dropLast()) : text)
    }

    static func isToken(_ text: some StringProtocol) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte)
                    || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
    }

    /// A list's members, split at commas outside quoted strings.
    static func splitList(_ text: String) -> [String] {
        Self.split(text, at: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }.map(String.init)
    }

    static func splitParameters(_ text: String) -> [String] {
        Self.split(text, at: ";").map { String($0.trimmingWhitespace()) }
    }

    private static func split(_ text: String, at separator: Character) -> [Substring] {
        var parts: [Substring] = []
        var start = text.startIndex
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" {
                quoted.toggle()
            } else if character == "\\", quoted {
                index = text.index(after: index)
                if index == text.endIndex { break }
            } else if character == separator, !quoted {
                parts.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        parts.append(text[start...])
        return parts
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> SubSequence {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
