package import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One request on a connection kept open, and what comes back as it comes (a Server-Sent Events stream): the test
/// waits for text to arrive, with a deadline, and closes the connection when done.
package final class StreamingHTTP: Sendable {
    private final class Reader: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<String>

        init(_ received: NIOLockedValueBox<String>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            self.received.withLockedValue { $0 += String(buffer: buffer) }
        }
    }

    private let channel: any Channel
    private let received: NIOLockedValueBox<String>

    private init(channel: any Channel, received: NIOLockedValueBox<String>) {
        self.channel = channel
        self.received = received
    }

    /// Sends `text` (a whole request) to `port` on 127.0.0.1.
    package static func open(_ text: String, port: Int) async throws -> StreamingHTTP {
        let received = NIOLockedValueBox("")
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Reader(received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let stream = StreamingHTTP(channel: channel, received: received)
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
        return stream
    }

    /// Everything received so far.
    package var text: String { self.received.withLockedValue { $0 } }

    /// Waits until what was received after `offset` contains `needle` (nil past `within`); returns the text after
    /// `offset` up to and including it.
    package func wait(
        for needle: String, after offset: String.Index? = nil, within: Duration = .seconds(30)
    ) async -> String? {
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            let text = self.text
            let start = offset ?? text.startIndex
            if start <= text.endIndex, let range = text[start...].range(of: needle) {
                return String(text[start..<range.upperBound])
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    package func close() async {
        try? await self.channel.close()
    }
}
