/// Where a side listens: host and port of a plain `http://` URL.
///
/// ```swift
/// let monolith = try HTTPEndpoint(url: "http://127.0.0.1:8081")
/// let service = HTTPEndpoint(host: "127.0.0.1", port: 8082)
/// ```
public struct HTTPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `http://host:port` (a trailing `/` is allowed; no other path, no `https`).
    public init(url: String) throws(HarnessError) {
        var rest = Substring(url)
        guard rest.hasPrefix("http://") else {
            throw HarnessError("a target URL must start with http://, not \"\(url)\"")
        }
        rest = rest.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.isEmpty else {
            throw HarnessError("a target URL is http://host:port with no path, not \"\(url)\"")
        }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw HarnessError("\"\(url)\" has no valid port")
            }
            self.init(host: String(rest[..<colon]), port: port)
        } else {
            self.init(host: String(rest), port: 80)
        }
    }

    public var description: String { "http://\(self.host):\(self.port)" }
}

/// Something the harness could not do (a target that does not answer, a step that names a variable nothing
/// captured, a fixture that cannot be read); a disagreement between targets is a ``ParityFailure`` instead.
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
