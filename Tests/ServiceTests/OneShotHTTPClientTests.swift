import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceKit
import Testing

/// A server that answers as soon as the first bytes of a request arrive and closes the connection at once, without
/// waiting for the rest: a client that asked for `Connection: close` must still read the answer.
private final class AnswerAndClose: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = #"{"status":"ok"}"#
        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in channel.close(promise: nil) }
    }
}

@Suite("OneShotHTTPClient")
struct OneShotHTTPClientTests {
    @Test func anAnswerSentBeforeTheRequestIsWrittenIsStillRead() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AnswerAndClose()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        // Many times, so that the server's close lands before, during and after the client's writes.
        for _ in 0..<50 {
            let answer = try await OneShotHTTPClient(host: "127.0.0.1", port: port).send(.GET, "/healthz")
            #expect(answer.status == 200 && String(buffer: answer.body) == #"{"status":"ok"}"#)
        }
        try await server.close()
    }
}
