public import AsyncHTTPClient
public import NIOCore
public import NIOHTTP1
public import NIOSSL

/// One request, its whole answer read, for the CLI's commands: a thin layer over the process's
/// `HTTPClient.toolkit` that keeps the commands' `send` and ``Answer``. Each request asks for `Connection: close`.
///
/// Cancelling the calling task cancels the request, so a long poll ends at once on shutdown.
public struct OneShotHTTPClient: Sendable {
    /// A complete answer.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: ByteBuffer
    }

    /// The connection closed before a whole answer arrived.
    public struct IncompleteAnswer: Error, CustomStringConvertible {
        public var description: String { "the server closed the connection before answering" }
    }

    /// The largest answer read (larger ones fail with `NIOTooManyBytesError`).
    public static let maxAnswerBytes = 64 << 20

    public let host: String
    public let port: Int
    /// `http`, or `https` (verified with ``tlsConfiguration``).
    public let scheme: String
    /// For `https`: how the server's certificate is checked (nil: the system's trust store, the host's name).
    public var tlsConfiguration: TLSConfiguration?
    /// Deadline of a request, until its answer's head.
    public var timeout: TimeAmount
    let client: HTTPClient

    public init(
        host: String, port: Int, scheme: String = "http", tlsConfiguration: TLSConfiguration? = nil,
        timeout: TimeAmount = .minutes(5), client: HTTPClient = .toolkit
    ) {
        self.host = host
        self.port = port
        self.scheme = scheme
        self.tlsConfiguration = tlsConfiguration
        self.timeout = timeout
        self.client = client
    }

    /// Sends one request; `Host` and `Connection: close` are added, and `Content-Length` when there is a body.
    public func send(
        _ method: HTTPMethod, _ path: String, headers extra: HTTPHeaders = [:], body: ByteBuffer? = nil
    ) async throws -> Answer {
        let authority = "\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(self.port)"
        var request = HTTPClientRequest(url: "\(self.scheme)://\(authority)\(path)")
        request.tlsConfiguration = self.tlsConfiguration
        request.method = method
        request.headers = HTTPHeaders([("Host", authority), ("Connection", "close")])
        request.headers.add(contentsOf: extra)
        request.body = body.map { .bytes($0) }
        do {
            let response = try await self.client.execute(request, timeout: self.timeout)
            let body = try await response.body.collect(upTo: Self.maxAnswerBytes)
            return Answer(status: Int(response.status.code), headers: response.headers, body: body)
        } catch let error as HTTPClientError where error == .remoteConnectionClosed {
            throw IncompleteAnswer()
        }
    }
}
