import NIOCore
import RouteTable

/// One request sent to the side that does not answer the client (or, to learn noise, a second time to the
/// side that does), its answer read whole up to a limit. It runs on the client connection's event loop and
/// borrows connections from that loop's pool, but nothing it does can reach the client: its result only
/// goes to its `ShadowTap`.
final class ShadowCall {
    enum Outcome {
        /// The head's raw bytes (fields are parsed off the event loop, only when needed).
        case response(status: Int, head: [UInt8], body: [UInt8])
        /// Refused, reset, or a malformed answer.
        case failed(String)
        case timedOut
        /// The answer's body is larger than the comparison limit.
        case tooLarge
    }

    private enum Framing {
        case head(ByteBuffer?)
        case length(Int)
        case chunked(ChunkedTracker)
        case untilClose
    }

    let upstream: Upstream
    private let address: SocketAddress
    private let head: ByteBuffer
    private let body: [UInt8]
    private let isHEAD: Bool
    private let maxBody: Int
    private let pool: UpstreamPool
    private let deadlines: ShadowDeadlines
    private var completion: ((Outcome) -> Void)?
    private var connection: UpstreamConnection?
    private var framing: Framing = .head(nil)
    private var status = 0
    private var responseHead: [UInt8] = []
    private var received: [UInt8] = []
    private var receivedAny = false
    private var keepAlive = true
    private var retried = false
    /// When the call times out (checked by the loop's `ShadowDeadlines`).
    private(set) var deadline: NIODeadline = .distantFuture
    var isEnded: Bool { self.completion == nil }

    init(
        upstream: Upstream, address: SocketAddress, head: ByteBuffer, body: [UInt8], isHEAD: Bool, maxBody: Int, pool: UpstreamPool,
        deadlines: ShadowDeadlines
    ) {
        self.upstream = upstream
        self.address = address
        self.head = head
        self.body = body
        self.isHEAD = isHEAD
        self.maxBody = maxBody
        self.pool = pool
        self.deadlines = deadlines
    }

    /// Sends the request; `completion` is called once, on the event loop, with what came back.
    func start(timeout: Duration, completion: @escaping (Outcome) -> Void) {
        self.completion = completion
        self.deadline = .now() + TimeAmount(timeout)
        self.deadlines.add(self)
        if let connection = self.pool.takeIdle(self.upstream) {
            self.attach(connection)
        } else {
            self.connect()
        }
    }

    private func connect() {
        self.pool.connect(self.upstream, address: self.address).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let transfer):
                let connection = transfer.wrappedValue
                guard self.completion != nil else {
                    connection.close()
                    return
                }
                self.attach(connection)
            case .failure(let error):
                self.end(.failed("could not connect: \(error)"), reusable: false)
            }
        }
    }

    private func attach(_ connection: UpstreamConnection) {
        self.connection = connection
        connection.handler.shadow = self
        connection.write(self.head)
        if !self.body.isEmpty {
            var buffer = connection.channel.allocator.buffer(capacity: self.body.count)
            buffer.writeBytes(self.body)
            connection.write(buffer)
        }
        connection.flush()
    }

    // MARK: From the upstream connection

    func received(_ bytes: ByteBuffer) {
        guard self.completion != nil else { return }
        self.receivedAny = true
        var bytes = bytes
        while bytes.readableBytes > 0, self.completion != nil {
            switch self.framing {
            case .head(let previous):
                var accumulated = bytes
                if var previous {
                    previous.writeBuffer(&bytes)
                    accumulated = previous
                }
                bytes = ByteBuffer()
                guard let length = HTTPHeadParser.headLength(in: accumulated, searchFrom: 0) else {
                    if accumulated.readableBytes > 1024 * 1024 {
                        self.end(.failed("sent a response head larger than 1 MiB"), reusable: false)
                    } else {
                        self.framing = .head(accumulated)
                    }
                    return
                }
                let headBytes = accumulated.readSlice(length: length)!
                bytes = accumulated
                do {
                    try self.startResponse(HTTPHeadParser.parseResponse(headBytes), leftover: bytes.readableBytes)
                } catch {
                    self.end(.failed("sent a malformed response (\(error.reason))"), reusable: false)
                    return
                }
            case .length(let remaining):
                let take = min(remaining, bytes.readableBytes)
                guard self.append(bytes.readSlice(length: take)!) else { return }
                if remaining - take == 0 {
                    self.complete(leftover: bytes.readableBytes)
                    return
                }
                self.framing = .length(remaining - take)
            case .chunked(var tracker):
                var data: [Range<Int>] = []
                let consumed: Int
                do {
                    consumed = try bytes.withUnsafeReadableBytes { raw throws(HeadError) in try tracker.consume(raw) { data.append($0) } }
                } catch {
                    self.end(.failed("sent a malformed chunked body (\(error.reason))"), reusable: false)
                    return
                }
                for range in data {
                    guard self.append(bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!) else { return }
                }
                bytes.moveReaderIndex(forwardBy: consumed)
                self.framing = .chunked(tracker)
                if tracker.isDone {
                    self.complete(leftover: bytes.readableBytes)
                    return
                }
            case .untilClose:
                _ = self.append(bytes)
                return
            }
        }
    }

    private func startResponse(_ head: HTTPHead, leftover: Int) throws(HeadError) {
        let status = Int(head.statusCode)
        if status == 101 { throw .malformed("switched protocols (101) though no upgrade was asked for") }
        if (100..<200).contains(status) {
            self.framing = .head(nil)
            return
        }
        self.status = status
        self.responseHead = head.raw
        self.keepAlive = head.isKeepAlive
        if self.isHEAD || status == 204 || status == 304 {
            self.framing = .length(0)
            self.complete(leftover: leftover)
        } else if head.chunked {
            self.framing = .chunked(ChunkedTracker())
        } else if let length = head.contentLength {
            if length > self.maxBody {
                self.end(.tooLarge, reusable: false)
                return
            }
            self.framing = .length(length)
            if length == 0 { self.complete(leftover: leftover) }
        } else {
            self.framing = .untilClose
            self.keepAlive = false
        }
    }

    /// Keeps body bytes; false (and the call ended) once they pass the limit.
    private func append(_ slice: ByteBuffer) -> Bool {
        guard self.received.count + slice.readableBytes <= self.maxBody else {
            self.end(.tooLarge, reusable: false)
            return false
        }
        self.received.append(contentsOf: slice.readableBytesView)
        return true
    }

    private func complete(leftover: Int) {
        self.end(.response(status: self.status, head: self.responseHead, body: self.received), reusable: self.keepAlive && leftover == 0)
    }

    /// The deadline passed.
    func expire() {
        self.end(.timedOut, reusable: false)
    }

    func failed(_ error: any Error) {
        guard self.completion != nil else { return }
        if case .untilClose = self.framing {
            self.end(.response(status: self.status, head: self.responseHead, body: self.received), reusable: false)
            return
        }
        // A reused connection may have been closed by the upstream just as the request went out: once, on a new one.
        if let connection = self.connection, connection.isReused, !self.receivedAny, !self.retried {
            self.retried = true
            self.connection = nil
            connection.close()
            self.connect()
            return
        }
        self.end(.failed("\(error)"), reusable: false)
    }

    private func end(_ outcome: Outcome, reusable: Bool) {
        guard let completion = self.completion else { return }
        self.completion = nil
        if let connection = self.connection {
            self.connection = nil
            connection.handler.shadow = nil
            if reusable { self.pool.release(connection) } else { connection.close() }
        }
        completion(outcome)
    }
}

/// The deadlines of one event loop's shadow calls, checked by one timer that runs only while calls are in
/// flight (a scheduled task per call would cost an allocation and a heap insertion per shadowed request).
/// Deadlines are honoured to within `resolution`.
final class ShadowDeadlines {
    static let resolution = TimeAmount.milliseconds(50)
    private let eventLoop: any EventLoop
    private var calls: [ShadowCall] = []
    private var timer: Scheduled<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func add(_ call: ShadowCall) {
        self.calls.append(call)
        if self.timer == nil { self.schedule() }
    }

    private func schedule() {
        self.timer = self.eventLoop.assumeIsolated().scheduleTask(in: Self.resolution) { [self] in
            self.timer = nil
            self.sweep()
        }
    }

    private func sweep() {
        let now = NIODeadline.now()
        var expired: [ShadowCall] = []
        self.calls.removeAll { call in
            if call.isEnded { return true }
            if call.deadline <= now {
                expired.append(call)
                return true
            }
            return false
        }
        for call in expired { call.expire() }
        if !self.calls.isEmpty { self.schedule() }
    }
}
