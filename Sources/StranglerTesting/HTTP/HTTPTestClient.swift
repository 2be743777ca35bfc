public import AsyncHTTPClient
public import Diff
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client for tests, over AsyncHTTPClient: whole answers, a deadline per request, one-shot requests or
/// a kept-alive connection for many. It adds only `Host` and `Content-Length` (also `0` for a POST, PUT or PATCH
/// without body, so that nothing is sent chunked); framing headers in a request are replaced by the client's.
///
/// ```swift
/// let client = HTTPTestClient()
/// let answer = try await client.send(HTTPRequestData(method: "GET", target: "/contacts?limit=2"), to: monolith)
/// try await client.withConnection(to: proxy) { connection in
///     for _ in 0..<100 { _ = try await connection.send(HTTPRequestData(method: "GET", target: "/healthz")) }
/// }
/// ```
public struct HTTPTestClient: Sendable {
    /// Deadline of each request, from its first byte sent to its answer's head; the body is then read for as long as
    /// bytes keep coming (a minute at most without one).
    public var timeout: Duration
    let client: HTTPClient

    /// How tests call servers: HTTP/1.1, redirects not followed, bodies as sent (no `Accept-Encoding`), a refused
    /// connection reported at once, 5 s to connect.
    public static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .minutes(1)),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// The process's client for one-shot requests: like `HTTPClient.shared`, it lives as long as the process (a global
    /// is never deinitialised), so it is never shut down.
    public static let processClient = HTTPClient(
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)

    /// A client sending through `client` (its owner shuts it down), the process's own by default.
    public init(timeout: Duration = .seconds(10), client: HTTPClient = HTTPTestClient.processClient) {
        self.timeout = timeout
        self.client = client
    }

    /// Sends one request on a new connection (closed afterwards: it says `Connection: close`) and returns the whole
    /// answer.
    public func send(_ request: HTTPRequestData, to endpoint: HTTPEndpoint) async throws -> HTTPAnswer {
        try await Self.exchange(request, to: endpoint, close: true, client: self.client, timeout: self.timeout).answer
    }

    /// Opens a connection, runs `body` with it (requests one after the other, kept alive), then closes it: a client of
    /// its own with one connection, shut down afterwards.
    public func withConnection<T>(
        to endpoint: HTTPEndpoint, _ body: (HTTPConnection) async throws -> T
    ) async throws
        -> T
    {
        var configuration = Self.configuration
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let result: T
        do {
            result = try await body(HTTPConnection(endpoint: endpoint, client: client, timeout: self.timeout))
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    /// One request and its whole answer; `keepAlive` is false when the server closes the connection after it.
    static func exchange(
        _ request: HTTPRequestData, to endpoint: HTTPEndpoint, close: Bool, client: HTTPClient, timeout: Duration
    ) async throws(HarnessError) -> (answer: HTTPAnswer, keepAlive: Bool) {
        let authority =
            endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
        var outgoing = HTTPClientRequest(url: "http://\(authority)\(request.target)")
        outgoing.method = HTTPMethod(rawValue: request.method)
        if !request.headers.contains(where: { $0.name.lowercased() == "host" }) {
            outgoing.headers.add(name: "Host", value: authority)
        }
        for header in request.headers { outgoing.headers.add(name: header.name, value: header.value) }
        if close { outgoing.headers.add(name: "Connection", value: "close") }
        if !request.body.isEmpty { outgoing.body = .bytes(ByteBuffer(bytes: request.body)) }
        do {
            let response = try await client.execute(outgoing, timeout: TimeAmount(timeout))
            let body = try await response.body.collect(upTo: Self.maxAnswerBytes)
            let headers = response.headers.map { (name: $0.name, value: $0.value) }
            let connection = response.headers[canonicalForm: "connection"].map { $0.lowercased() }
            let keepAlive =
                response.version.minor >= 1 ? !connection.contains("close") : connection.contains("keep-alive")
            return (
                HTTPAnswer(status: Int(response.status.code), headers: headers, body: Array(body.readableBytesView)),
                keepAlive && !close
            )
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw HarnessError("\(endpoint) did not answer \(request) within \(timeout)")
        } catch let error as HTTPClientError where error == .remoteConnectionClosed {
            throw HarnessError("\(endpoint) closed the connection before answering \(request)")
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw HarnessError("cannot connect to \(endpoint): \(error)")
        } catch let error as NIOConnectionError {
            throw HarnessError("cannot connect to \(endpoint): \(error)")
        } catch {
            throw HarnessError("\(request) to \(endpoint) failed: \(error)")
        }
    }

    /// The largest answer a test reads.
    static let maxAnswerBytes = 256 << 20
}

/// One kept-alive HTTP/1.1 connection (``HTTPTestClient/withConnection(to:_:)``): requests are sent one after the
/// other, each answer read whole before the next request goes out.
public final class HTTPConnection {
    public let endpoint: HTTPEndpoint
    private let client: HTTPClient
    private let timeout: Duration
    /// The server said `Connection: close`, or the connection failed: no further request can go out on it.
    public private(set) var isClosed = false

    init(endpoint: HTTPEndpoint, client: HTTPClient, timeout: Duration) {
        self.endpoint = endpoint
        self.client = client
        self.timeout = timeout
    }

    /// Sends `request` and reads its whole answer. `close` adds `Connection: close`.
    public func send(_ request: HTTPRequestData, close: Bool = false) async throws -> HTTPAnswer {
        guard !self.isClosed else { throw HarnessError("the connection to \(self.endpoint) is closed") }
        do {
            let (answer, keepAlive) = try await HTTPTestClient.exchange(
                request, to: self.endpoint, close: close, client: self.client, timeout: self.timeout)
            if !keepAlive { self.isClosed = true }
            return answer
        } catch {
            self.isClosed = true
            throw error
        }
    }
}
