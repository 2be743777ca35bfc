/// The one form of a request path that the proxy routes, counts, shadows and forwards, read the way origin
/// routers read paths: every spelling of a resource (`/deals/7`, `//deals/7`, `/deals//7`, `/deals/./7`,
/// `/x/../deals/7`, `/deals/%37`) has the same canonical form (`/deals/7`), so that none reaches another side.
///
/// - Empty segments are dropped (`//` reads as `/`).
/// - Dot-segments are removed (RFC 3986 §5.2.4): `/a/./b` → `/a/b`, `/a/b/../c` → `/a/c`, `/..` → `/`;
///   a path ending in a dot-segment ends with a slash (`/a/b/..` → `/a/`).
/// - Percent-encodings of unreserved characters (letters, digits, `-`, `.`, `_`, `~`) are decoded (`%41` → `A`),
///   and the others are written with uppercase hex digits (`%2f` → `%2F`; RFC 3986 §6.2.2.1–2).
/// - Encoded bytes never become structure: `%2F` stays inside its segment (`a%2Fb` is one segment), and a
///   segment that would read `.` or `..` once decoded is not a dot-segment: it keeps its dots encoded
///   (`%2E%2E`, and `.%2E` → `%2E%2E`).
/// - A `%` not followed by two hex digits, or a `#`, makes the path invalid. The query string is not part of the path.
///
/// ```swift
/// CanonicalPath.normalize(Array("//deals/./d%37/".utf8))  // .success("/deals/d7/")
/// ```
///
/// The trailing slash is kept here; whether a request is forwarded with it depends on the route it matches
/// (`RouteTable.routing(method:path:)`).
public enum CanonicalPath {
    /// What one scan of a request target says of its path.
    public enum Verdict: Sendable, Equatable {
        /// The path is already canonical: it is routed and forwarded as sent.
        case canonical
        /// The path is valid but another spelling of its canonical form (`normalize` gives that form).
        case normalizable
        /// Not a path the proxy can route.
        case invalid(Problem)
    }

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// A `%` not followed by two hex digits.
        case invalidPercentEncoding
        /// Neither `/…` nor `*`.
        case notAPath
        /// A `#`: a fragment is never part of a request target (RFC 9112 §3.2), and origins differ on where it ends
        /// the path.
        case fragment

        /// What is wrong, said of the path: "the path /a%zz " + description reads as a sentence.
        public var description: String {
            switch self {
            case .invalidPercentEncoding: "has an invalid percent-encoding ('%' must be followed by two hex digits)"
            case .notAPath: "does not start with '/'"
            case .fragment: "has a '#' (a fragment is never sent in a request target)"
            }
        }
    }

    /// One scan of `target` (a request target in origin-form, query string included): where the path ends (at
    /// `?` or the end), and whether it is canonical. No allocation: this runs for every request.
    ///
    /// An empty path (an absolute-form target without one) stands for `/` and is canonical; `*` (asterisk-form)
    /// is left as it is.
    public static func scan(_ target: UnsafeBufferPointer<UInt8>) -> (pathLength: Int, verdict: Verdict) {
        let count = target.count
        if count == 0 || target[0] == questionMark { return (0, .canonical) }
        if target[0] != slash {
            if count == 1, target[0] == UInt8(ascii: "*") { return (1, .canonical) }
            var end = 0
            while end < count, target[end] != questionMark { end += 1 }
            return (end, .invalid(.notAPath))
        }
        var verdict = Verdict.canonical
        // Per segment: its start, whether it holds only dots (as sent or encoded) so far, how many, and how many
        // encoded.
        var segmentStart = 1
        var dots = 0
        var encodedDots = 0
        var onlyDots = true
        var index = 1
        while true {
            let byte: UInt8 = index < count ? target[index] : questionMark
            if byte == slash || byte == questionMark {
                let length = index - segmentStart
                if length == 0 {
                    // An empty segment: `//`, or the single trailing slash (canonical: the route decides).
                    if byte == slash { verdict = .normalizable }
                } else if onlyDots, dots <= 2 {
                    // `.` and `..` are dot-segments; fully encoded ones are canonical data, mixed ones are not.
                    if encodedDots != dots { verdict = .normalizable }
                } else if encodedDots > 0 {
                    verdict = .normalizable  // `%2E` inside a longer segment decodes to `.`
                }
                if byte == questionMark { return (index, verdict) }
                index += 1
                segmentStart = index
                dots = 0
                encodedDots = 0
                onlyDots = true
                continue
            }
            if byte == percent {
                guard index + 2 < count, let high = hexValue(target[index + 1]), let low = hexValue(target[index + 2])
                else { return (pathEnd(target, from: index), .invalid(.invalidPercentEncoding)) }
                let decoded = high << 4 | low
                let lowercase = isLowercaseHex(target[index + 1]) || isLowercaseHex(target[index + 2])
                if decoded == dot {
                    dots += 1
                    encodedDots += 1
                    if lowercase { verdict = .normalizable }
                } else {
                    onlyDots = false
                    // Unreserved characters are decoded; the others are canonical with uppercase hex digits.
                    if lowercase || isUnreserved(decoded) { verdict = .normalizable }
                }
                index += 3
                continue
            }
            if byte == dot {
                dots += 1
            } else {
                onlyDots = false
                if byte == hash { return (pathEnd(target, from: index), .invalid(.fragment)) }
            }
            index += 1
        }
    }

    /// The canonical form of a path (no query string), or why it has none. The trailing slash is kept.
    public static func normalize(_ path: some Collection<UInt8>) -> Result<[UInt8], Problem> {
        let bytes = Array(path)
        guard let first = bytes.first else { return .success([slash]) }
        guard first == slash else {
            return bytes == [UInt8(ascii: "*")] ? .success(bytes) : .failure(.notAPath)
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 8)
        // Where each segment written to `output` starts (at its slash), to remove it again for a `..`.
        var starts: [Int] = []
        var endsWithSlash = false
        var segment: [UInt8] = []
        var index = 1
        while index <= bytes.count {
            let end = bytes[index...].firstIndex(of: slash) ?? bytes.count
            let raw = bytes[index..<end]
            let isLast = end == bytes.count
            if raw.isEmpty {
                endsWithSlash = isLast
            } else if raw.elementsEqual([dot]) {
                endsWithSlash = true
            } else if raw.elementsEqual([dot, dot]) {
                if let start = starts.popLast() { output.removeSubrange(start...) }
                endsWithSlash = true
            } else {
                segment.removeAll(keepingCapacity: true)
                var position = raw.startIndex
                var onlyDots = true
                while position < raw.endIndex {
                    let byte = raw[position]
                    if byte == percent {
                        guard position + 2 < raw.endIndex, let high = hexValue(raw[position + 1]),
                            let low = hexValue(raw[position + 2])
                        else {
                            return .failure(.invalidPercentEncoding)
                        }
                        let decoded = high << 4 | low
                        if isUnreserved(decoded) {
                            segment.append(decoded)
                        } else {
                            segment.append(contentsOf: [percent, upperHex(decoded >> 4), upperHex(decoded & 0x0F)])
                        }
                        if decoded != dot { onlyDots = false }
                        position += 3
                    } else {
                        if byte == hash { return .failure(.fragment) }
                        segment.append(byte)
                        if byte != dot { onlyDots = false }
                        position += 1
                    }
                }
                starts.append(output.count)
                output.append(slash)
                if onlyDots, segment.count <= 2 {
                    // Decoded, this would be a dot-segment, which it was not as sent: its dots stay encoded.
                    for _ in segment { output.append(contentsOf: [percent, UInt8(ascii: "2"), UInt8(ascii: "E")]) }
                } else {
                    output.append(contentsOf: segment)
                }
                endsWithSlash = false
            }
            index = end + 1
        }
        if output.isEmpty || endsWithSlash { output.append(slash) }
        return .success(output)
    }

    /// `normalize` of a string, for tests and tools.
    public static func normalize(_ path: String) -> Result<String, Problem> {
        self.normalize(Array(path.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    private static let slash = UInt8(ascii: "/")
    private static let questionMark = UInt8(ascii: "?")
    private static let percent = UInt8(ascii: "%")
    private static let dot = UInt8(ascii: ".")
    private static let hash = UInt8(ascii: "#")

    private static func pathEnd(_ target: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var end = start
        while end < target.count, target[end] != questionMark { end += 1 }
        return end
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte &- 0x30
        case 0x41...0x46: byte &- 0x41 &+ 10
        case 0x61...0x66: byte &- 0x61 &+ 10
        default: nil
        }
    }

    @inline(__always)
    private static func isLowercaseHex(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x66 }

    @inline(__always)
    private static func upperHex(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 &+ value : 0x41 &+ value &- 10 }

    /// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: true
        default: false
        }
    }
}

/// What the proxy does with a request whose path is not canonical (routes.json's table-wide `"paths"`).
public enum PathMode: String, Sendable, CaseIterable {
    /// Route, count, shadow and forward it by its canonical form (the default).
    case normalize
    /// Refuse it with 400 `non_canonical_path`: only canonical paths are served.
    case strict
}
