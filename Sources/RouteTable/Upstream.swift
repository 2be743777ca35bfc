/// An upstream's address: `http://host:port`.
///
/// Its fields live in one shared, immutable box: the proxy copies upstreams on every request (the exchange, a
/// shadow's call, pool lookups), and a copy then costs one reference count instead of one per string.
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    private struct Fields: Sendable {
        let host: String
        let port: Int
        let url: String
        let authority: String
    }

    private let box: SharedBox<Fields>

    public var host: String { self.box.value.host }
    public var port: Int { self.box.value.port }
    /// As written in routes.json.
    public var url: String { self.box.value.url }
    /// The `Host` header to send upstream.
    public var authority: String { self.box.value.authority }

    init(host: String, port: Int, url: String, authority: String) {
        self.box = SharedBox(Fields(host: host, port: port, url: url, authority: authority))
    }

    public var description: String { self.url }

    public static func == (lhs: Upstream, rhs: Upstream) -> Bool {
        lhs.box === rhs.box || (lhs.port == rhs.port && lhs.host == rhs.host && lhs.url == rhs.url)
    }

    /// Hashes the port only: cheap on the proxy's hot path (pool lookups), and upstreams rarely share one.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.port) }

    /// Parses `http://host[:port]` (no path, query, user or https), or returns why not.
    public static func parse(_ text: String) -> Result<Upstream, TemplateError> {
        guard text.hasPrefix("http://") else {
            return .failure(
                TemplateError(
                    reason: text.hasPrefix("https://")
                        ? "https upstreams are not supported; use http://" : "must be an http:// URL"))
        }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty else { return .failure(TemplateError(reason: "has no host")) }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#"), !rest.contains("@") else {
            return .failure(TemplateError(reason: "must be only scheme, host and port (no path, query or user)"))
        }
        var host = rest
        var port = 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                return .failure(TemplateError(reason: "has an unterminated IPv6 address"))
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else {
                    return .failure(TemplateError(reason: "has an invalid port"))
                }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else {
                return .failure(TemplateError(reason: "has an invalid port"))
            }
            port = value
        }
        guard (1...65535).contains(port) else { return .failure(TemplateError(reason: "has a port outside 1–65535")) }
        guard !host.isEmpty,
            host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":") })
        else {
            return .failure(TemplateError(reason: "has an invalid host"))
        }
        let hostText = String(host)
        let authority =
            port == 80 ? hostText : (hostText.contains(":") ? "[\(hostText)]:\(port)" : "\(hostText):\(port)")
        return .success(Upstream(host: hostText, port: port, url: text, authority: authority))
    }
}

/// Durations in routes.json: `250ms`, `2s`, `1.5s`, `1m`.
public enum DurationText {
    /// The longest duration accepted, in milliseconds: 100 years.
    static let longest: Double = 100 * 365 * 86_400 * 1000

    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, seconds) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" also ends with "s": make sure the number part is a number.
            guard let value = Double(number), value.isFinite, value >= 0, !number.hasPrefix("+"), !number.isEmpty else {
                continue
            }
            // At most 100 years: a longer one is a typo, and past Int64 milliseconds the conversion would trap.
            let milliseconds = (value * seconds * 1000).rounded()
            guard milliseconds <= Self.longest else { return nil }
            return .milliseconds(Int64(milliseconds))
        }
        return nil
    }

    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
