import NIOCore
import NIOPosix

/// The load: a few keep-alive connections, each sending `GET /t/42` and reading the whole answer (framed by its
/// `Content-Length`) before it sends the next, so that a batch of requests is exactly that many exchanges.
///
/// ```swift
/// let client = try await KeepAliveClient.connect(to: port, connections: 4, group: group)
/// try await client.send(requests: 1_000).get()  // once all are answered 200
/// await client.close()
/// ```
final class KeepAliveClient: Sendable {
    /// The one request every connection sends.
    static let request = ByteBuffer(string: "GET /t/42 HTTP/1.1\r\nHost: x\r\n\r\n")

    private let connections: [(channel: any Channel, handler: NIOLoopBound<Handler>)]

    private init(connections: [(channel: any Channel, handler: NIOLoopBound<Handler>)]) {
        self.connections = connections
    }

    /// Opens `connections` connections to 127.0.0.1:`port`.
    static func connect(to port: Int, connections: Int, group: any EventLoopGroup) async throws -> KeepAliveClient {
        var opened: [(channel: any Channel, handler: NIOLoopBound<Handler>)] = []
        for _ in 0..<connections {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = Handler(request: Self.request)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        return (channel, NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    }
                }
            opened.append(channel)
        }
        return KeepAliveClient(connections: opened)
    }

    /// Sends `requests` requests spread over the connections, one at a time on each; the future succeeds once every
    /// one is answered, and fails if one is not answered `200`, a connection closes, or `timeout` passes first.
    func send(requests: Int, timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<Void> {
        let count = self.connections.count
        let batches = self.connections.enumerated().map { index, connection in
            let share = requests / count + (index < requests % count ? 1 : 0)
            let loop = connection.channel.eventLoop
            let done = loop.makePromise(of: Void.self)
            let handler = connection.handler
            loop.execute { handler.value.start(requests: share, timeout: timeout, done: done) }
            return done.futureResult
        }
        return EventLoopFuture.andAllSucceed(batches, on: self.connections[0].channel.eventLoop)
    }

    /// Closes every connection.
    func close() async {
        for connection in self.connections { try? await connection.channel.close() }
    }

    /// Why a batch failed.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One connection: sends a request, reads its answer whole, sends the next, until its share is done.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let request: ByteBuffer
        /// The bytes of the answer being read (kept, and reused, across reads).
        private var pending = ByteBuffer()
        private var remaining = 0
        private var done: EventLoopPromise<Void>?
        private var deadline: Scheduled<Void>?
        private var context: ChannelHandlerContext?

        init(request: ByteBuffer) {
            self.request = request
            self.pending.reserveCapacity(4096)
        }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
        }

        func start(requests: Int, timeout: TimeAmount, done: EventLoopPromise<Void>) {
            guard let context = self.context, requests > 0 else {
                done.completeWith(requests > 0 ? .failure(Failure(description: "connection closed")) : .success(()))
                return
            }
            self.remaining = requests
            self.done = done
            self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                self.finish(.failure(Failure(description: "no answer within \(timeout)")))
            }
            context.writeAndFlush(self.wrapOutboundOut(self.request), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            self.pending.writeBuffer(&bytes)
            while self.done != nil {
                switch ResponseFraming.read(self.pending) {
                case .incomplete:
                    return
                case .unframed:
                    return self.finish(.failure(Failure(description: "an answer without Content-Length")))
                case .complete(let status, let length):
                    self.pending.moveReaderIndex(forwardBy: length)
                    guard status == 200 else {
                        return self.finish(.failure(Failure(description: "answered \(status), not 200")))
                    }
                    self.remaining -= 1
                    if self.remaining == 0 { return self.finish(.success(())) }
                    context.writeAndFlush(self.wrapOutboundOut(self.request), promise: nil)
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.finish(.failure(Failure(description: "connection closed")))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.finish(.failure(error))
            context.close(promise: nil)
        }

        private func finish(_ result: Result<Void, any Error>) {
            guard let done = self.done else { return }
            self.done = nil
            self.deadline?.cancel()
            self.deadline = nil
            if self.pending.readableBytes == 0 { self.pending.clear() } else { self.pending.discardReadBytes() }
            done.completeWith(result)
        }
    }
}

/// Where an HTTP/1.1 answer ends in the bytes read so far, by its `Content-Length` (all the benchmarks' origin sends).
enum ResponseFraming: Equatable {
    case incomplete
    /// A head without `Content-Length` (chunked, or read to close): not something these benchmarks expect.
    case unframed
    /// The status, and the length of head and body together.
    case complete(status: Int, length: Int)

    static func read(_ buffer: ByteBuffer) -> ResponseFraming {
        buffer.withUnsafeReadableBytes { bytes in
            guard let headEnd = Self.headEnd(bytes) else { return .incomplete }
            // "HTTP/1.1 200 …": the status is the three digits after the first space.
            guard headEnd > 12 else { return .unframed }
            var status = 0
            for index in 9..<12 { status = status * 10 + Int(bytes[index] &- UInt8(ascii: "0")) }
            guard let contentLength = Self.contentLength(bytes[..<headEnd]) else { return .unframed }
            let length = headEnd + contentLength
            return bytes.count >= length ? .complete(status: status, length: length) : .incomplete
        }
    }

    /// The index just past the head's blank line, if the head is all there.
    private static func headEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == UInt8(ascii: "\n") && bytes[index - 1] == UInt8(ascii: "\r")
            && bytes[index - 2] == UInt8(ascii: "\n") && bytes[index - 3] == UInt8(ascii: "\r")
        {
            return index + 1
        }
        return nil
    }

    /// A field name as it is compared: lower case, with its colon.
    private static let contentLengthName = Array("content-length:".utf8)

    /// The value of the head's `Content-Length` field (its name in any case).
    private static func contentLength(_ head: Slice<UnsafeRawBufferPointer>) -> Int? {
        let name = Self.contentLengthName
        var index = head.startIndex
        while index < head.endIndex {
            // At the start of a line: does it name the field?
            var matches = head.endIndex - index > name.count
            if matches {
                for offset in 0..<name.count where head[index + offset] | 0x20 != name[offset] {
                    matches = false
                    break
                }
            }
            if matches {
                var cursor = index + name.count
                while cursor < head.endIndex, head[cursor] == UInt8(ascii: " ") { cursor += 1 }
                var value = 0
                var digits = 0
                while cursor < head.endIndex, head[cursor] >= UInt8(ascii: "0"), head[cursor] <= UInt8(ascii: "9") {
                    value = value * 10 + Int(head[cursor] - UInt8(ascii: "0"))
                    digits += 1
                    cursor += 1
                }
                return digits > 0 ? value : nil
            }
            while index < head.endIndex, head[index] != UInt8(ascii: "\n") { index += 1 }
            index += 1
        }
        return nil
    }
}
