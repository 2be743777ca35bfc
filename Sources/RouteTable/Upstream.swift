/// An upstream's address: `http://host:port`.
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// As written in routes.json.
    public let url: String

    public var description: String { self.url }

    public static func == (lhs: Upstream, rhs: Upstream) -> Bool { lhs.port == rhs.port && lhs.host == rhs.host && lhs.url == rhs.url }

    /// Hashes the port only: cheap on the proxy's hot path (pool lookups), and upstreams rarely share one.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.port) }
    /// The `Host` header to send upstream.
    public let authority: String

    /// Parses `http://host[:port]` (no path, query, user or https), or returns why not.
    public static func parse(_ text: String) -> Result<Upstream, TemplateError> {
        guard text.hasPrefix("http://") else {
            return .failure(TemplateError(reason: text.hasPrefix("https://") ? "https upstreams are not supported; use http://" : "must be an http:// URL"))
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
            guard let close = rest.firstIndex(of: "]") else { return .failure(TemplateError(reason: "has an unterminated IPv6 address")) }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { return .failure(TemplateError(reason: "has an invalid port")) }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { return .failure(TemplateError(reason: "has an invalid port")) }
            port = value
        }
        guard (1...65535).contains(port) else { return .failure(TemplateError(reason: "has a port outside 1–65535")) }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":") }) else {
            return .failure(TemplateError(reason: "has an invalid host"))
        }
        let hostText = String(host)
        let authority = port == 80 ? hostText : (hostText.contains(":") ? "[\(hostText)]:\(port)" : "\(hostText):\(port)")
        return .success(Upstream(host: hostText, port: port, url: text, authority: authority))
    }
}

/// Durations in routes.json: `250ms`, `2s`, `1.5s`, `1m`.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, seconds) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" also ends with "s": make sure the number part is a number.
            guard let value = Double(number), value.isFinite, value >= 0, !number.hasPrefix("+"), !number.isEmpty else { continue }
            return .milliseconds(Int64((value * seconds * 1000).rounded()))
        }
        return nil
    }

    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
