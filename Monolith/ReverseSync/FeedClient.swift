import NIOCore
import NIOHTTP1
import NIOPosix

/// Reads one page of an extracted service's own event feed (`GET /events?after=&limit=&wait=`) over HTTP/1.1,
/// one request per connection. Cancelling the calling task closes the connection, so a long poll ends at once
/// on shutdown.
struct FeedClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let host: String
    let port: Int

    /// `http://host:port` (no path, query or TLS); nil otherwise.
    init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), !rest.contains("/"), !rest.contains("?") else { return nil }
        let host = String(rest[..<colon])
        guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    /// The answer's status and body.
    func get(_ path: String) async throws -> (status: Int, body: [UInt8]) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let headers = HTTPHeaders([("Host", "\(self.host):\(self.port)"), ("Connection", "close"), ("Accept", "application/json")])
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                do {
                    // One write: a server that answers and closes before our last write must not fail the exchange.
                    try await outbound.write(contentsOf: [.head(head), .end(nil)])
                } catch let error as ChannelError where error == .ioOnClosedChannel || error == .outputClosed {
                    // The server closed first; its answer, if any, is read below.
                }
                var status = 0
                var body: [UInt8] = []
                for try await part in inbound {
                    switch part {
                    case .head(let head): status = Int(head.status.code)
                    case .body(let bytes): body.append(contentsOf: bytes.readableBytesView)
                    case .end: return (status, body)
                    }
                }
                throw Failure(description: "the service closed the connection before answering")
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }
}
