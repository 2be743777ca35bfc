import NIOCore
import NIOHTTP1
import NIOPosix
import RouteTable

/// GETs a small JSON document with a deadline: the health, sync and reverse-sync probes behind the gates.
/// One request per connection; the answer is read whole (up to 1 MiB).
struct ProbeClient: Sendable {
    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer
    }

    /// Why a probe has no answer, in words for a gate's reason.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var timeout: Duration = .seconds(2)

    func get(_ upstream: Upstream, _ path: String) async throws(Failure) -> Answer {
        let timeout = self.timeout
        do {
            return try await withThrowingTaskGroup(of: Answer?.self) { group in
                group.addTask { try await Self.send(upstream, path) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else {
                    throw Failure(
                        description: "GET \(upstream)\(path): no answer within \(DurationText.format(timeout))")
                }
                return answer
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "GET \(upstream)\(path): \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            let reasons = connection.connectionErrors.map { "\($0.error)" }
            if reasons.contains(where: { $0.contains("refused") }) { return "connection refused" }
            return reasons.first ?? "cannot connect"
        }
        let text = "\(error)"
        return text.contains("refused") ? "connection refused" : text
    }

    private static func send(_ upstream: Upstream, _ path: String) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: upstream.host, port: upstream.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: path,
            headers: HTTPHeaders([
                ("Host", upstream.authority), ("Connection", "close"), ("Accept", "application/json"),
            ]))
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.head(head))
                try await outbound.write(.end(nil))
                var answer = Answer(status: 0, body: ByteBuffer())
                for try await part in inbound {
                    switch part {
                    case .head(let head): answer.status = Int(head.status.code)
                    case .body(var bytes):
                        guard answer.body.readableBytes + bytes.readableBytes <= 1 << 20 else {
                            throw Failure(description: "answer over 1 MiB")
                        }
                        answer.body.writeBuffer(&bytes)
                    case .end: return answer
                    }
                }
                throw Failure(description: "the connection closed before a whole answer")
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }
}
