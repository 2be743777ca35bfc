package import NIOConcurrencyHelpers
package import NIOCore
package import NIOPosix

/// One TCP connection a test keeps open: it writes bytes when it likes and reads what came so far, and whether the
/// server closed the connection (for slow clients and connection caps).
package final class RawConnection: Sendable {
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<(received: [UInt8], closed: Bool)>

        init(state: NIOLockedValueBox<(received: [UInt8], closed: Bool)>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            self.state.withLockedValue { $0.received += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<(received: [UInt8], closed: Bool)>

    private init(channel: any Channel, state: NIOLockedValueBox<(received: [UInt8], closed: Bool)>) {
        self.channel = channel
        self.state = state
    }

    /// Connects to `port`; `first`, when given, is written on the event loop as the connection comes up (a test of a
    /// server's clock that starts at the accept must not wait for a thread of the cooperative pool in between).
    package static func open(port: Int, first: String? = nil) async throws -> RawConnection {
        let state = NIOLockedValueBox<(received: [UInt8], closed: Bool)>(([], false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .flatMap { channel in
                guard let first else { return channel.eventLoop.makeSucceededFuture(channel) }
                return channel.writeAndFlush(ByteBuffer(string: first)).map { channel }
            }
            .get()
        return RawConnection(channel: channel, state: state)
    }

    /// Writes `text`; a write to a connection the server closed is not an error here (the test looks at `isClosed`).
    package func write(_ text: String) async {
        try? await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Writes raw bytes (a WebSocket frame, say).
    package func write(bytes: [UInt8]) async {
        try? await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Every byte received so far.
    package var received: [UInt8] { self.state.withLockedValue { $0.received } }

    package var text: String { String(decoding: self.state.withLockedValue { $0.received }, as: UTF8.self) }
    package var isClosed: Bool { self.state.withLockedValue { $0.closed } }
    package var responses: [RawResponse] { RawHTTP.parse(self.text) }

    /// Waits until the server closed the connection, or `timeout` passed; returns whether it closed.
    package func waitForClose(within timeout: Duration) async -> Bool {
        await eventually(within: timeout) { self.isClosed }
    }

    /// Waits until `count` responses came (or the connection closed, or `timeout` passed).
    package func waitForResponses(_ count: Int, within timeout: Duration = .seconds(30)) async -> [RawResponse] {
        _ = await eventually(within: timeout) { self.responses.count >= count || self.isClosed }
        return self.responses
    }

    package func close() async {
        try? await self.channel.close()
    }
}
