import NIOCore
import NIOPosix

/// The upstream the benchmarks forward to: answers every request head with the same prebuilt `200` (a JSON body of
/// about 150 bytes, `Content-Length`, keep-alive), so that it costs as little as an origin can.
///
/// It reads raw bytes (no HTTP codec) and only looks for the blank line that ends a head: the benchmarks send GETs
/// without bodies. Each answer is the one preallocated buffer written again (NIO writes it without copying).
enum FixedResponseOrigin {
    /// The JSON body every answer carries.
    static let body =
        #"{"id":"c_42","name":"Ada Lovelace","email":"ada@example.com","accountId":"a_01","#
        + #""tags":["vip","beta"],"createdAt":"2024-01-01T00:00:00Z","owner":"u_07"}"#

    /// The whole answer, head and body.
    static let response: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.writeString("HTTP/1.1 200 OK\r\n")
        buffer.writeString("Content-Type: application/json\r\n")
        buffer.writeString("Content-Length: \(Self.body.utf8.count)\r\n\r\n")
        buffer.writeString(Self.body)
        return buffer
    }()

    /// Listens on 127.0.0.1, any free port; close the channel returned to stop.
    static func start(group: any EventLoopGroup) async throws -> any Channel {
        let response = Self.response
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// One connection: counts the heads that end in what it reads and writes one answer for each.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let response: ByteBuffer
        /// How much of `\r\n\r\n` the bytes read so far end with (a head can arrive in pieces).
        private var matched = 0
        private var wrote = false

        init(response: ByteBuffer) {
            self.response = response
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = self.unwrapInboundIn(data)
            var heads = 0
            var matched = self.matched
            bytes.withUnsafeReadableBytes { raw in
                for byte in raw {
                    switch (matched, byte) {
                    case (0, UInt8(ascii: "\r")), (2, UInt8(ascii: "\r")): matched += 1
                    case (1, UInt8(ascii: "\n")): matched = 2
                    case (3, UInt8(ascii: "\n")):
                        heads += 1
                        matched = 0
                    case (_, UInt8(ascii: "\r")): matched = 1
                    default: matched = 0
                    }
                }
            }
            self.matched = matched
            for _ in 0..<heads { context.write(self.wrapOutboundOut(self.response), promise: nil) }
            if heads > 0 { self.wrote = true }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if self.wrote {
                self.wrote = false
                context.flush()
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
