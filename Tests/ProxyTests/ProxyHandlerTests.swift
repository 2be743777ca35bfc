import HTTP1
import NIOCore
import NIOEmbedded
import ProxyTestSupport
import RouteTable
import Testing

@testable import Proxy

/// The client connection's channel handler on NIO's `EmbeddedChannel`: the machine's actions as bytes written and
/// connections closed, with the embedded loop's clock (no sockets; nothing here reaches an upstream).
@Suite("Client connection handler (embedded)")
struct ProxyHandlerTests {
    static let routes = """
        { "monolith": "http://127.0.0.1:1", "services": { "contacts": "http://127.0.0.1:2" },
          "routes": [ { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", \
          "stage": "transform" } ] }
        """

    /// A handler on an embedded channel, active (accepted), with `configure`'s limits; `limit` caps the connections.
    static func channel(
        limit: Int = 10, configure: (inout ProxyConfiguration) -> Void = { _ in }
    ) throws -> (EmbeddedChannel, EmbeddedEventLoop, ConnectionLimiter) {
        let loop = EmbeddedEventLoop()
        var configuration = ProxyConfiguration()
        configure(&configuration)
        let metrics = ProxyMetrics()
        let limiter = ConnectionLimiter(limit: limit, listener: "proxy", metrics: metrics)
        let store = try RouteTableStore(table: try RouteTable.parse(Self.routes), text: Self.routes)
        let shared = ProxyShared(
            store: store, configuration: configuration, metrics: metrics, recorder: nil, connections: limiter,
            group: loop)
        let channel = EmbeddedChannel(
            handler: ProxyHandler(shared: shared, loop: shared.loopState(for: loop)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, loop, limiter)
    }

    /// Everything the handler wrote, as text.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func aMalformedHeadIsAnswered400AndTheConnectionCloses() throws {
        let (channel, _, limiter) = try Self.channel()
        #expect(limiter.openConnections == 1)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\nHost: x\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"))
        let text = try Self.written(channel)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
        #expect(text.contains("connection: close\r\n") && text.contains("\"code\":\"bad_request\""))
        #expect(!channel.isActive)
        #expect(limiter.openConnections == 0, "released when the connection closed")
    }

    @Test func aHeadOverTheLimitIsAnswered431() throws {
        let (channel, _, _) = try Self.channel { $0.maxHeaderBytes = 64 }
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100)))
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 431 "))
        #expect(!channel.isActive)
    }

    @Test func theProxysOwnHeaderAndATooLargeDeclaredBodyAreRefusedBeforeRouting() throws {
        let (dryRun, _, _) = try Self.channel()
        try dryRun.writeInbound(
            ByteBuffer(string: "GET /contacts/1 HTTP/1.1\r\nHost: x\r\nStrangler-Dry-Run: 1\r\n\r\n"))
        #expect(try Self.written(dryRun).contains("\"code\":\"internal_header\""))
        #expect(!dryRun.isActive)

        let (large, _, _) = try Self.channel { $0.maxBodyBytes = 10 }
        try large.writeInbound(ByteBuffer(string: "POST /contacts/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"))
        #expect(try Self.written(large).hasPrefix("HTTP/1.1 413 "))
    }

    @Test func aHeadThatDoesNotComeWholeInTimeIsAnswered408() throws {
        let (channel, loop, _) = try Self.channel { $0.headTimeout = .seconds(2) }
        try channel.writeInbound(ByteBuffer(string: "GET / HT"))
        loop.advanceTime(by: .milliseconds(1900))
        #expect(try Self.written(channel).isEmpty && channel.isActive)
        loop.advanceTime(by: .milliseconds(200))
        let text = try Self.written(channel)
        #expect(
            text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && text.contains("\"code\":\"request_timeout\""),
            "\(text)")
        #expect(!channel.isActive)
    }

    @Test func anIdleConnectionClosesWithoutAnAnswer() throws {
        let (channel, loop, _) = try Self.channel {
            $0.headTimeout = .seconds(100)
            $0.idleTimeout = .seconds(5)
        }
        loop.advanceTime(by: .seconds(5))
        #expect(try Self.written(channel).isEmpty)
        #expect(!channel.isActive)
    }

    @Test func overTheCapTheConnectionClosesAtOnceAndNothingIsRead() throws {
        let (first, _, limiter) = try Self.channel(limit: 0)
        #expect(!first.isActive)
        #expect(limiter.openConnections == 0)
    }

    @Test func shutdownAndHalfCloseCloseAnIdleConnection() throws {
        let (quiescing, _, _) = try Self.channel()
        quiescing.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!quiescing.isActive)

        let (halfClosed, _, _) = try Self.channel()
        halfClosed.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.written(halfClosed).isEmpty)
        #expect(!halfClosed.isActive)
    }

    @Test func aPathThatCannotBeRoutedIsRefused() throws {
        let (channel, _, _) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "GET /contacts/%zz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let text = try Self.written(channel)
        #expect(text.hasPrefix("HTTP/1.1 400 ") && text.contains("the path /contacts/%zz"), "\(text)")
    }
}
