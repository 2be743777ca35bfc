/// One instance of an upstream: `http://host[:port][/prefix]` or `https://…`.
///
/// Its fields live in one shared, immutable box: the proxy copies upstreams on every request (the exchange, a
/// shadow's call, pool lookups), and a copy then costs one reference count instead of one per string.
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    private struct Fields: Sendable {
        let host: String
        let port: Int
        let url: String
        let authority: String
        let isTLS: Bool
        let pathPrefix: String
        let tls: UpstreamTLS?
        let hostIsName: Bool
    }

    private let box: SharedBox<Fields>

    public var host: String { self.box.value.host }
    public var port: Int { self.box.value.port }
    /// As written in routes.json.
    public var url: String { self.box.value.url }
    /// The `Host` header to send upstream.
    public var authority: String { self.box.value.authority }
    /// `https://`: the connection speaks TLS (verified as `tls` says).
    public var isTLS: Bool { self.box.value.isTLS }
    /// The URL's path without its trailing slash (`/api` of `http://host/api/`), put before every forwarded path;
    /// empty for none.
    public var pathPrefix: String { self.box.value.pathPrefix }
    /// How a TLS connection to it is verified and authenticated (`https://` only; nil: the defaults).
    public var tls: UpstreamTLS? { self.box.value.tls }
    /// The host is a name to resolve (not an IPv4 or IPv6 address literal).
    public var hostIsName: Bool { self.box.value.hostIsName }
    /// The name TLS asks for (SNI) and verifies: the host when it is a name; nil for an address (verified against
    /// the certificate's IP addresses).
    public var serverName: String? { self.hostIsName ? self.host : nil }

    init(
        host: String, port: Int, url: String, authority: String, isTLS: Bool = false, pathPrefix: String = "",
        tls: UpstreamTLS? = nil
    ) {
        self.box = SharedBox(
            Fields(
                host: host, port: port, url: url, authority: authority, isTLS: isTLS, pathPrefix: pathPrefix, tls: tls,
                hostIsName: !host.contains(":") && !host.split(separator: ".").allSatisfy { $0.allSatisfy(\.isNumber) })
        )
    }

    /// The same instance with `tls` settings (a service's `"tls"` applies to its `https://` instances).
    public func with(tls: UpstreamTLS?) -> Upstream {
        Upstream(
            host: self.host, port: self.port, url: self.url, authority: self.authority, isTLS: self.isTLS,
            pathPrefix: self.pathPrefix, tls: self.isTLS ? tls : nil)
    }

    public var description: String { self.url }

    public static func == (lhs: Upstream, rhs: Upstream) -> Bool {
        lhs.box === rhs.box
            || (lhs.port == rhs.port && lhs.host == rhs.host && lhs.url == rhs.url && lhs.tls == rhs.tls)
    }

    /// Hashes the port only: cheap on the proxy's hot path (pool lookups), and upstreams rarely share one.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.port) }

    /// Parses `http://host[:port][/prefix]` or `https://…` (no query, fragment or user), or returns why not.
    public static func parse(_ text: String) -> Result<Upstream, TemplateError> {
        let isTLS = text.hasPrefix("https://")
        guard isTLS || text.hasPrefix("http://") else {
            return .failure(TemplateError(reason: "must be an http:// or https:// URL"))
        }
        var rest = Substring(text.dropFirst(isTLS ? "https://".count : "http://".count))
        guard !rest.contains("?"), !rest.contains("#"), !rest.contains("@") else {
            return .failure(
                TemplateError(reason: "must be only scheme, host, port and path (no query, fragment or user)"))
        }
        var pathPrefix = ""
        if let slash = rest.firstIndex(of: "/") {
            var path = String(rest[slash...])
            rest = rest[..<slash]
            while path.hasSuffix("/") { path.removeLast() }
            if !path.isEmpty {
                let verdict = Array(path.utf8).withUnsafeBufferPointer { CanonicalPath.scan($0).verdict }
                guard verdict == .canonical, path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                    return .failure(
                        TemplateError(
                            reason:
                                "has a path prefix \"\(path)\" that is not canonical (no empty or dot segments, spaces, "
                                + "controls or stray '%')"))
                }
            }
            pathPrefix = path
        }
        guard !rest.isEmpty else { return .failure(TemplateError(reason: "has no host")) }
        let defaultPort = isTLS ? 443 : 80
        var host = rest
        var port = defaultPort
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
            port == defaultPort
            ? (hostText.contains(":") ? "[\(hostText)]" : hostText)
            : (hostText.contains(":") ? "[\(hostText)]:\(port)" : "\(hostText):\(port)")
        return .success(
            Upstream(host: hostText, port: port, url: text, authority: authority, isTLS: isTLS, pathPrefix: pathPrefix))
    }
}

/// How the proxy speaks TLS to a service's `https://` instances (routes.json: `services.NAME.tls`).
///
/// ```json
/// "tls": { "ca": "certs/internal-ca.pem", "cert": "certs/proxy.pem", "key": "certs/proxy.key" }
/// ```
public struct UpstreamTLS: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust instead of the system's; nil: the system trust store.
    public var ca: String?
    /// The proxy's client certificate (PEM, a chain allowed) for mutual TLS; with `key`.
    public var cert: String?
    /// The client certificate's private key (PEM).
    public var key: String?
    /// No verification of the instance's certificate at all (written out only; warned about at start and in
    /// `strangler routes`).
    public var insecure: Bool

    public init(ca: String? = nil, cert: String? = nil, key: String? = nil, insecure: Bool = false) {
        self.ca = ca
        self.cert = cert
        self.key = key
        self.insecure = insecure
    }

    static let keys: Set<String> = ["ca", "cert", "key", "insecure"]
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
