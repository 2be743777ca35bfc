import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client for tests: whole answers, a deadline per request, one-shot requests or a kept-alive
/// connection for many. It adds only `Host` and, when the request has none, `Content-Length` (also `0` for a
/// POST, PUT or PATCH without body, so that nothing is sent chunked).
///
/// ```swift
/// let client = HTTPTestClient()
/// let answer = try await client.send(HTTPRequestData(method: "GET", target: "/contacts?limit=2"), to: monolith)
/// try await client.withConnection(to: proxy) { connection in
///     for _ in 0..<100 { _ = try await connection.send(HTTPRequestData(method: "GET", target: "/healthz")) }
/// }
/// ```
public struct HTTPTestClient: Sendable {
    /// Deadline of each request, from its first byte sent to its answer's last byte.
    public var timeout: Duration

    public init(timeout: Duration = .seconds(10)) {
        self.timeout = timeout
    }

    /// Sends one request on a new connection (closed afterwards) and returns the whole answer.
    public func send(_ request: HTTPRequestData, to endpoint: HTTPEndpoint) async throws -> HTTPAnswer {
        try await self.withConnection(to: endpoint) { connection in try await connection.send(request, close: true) }
    }

    /// Opens a connection, runs `body` with it (requests one after the other, kept alive), then closes it.
    public func withConnection<T>(to endpoint: HTTPEndpoint, _ body: (HTTPConnection) async throws -> T) async throws -> T {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw HarnessError("cannot connect to \(endpoint): \(error)")
        }
        let underlying = channel.channel
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                let connection = HTTPConnection(
                    endpoint: endpoint, channel: underlying, iterator: inbound.makeAsyncIterator(), outbound: outbound, timeout: self.timeout)
                return try await body(connection)
            }
        } onCancel: {
            underlying.close(promise: nil)
        }
    }
}

/// One kept-alive HTTP/1.1 connection (``HTTPTestClient/withConnection(to:_:)``): requests are sent one after the
/// other, each answer read whole before the next request goes out.
public final class HTTPConnection {
    public let endpoint: HTTPEndpoint
    private let channel: any Channel
    private var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let timeout: Duration
    /// The server said `Connection: close`, or the connection failed: no further request can go out on it.
    public private(set) var isClosed = false

    init(
        endpoint: HTTPEndpoint, channel: any Channel, iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, timeout: Duration
    ) {
        self.endpoint = endpoint
        self.channel = channel
        self.iterator = iterator
        self.outbound = outbound
        self.timeout = timeout
    }

    /// Sends `request` and reads its whole answer. `close` adds `Connection: close`.
    public func send(_ request: HTTPRequestData, close: Bool = false) async throws -> HTTPAnswer {
        guard !self.isClosed else { throw HarnessError("the connection to \(self.endpoint) is closed") }
        var headers = HTTPHeaders()
        if !request.headers.contains(where: { $0.name.lowercased() == "host" }) { headers.add(name: "Host", value: "\(self.endpoint.host):\(self.endpoint.port)") }
        for header in request.headers { headers.add(name: header.name, value: header.value) }
        let framed = request.headers.contains { ["content-length", "transfer-encoding"].contains($0.name.lowercased()) }
        if !framed, !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            headers.add(name: "Content-Length", value: String(request.body.count))
        }
        if close { headers.add(name: "Connection", value: "close") }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: request.target, headers: headers)

        let channel = self.channel
        let started = ContinuousClock.now
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(self.timeout)) {
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            try await self.outbound.write(.head(head))
            if !request.body.isEmpty { try await self.outbound.write(.body(.byteBuffer(ByteBuffer(bytes: request.body)))) }
            try await self.outbound.write(.end(nil))
            var status = 0
            var answerHeaders: [(name: String, value: String)] = []
            var body: [UInt8] = []
            var keepAlive = true
            while let part = try await self.iterator.next() {
                switch part {
                case .head(let head):
                    // 1xx answers (100 Continue) precede the real one.
                    if head.status.code < 200, head.status.code != 101 { continue }
                    status = Int(head.status.code)
                    answerHeaders = head.headers.map { (name: $0.name, value: $0.value) }
                    keepAlive = head.isKeepAlive
                case .body(let bytes):
                    body.append(contentsOf: bytes.readableBytesView)
                case .end:
                    if !keepAlive || close { self.isClosed = true }
                    return HTTPAnswer(status: status, headers: answerHeaders, body: body)
                }
            }
            throw HarnessError("\(self.endpoint) closed the connection before answering \(request)")
        } catch {
            self.isClosed = true
            if ContinuousClock.now - started >= self.timeout {
                throw HarnessError("\(self.endpoint) did not answer \(request) within \(self.timeout)")
            }
            if let error = error as? HarnessError { throw error }
            throw HarnessError("\(request) to \(self.endpoint) failed: \(error)")
        }
    }
}
