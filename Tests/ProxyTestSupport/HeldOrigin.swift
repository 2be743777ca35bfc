package import Foundation
package import NIOConcurrencyHelpers
package import NIOCore
package import NIOPosix

/// A raw origin that reads nothing until the test lets it (a small receive buffer and no automatic reads), then reads a
/// request with a `Content-Length` body whole and answers `200 ok`: an upstream so slow to read that the proxy must
/// hold its client's reads (backpressure).
package final class HeldOrigin: Sendable {
    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let received: NIOLockedValueBox<Int>
        /// Answers `413` as soon as a head is whole, reading none of its body (an upstream refusing early).
        let early: Bool
        /// The head read so far; nil while its body is being read.
        private var head: [UInt8]? = []
        private var remaining = 0

        init(received: NIOLockedValueBox<Int>, early: Bool) {
            self.received = received
            self.early = early
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            self.received.withLockedValue { $0 += buffer.readableBytes }
            if var head = self.head {
                head += buffer.readableBytesView
                let text = String(decoding: head, as: UTF8.self)
                guard let end = text.range(of: "\r\n\r\n") else {
                    self.head = head
                    return
                }
                let lines = text[..<end.lowerBound].lowercased().split(separator: "\r\n")
                let length =
                    lines.first { $0.hasPrefix("content-length:") }.flatMap {
                        Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces))
                    } ?? 0
                self.remaining = length - (head.count - text.utf8.distance(from: text.startIndex, to: end.upperBound))
                self.head = nil
                if self.early {
                    context.writeAndFlush(
                        self.wrapOutboundOut(
                            ByteBuffer(string: "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")),
                        promise: nil)
                    self.remaining = .max
                    return
                }
            } else {
                self.remaining -= buffer.readableBytes
            }
            if self.remaining <= 0 {
                context.writeAndFlush(
                    self.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
                    promise: nil)
                self.head = []
            }
        }
    }

    package let port: Int
    private let server: any Channel
    private let children: NIOLockedValueBox<[any Channel]>
    private let received: NIOLockedValueBox<Int>

    private init(
        port: Int, server: any Channel, children: NIOLockedValueBox<[any Channel]>, received: NIOLockedValueBox<Int>
    ) {
        self.port = port
        self.server = server
        self.children = children
        self.received = received
    }

    /// Starts listening; with `holding` false it reads from the start (an origin that is merely slow to say 100
    /// Continue: it never does).
    /// With `early`, it answers 413 at each head and reads (and ignores) the body after it.
    package static func start(holding: Bool = true, early: Bool = false) async throws -> HeldOrigin {
        let children = NIOLockedValueBox<[any Channel]>([])
        let received = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.autoRead, value: !holding)
            .childChannelOption(.socketOption(.so_rcvbuf), value: 65536)
            .childChannelInitializer { channel in
                children.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(received: received, early: early))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HeldOrigin(port: server.localAddress?.port ?? 0, server: server, children: children, received: received)
    }

    /// Bytes read so far.
    package var receivedBytes: Int { self.received.withLockedValue { $0 } }

    /// Starts reading, on every connection.
    package func release() {
        for channel in self.children.withLockedValue({ $0 }) {
            channel.eventLoop.execute {
                channel.setOption(.autoRead, value: true).whenComplete { _ in channel.read() }
            }
        }
    }

    package func stop() async {
        for channel in self.children.withLockedValue({ $0 }) { try? await channel.close() }
        try? await self.server.close()
    }
}
