import HTTP1
import NIOCore
import RouteTable

/// One request sent to the side that does not answer the client (or, to learn noise, a second time to the
/// side that does), its answer read whole up to a limit. It runs on the client connection's event loop and
/// borrows connections from that loop's pool, but nothing it does can reach the client: its result only
/// goes to its `ShadowTap`.
final class ShadowCall {
    /// An answer as read: its head's bytes and body are slices of what the connection read (no copy: the fast
    /// match compares them in place), or buffers of their own when they came in several reads.
    struct Answer {
        var status: Int
        var head: ByteBuffer
        /// The head's fields, as ranges into `head`'s readable bytes.
        var fields: RawAnswer.Fields
        var body: ByteBuffer

        /// The same answer in one buffer of its own (head, then body): kept a while, it no longer holds on to the
        /// connection's read buffer (which NIO would then have to replace for its next read).
        var owned: Answer {
            var buffer = ByteBufferAllocator().buffer(capacity: self.head.readableBytes + self.body.readableBytes)
            buffer.writeImmutableBuffer(self.head)
            buffer.writeImmutableBuffer(self.body)
            return Answer(
                status: self.status, head: buffer.getSlice(at: 0, length: self.head.readableBytes)!,
                fields: self.fields,
                body: buffer.getSlice(at: self.head.readableBytes, length: self.body.readableBytes)!)
        }

        /// A copy in arrays, for the recorder (fields are parsed off the event loop, only when needed).
        var raw: RawAnswer {
            RawAnswer(
                status: self.status, head: Array(self.head.readableBytesView), body: Array(self.body.readableBytesView))
        }
    }

    enum Outcome {
        case response(Answer)
        /// Refused, reset, or a malformed answer.
        case failed(String)
        case timedOut
        /// The answer's body is larger than the comparison limit.
        case tooLarge
    }

    /// How far the answer has been read.
    enum Progress {
        case needMore
        /// The answer is whole; the bytes after it (the next pipelined answer) are left in the buffer.
        case complete
        case broken(String)
        case tooLarge
    }

    let upstream: Upstream
    private let address: SocketAddress
    let head: ByteBuffer
    private let body: [UInt8]
    private let isHEAD: Bool
    private let maxBody: Int
    private let pool: UpstreamPool
    private let deadlines: ShadowDeadlines
    /// Where the outcome goes (nil once the call ended), and whether this call is the noise-learning repeat.
    private var tap: ShadowTap?
    private var isRepeat = false
    private var connection: UpstreamConnection?
    /// Set while the call is queued on a pipelined connection (`ShadowPipeline`) instead of holding one.
    var lane: ShadowPipeline.Lane?
    /// The answer's head as it comes, then (once it is in) its body's framing: the same rules as the data plane's.
    private var headReader = ResponseHeadReader()
    private var framing: BodyFraming?
    private var status = 0
    private var responseHead = ByteBuffer()
    private var responseFields: RawAnswer.Fields = []
    /// The body so far: the first slice read, then (past it) a buffer of its own.
    private var received = ByteBuffer()
    private var receivedAny = false
    /// The answer is too large to compare: the call ended as `.tooLarge`, and its body is read and passed over
    /// to keep its pipelined connection (`skipped` bytes so far, up to `maxSkip`).
    private(set) var skipping = false
    private var skipped = 0
    /// Past this, an answer too large to compare gives its pipelined connection up instead of being read through.
    static let maxSkip = 8 * 1024 * 1024
    /// Whether the upstream keeps the connection open after this answer.
    private(set) var keepAlive = true
    var retried = false
    /// When the call times out (checked by the loop's `ShadowDeadlines`).
    private(set) var deadline: NIODeadline = .distantFuture
    var isEnded: Bool { self.tap == nil }

    /// Whether the call may share a connection with others (HTTP/1.1 pipelining): a GET or HEAD without a
    /// body, which is safe to send again (the calls behind a broken pipelined connection are re-sent).
    let isPipelinable: Bool

    init(
        upstream: Upstream, address: SocketAddress, head: ByteBuffer, body: [UInt8], isHEAD: Bool, isSafe: Bool,
        maxBody: Int, pool: UpstreamPool,
        deadlines: ShadowDeadlines
    ) {
        self.isPipelinable = isSafe && body.isEmpty
        self.upstream = upstream
        self.address = address
        self.head = head
        self.body = body
        self.isHEAD = isHEAD
        self.maxBody = maxBody
        self.pool = pool
        self.deadlines = deadlines
    }

    /// Sends the request; the tap gets what came back, once, on the event loop. A bodiless GET or HEAD goes on
    /// the loop's pipelined connections to its upstream; anything else on a connection of its own.
    func start(timeout: Duration, for tap: ShadowTap, isRepeat: Bool) {
        self.tap = tap
        self.isRepeat = isRepeat
        self.deadline = .now() + TimeAmount(timeout)
        self.deadlines.add(self)
        if self.isPipelinable {
            self.pool.pipeline(to: self.upstream, address: self.address).send(self)
        } else if let connection = self.pool.takeIdle(self.upstream) {
            self.attach(connection)
        } else {
            self.connect()
        }
    }

    private func connect() {
        self.pool.connect(self.upstream, address: self.address).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let transfer):
                let connection = transfer.value
                guard self.tap != nil else {
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

    /// From a connection of its own.
    func received(_ bytes: ByteBuffer) {
        guard self.tap != nil else { return }
        var bytes = bytes
        switch self.read(&bytes) {
        case .needMore: return
        case .complete: self.complete(reusable: self.keepAlive && bytes.readableBytes == 0)
        case .broken(let reason): self.end(.failed(reason), reusable: false)
        case .tooLarge: self.end(.tooLarge, reusable: false)
        }
    }

    /// Reads the answer from `bytes` (whole, or the part that came), leaving in `bytes` what follows it.
    /// An ended call (timed out, or too large, on a pipelined connection) still reads its answer, to pass over it.
    func read(_ bytes: inout ByteBuffer) -> Progress {
        let progress = self.readAnswer(&bytes)
        if self.skipping {
            // A passed-over answer read to its end (or given up) leaves the deadlines' watch.
            switch progress {
            case .needMore: break
            case .complete, .broken, .tooLarge:
                self.skipping = false
                self.lane = nil
            }
        }
        return progress
    }

    private func readAnswer(_ bytes: inout ByteBuffer) -> Progress {
        self.receivedAny = true
        while bytes.readableBytes > 0 || self.framing?.isComplete == true {
            switch self.framing {
            case .none:
                switch self.headReader.read(&bytes) {
                case .needMore: return .needMore
                case .interim: continue
                case .broken(let reason): return .broken(reason)
                case .final(let head): if let progress = self.startResponse(head) { return progress }
                }
            case .length(let remaining):
                if remaining == 0 { return .complete }
                let take = min(remaining, bytes.readableBytes)
                if let progress = self.append(bytes.readSlice(length: take)!) { return progress }
                self.framing = .length(remaining - take)
                if remaining - take == 0 { return .complete }
            case .chunked(var tracker):
                var data: [Range<Int>] = []
                let consumed: Int
                do {
                    consumed = try bytes.withUnsafeReadableBytes { raw throws(HeadError) in
                        try tracker.consume(raw) { data.append($0) }
                    }
                } catch {
                    return .broken("sent a malformed chunked body (\(error.reason))")
                }
                for range in data {
                    let slice = bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!
                    if let progress = self.append(slice) { return progress }
                }
                bytes.moveReaderIndex(forwardBy: consumed)
                self.framing = .chunked(tracker)
                if tracker.isDone { return .complete }
            case .untilClose:
                if let progress = self.append(bytes) { return progress }
                bytes = ByteBuffer()
                return .needMore
            }
        }
        return .needMore
    }

    /// Follows a final head's framing (`BodyFraming`); nil to read on (a body to come).
    private func startResponse(_ head: HTTPHead) -> Progress? {
        let status = Int(head.statusCode)
        self.status = status
        if self.tap != nil {
            // An ended call (timed out) reads its late answer only to pass it over: nothing of it is kept.
            self.responseHead = head.bytes
            self.responseFields = head.fields
        }
        self.keepAlive = head.isKeepAlive
        let framing = BodyFraming.response(head, toHEAD: self.isHEAD)
        self.framing = framing
        switch framing {
        case .length(let length):
            if length == 0 { return .complete }
            if length > self.maxBody {
                // Read through only to keep a pipelined connection that stays open.
                guard self.isPipelinable, self.keepAlive, length <= Self.maxSkip else { return .tooLarge }
                self.skipOversizedAnswer()
            }
        case .chunked:
            break
        case .untilClose:
            self.keepAlive = false
        }
        return nil
    }

    /// Keeps body bytes; `.tooLarge` once they pass the limit (a pipelined call passes a framed answer over instead,
    /// up to `maxSkip`).
    private func append(_ slice: ByteBuffer) -> Progress? {
        if self.skipping || self.tap == nil {
            // An answer passed over (too large, or late for a call that ended): counted, not kept.
            self.skipped += slice.readableBytes
            return self.skipped > Self.maxSkip ? .tooLarge : nil
        }
        guard self.received.readableBytes + slice.readableBytes <= self.maxBody else {
            if case .untilClose? = self.framing { return .tooLarge }
            guard self.isPipelinable, self.keepAlive else { return .tooLarge }
            self.skipped = self.received.readableBytes + slice.readableBytes
            self.skipOversizedAnswer()
            return nil
        }
        if self.received.readableBytes == 0 {
            // Most answers come whole in one read: the body is that read's slice, not a copy.
            self.received = slice
        } else {
            self.received.writeImmutableBuffer(slice)
        }
        return nil
    }

    /// Ends the call as too large now, and reads the rest of its answer only to pass it over: the calls pipelined
    /// behind it keep their connection. The call stays with the loop's deadlines until its answer is read: if the
    /// rest does not come in time, its connection is given up like that of any late answer.
    private func skipOversizedAnswer() {
        let lane = self.lane
        self.skipping = true
        self.received = ByteBuffer()
        self.end(.tooLarge, reusable: false)
        self.lane = lane
    }

    /// The answer is whole: the call ends with it.
    func complete(reusable: Bool) {
        self.end(.response(self.answer), reusable: reusable)
    }

    private var answer: Answer {
        Answer(status: self.status, head: self.responseHead, fields: self.responseFields, body: self.received)
    }

    /// Whether the answer runs until the connection closes (the close ends it, whole).
    var readsUntilClose: Bool {
        if case .untilClose? = self.framing { return true }
        return false
    }

    /// Forgets a partly read answer, to send the request again on another connection.
    func rewind() {
        self.headReader.reset()
        self.framing = nil
        self.status = 0
        self.responseHead = ByteBuffer()
        self.responseFields = []
        self.received = ByteBuffer()
        self.receivedAny = false
        self.keepAlive = true
        self.skipping = false
        self.skipped = 0
    }

    /// The deadline passed: the call ends as timed out. Returns the pipelined connection it was queued on, if
    /// any: the caller decides, once every call due has ended, whether that connection is given up.
    func expire() -> ShadowPipeline.Lane? {
        let lane = self.lane
        self.skipping = false
        self.end(.timedOut, reusable: false)
        self.lane = nil
        return lane
    }

    func failed(_ error: any Error) {
        guard self.tap != nil else { return }
        // A clean close ends a close-delimited answer; a reset or another error truncates it.
        if case .untilClose? = self.framing, error is ChannelError {
            self.end(.response(self.answer), reusable: false)
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

    /// Ends the call with `outcome` (once: later calls do nothing).
    func end(_ outcome: Outcome, reusable: Bool) {
        guard let tap = self.tap else { return }
        self.tap = nil
        self.lane = nil
        // The answer's buffers go with the outcome: the call (which the loop's deadlines hold a while longer)
        // must not keep its connection's read buffer from being reused.
        self.responseHead = ByteBuffer()
        self.responseFields = []
        self.received = ByteBuffer()
        if let connection = self.connection {
            self.connection = nil
            connection.handler.shadow = nil
            if reusable { self.pool.release(connection) } else { connection.close() }
        }
        tap.callEnded(outcome, isRepeat: self.isRepeat)
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
            // A call that ended as too large stays while its answer is still being read and passed over.
            if call.isEnded, !call.skipping { return true }
            if call.deadline <= now {
                expired.append(call)
                return true
            }
            return false
        }
        // Every call due ends first; only then are their pipelined connections looked at, so that a call due in
        // this sweep is never sent again on another connection.
        var lanes: [ShadowPipeline.Lane] = []
        for call in expired {
            if let lane = call.expire(), !lanes.contains(where: { $0 === lane }) { lanes.append(lane) }
        }
        for lane in lanes { lane.pipeline.deadlinesPassed(on: lane) }
        if !self.calls.isEmpty { self.schedule() }
    }
}
