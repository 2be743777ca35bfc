package import Foundation
package import NIOConcurrencyHelpers
package import NIOCore
package import NIOPosix
package import RouteTable

/// A parsed HTTP/1.1 response.
package struct RawResponse {
    package var status: Int
    package var headers: [(String, String)]
    package var body: String

    package func header(_ name: String) -> String? { self.headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// Sends raw bytes on one TCP connection and collects what comes back until the server closes the
/// connection (or the deadline passes), so tests can send malformed and smuggled requests.
package enum RawHTTP {
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        // Touched only on the channel's event loop.
        var received = ByteBuffer()
        let done: EventLoopPromise<ByteBuffer>

        init(done: EventLoopPromise<ByteBuffer>) { self.done = done }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = self.unwrapInboundIn(data)
            self.received.writeBuffer(&buffer)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.done.succeed(self.received)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// Returns everything received, and whether the server closed the connection before the deadline.
    ///
    /// The deadline is an upper bound, not a wait (every caller expects the server to answer or close first): it is
    /// generous because in a full parallel run the test process's two cooperative threads can be taken for seconds by
    /// other tests' work, and a request whose answer came can be seen late. A deadline that passes closes the
    /// connection from this side, which the caller would otherwise take for the proxy dropping it.
    package static func send(
        _ text: String, port: Int, deadline: Duration = .seconds(30), halfClose: Bool = false
    ) async throws -> (text: String, closedByServer: Bool) {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: ByteBuffer.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Collector(done: promise))
                    }
                }
                .connect(host: "127.0.0.1", port: port)
                .flatMap { channel in
                    // Written on the event loop as soon as the connection is up, not after a hop through the
                    // cooperative pool, which a loaded run can hold for longer than a server's idle timeout.
                    let written = channel.writeAndFlush(ByteBuffer(string: text))
                    let sent = halfClose ? written.flatMap { channel.close(mode: .output) } : written
                    return sent.map { channel }.flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw error
                    }
                }
                .get()
        } catch {
            promise.fail(error)
            throw error
        }
        let timedOut = NIOLockedValueBox(false)
        let timeout = channel.eventLoop.scheduleTask(
            in: TimeAmount.nanoseconds(Int64(deadline.components.seconds) * 1_000_000_000)
        ) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        var buffer = try await promise.futureResult.get()
        timeout.cancel()
        let closedByServer = !timedOut.withLockedValue { $0 }
        return (buffer.readString(length: buffer.readableBytes) ?? "", closedByServer)
    }

    /// A GET with `Connection: close`.
    package static func get(
        _ path: String, port: Int, headers: [String] = [], deadline: Duration = .seconds(30)
    ) async throws -> RawResponse {
        let request =
            (["GET \(path) HTTP/1.1", "Host: proxy.test", "Connection: close"] + headers).joined(separator: "\r\n")
            + "\r\n\r\n"
        let responses = Self.parse(try await Self.send(request, port: port, deadline: deadline).text)
        guard let first = responses.first else { throw RawError.noResponse }
        return first
    }

    package enum RawError: Error { case noResponse }

    /// Splits a byte stream into responses (Content-Length or chunked bodies).
    package static func parse(_ text: String) -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = Substring(text)
        while let headEnd = rest.range(of: "\r\n\r\n") {
            let lines = rest[..<headEnd.lowerBound].components(separatedBy: "\r\n")
            guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1."),
                let status = Int(statusLine.split(separator: " ")[1])
            else { break }
            let headers = lines.dropFirst().compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            var response = RawResponse(status: status, headers: headers, body: "")
            rest = rest[headEnd.upperBound...]
            if let length = response.header("content-length").flatMap(Int.init) {
                let bodyEnd = rest.utf8.index(rest.startIndex, offsetBy: min(length, rest.utf8.count))
                response.body = String(rest[..<bodyEnd])
                rest = rest[bodyEnd...]
            } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
                var body = ""
                while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16) {
                    rest = rest[lineEnd.upperBound...]
                    if size == 0 {
                        if let end = rest.range(of: "\r\n") { rest = rest[end.upperBound...] }
                        break
                    }
                    let chunkEnd = rest.utf8.index(rest.startIndex, offsetBy: min(size, rest.utf8.count))
                    body += rest[..<chunkEnd]
                    rest = rest[chunkEnd...].dropFirst(2)
                }
                response.body = body
            }
            responses.append(response)
        }
        return responses
    }
}
