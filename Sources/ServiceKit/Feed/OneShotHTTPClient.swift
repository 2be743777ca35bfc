public import NIOCore
public import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client: one request per connection, the whole answer read. The feed consumer reads the
/// monolith's feed with it, and the CLI talks to the proxy's admin API with it.
///
/// Cancelling the calling task closes the connection, so a long poll ends at once on shutdown.
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

    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Sends one request; `Host` and `Connection: close` are added, and `Content-Length` when there is a body.
    public func send(_ method: HTTPMethod, _ path: String, headers extra: HTTPHeaders = [:], body: ByteBuffer? = nil) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        var headers = HTTPHeaders([("Host", "\(self.host):\(self.port)"), ("Connection", "close")])
        headers.add(contentsOf: extra)
        if let body { headers.add(name: "Content-Length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                var parts: [HTTPClientRequestPart] = [.head(head)]
                if let body { parts.append(.body(.byteBuffer(body))) }
                parts.append(.end(nil))
                do {
                    // One write: a server that answers and closes (we asked for Connection: close) as soon as it has the
                    // head must not make a later write of ours fail the exchange.
                    try await outbound.write(contentsOf: parts)
                } catch let error as ChannelError where error == .ioOnClosedChannel || error == .outputClosed {
                    // The server closed first; its answer, if it sent one, is still to be read below.
                }
                var answer = Answer(status: 0, headers: [:], body: ByteBuffer())
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        answer.status = Int(head.status.code)
                        answer.headers = head.headers
                    case .body(var bytes):
                        answer.body.writeBuffer(&bytes)
                    case .end:
                        return answer
                    }
                }
                throw IncompleteAnswer()
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }
}
