import NIOCore
import RouteTable

/// The shadow GETs of one event loop to one upstream, pipelined (HTTP/1.1, RFC 9112 §9.3.2) on a few
/// keep-alive connections of their own, and written once per event-loop tick.
///
/// A shadow's answer is never on a client's path, so it can wait a little for company: the requests that
/// the loop's clients send in one tick go out in one write, and their answers come back in as few reads.
/// That takes most of the cost of shadowing (a write, a read and their wake-ups per request) off the
/// loop. Only bodiless GET and HEAD requests go this way: when a connection breaks with requests still
/// unanswered, those are sent again once, on another connection, which is safe only for them.
///
/// Servers answer pipelined requests one after another, so a connection's depth is latency for the calls at
/// its back: a new connection opens once every open one has `spreadDepth` calls in flight (up to `maxLanes`).
///
/// Used on its event loop only.
final class ShadowPipeline {
    /// Requests in flight on one connection, at most.
    static let maxDepth = 16
    /// Past this many in flight on every open connection, another one is opened.
    static let spreadDepth = 8
    /// Connections to the upstream, at most (with `maxDepth`, more than the recorder lets be in flight).
    static let maxLanes = 32

    /// One pipelined connection and the calls whose answers it owes, in order.
    final class Lane {
        /// Strong: a retired pipeline (its upstream's address changed) lives on until its last connection closes.
        let pipeline: ShadowPipeline
        let connection: UpstreamConnection
        /// In order of the requests sent. A call that timed out stays until its answer is read and passed over.
        var calls = CircularBuffer<ShadowCall>(initialCapacity: ShadowPipeline.maxDepth)
        var unflushed = false
        /// Answers read on it.
        var answered = 0

        init(pipeline: ShadowPipeline, connection: UpstreamConnection) {
            self.pipeline = pipeline
            self.connection = connection
        }

        /// What the upstream sent: the answers, in the order of the calls.
        func received(_ bytes: ByteBuffer) {
            // Calls waiting for room go out only once this read is handled: bytes past the last answer owed are
            // an error, never an answer to a request not sent yet. A retired pipeline's connection closes once it owes
            // nothing (it owed an answer when its upstream left the table).
            defer {
                self.pipeline.drainWaiting()
                self.pipeline.closeIdleLanesIfRetired()
            }
            var bytes = bytes
            while bytes.readableBytes > 0 {
                guard let call = self.calls.first else {
                    self.pipeline.abandon(self, reason: "sent bytes that answer no request")
                    return
                }
                switch call.read(&bytes) {
                case .needMore:
                    return
                case .complete:
                    self.calls.removeFirst()
                    self.answered += 1
                    call.complete(reusable: false)
                    if !call.keepAlive {
                        // The upstream said `close`: the requests behind that answer were not processed (RFC 9112
                        // §9.6), so they go again without counting as a retry.
                        self.pipeline.closedAfterAnswer(self)
                        return
                    }
                case .broken(let reason):
                    self.calls.removeFirst()
                    call.end(.failed(reason), reusable: false)
                    self.pipeline.abandon(self, reason: reason)
                    return
                case .tooLarge:
                    self.calls.removeFirst()
                    call.end(.tooLarge, reusable: false)
                    self.pipeline.abandon(self, reason: "sent an answer too large to compare")
                    return
                }
            }
        }

        /// The connection closed or failed.
        func failed(_ error: any Error) {
            // An answer delimited by a clean close is whole now (a reset truncates it).
            if error is ChannelError, let call = self.calls.first, call.readsUntilClose {
                self.calls.removeFirst()
                call.complete(reusable: false)
            }
            self.pipeline.abandon(self, reason: "\(error)")
        }
    }

    let upstream: Upstream
    let address: SocketAddress
    private unowned let pool: UpstreamPool
    private let eventLoop: any EventLoop
    private var lanes: [Lane] = []
    private var connecting = 0
    /// Calls waiting for a connection to open.
    private var waiting = CircularBuffer<ShadowCall>()
    private var flushScheduled = false
    /// The upstream left the table or moved: no new calls come, and connections close once they owe nothing.
    private(set) var retired = false
    /// Set once the upstream closed a connection after its first answer: it does not keep connections open, so
    /// pipelining would only queue requests to be sent again. Each call then has a connection of its own.
    private(set) var depth = ShadowPipeline.maxDepth

    init(upstream: Upstream, address: SocketAddress, pool: UpstreamPool, eventLoop: any EventLoop) {
        self.upstream = upstream
        self.address = address
        self.pool = pool
        self.eventLoop = eventLoop
    }

    /// Connections open now (for tests and the status).
    var connectionCount: Int { self.lanes.count }

    /// Queues a call's request on an open connection with room, or opens one.
    func send(_ call: ShadowCall) {
        // The first connection under the spread depth; else, while another is opening or none more may open, the
        // least loaded with room.
        if let lane = self.laneWithRoom(below: min(Self.spreadDepth, self.depth)) {
            self.enqueue(call, on: lane)
            return
        }
        if self.lanes.count + self.connecting >= Self.maxLanes || self.connecting > 0,
            let lane = self.lanes.filter({ $0.calls.count < self.depth }).min(by: { $0.calls.count < $1.calls.count })
        {
            self.enqueue(call, on: lane)
            return
        }
        self.waiting.append(call)
        self.openLaneIfNeeded()
    }

    /// The first open connection with fewer than `limit` calls in flight.
    private func laneWithRoom(below limit: Int) -> Lane? {
        self.lanes.first { $0.calls.count < limit }
    }

    /// Opens one more connection when the calls waiting outnumber what those being opened will take.
    private func openLaneIfNeeded() {
        if self.lanes.count + self.connecting < Self.maxLanes,
            self.liveWaiting > self.connecting * min(Self.spreadDepth, self.depth)
        {
            self.openLane()
        }
    }

    private var liveWaiting: Int { self.waiting.reduce(0) { $0 + ($1.isEnded ? 0 : 1) } }

    private func enqueue(_ call: ShadowCall, on lane: Lane) {
        call.lane = lane
        lane.calls.append(call)
        lane.connection.write(call.head)
        lane.unflushed = true
        guard !self.flushScheduled else { return }
        // Everything queued in this tick goes out in one write per connection, once the tick's I/O is handled.
        self.flushScheduled = true
        self.eventLoop.assumeIsolated().execute { [self] in
            self.flushScheduled = false
            for lane in self.lanes where lane.unflushed {
                lane.unflushed = false
                lane.connection.flush()
            }
        }
    }

    private func openLane() {
        self.connecting += 1
        self.pool.connect(self.upstream, address: self.address).assumeIsolated().whenComplete { [self] result in
            self.connecting -= 1
            switch result {
            case .success(let transfer):
                let lane = Lane(pipeline: self, connection: transfer.value)
                transfer.value.handler.lane = lane
                self.lanes.append(lane)
                self.drainWaiting()
            case .failure(let error):
                self.drainWaiting(connectFailure: "could not connect: \(error)")
            }
        }
    }

    /// Sends the calls waiting, as connections have room, and opens more as needed. After a failed connect
    /// (`connectFailure`), the calls no open connection can take fail instead, unless another connection is on
    /// its way: a refused connection is not tried again in a loop.
    func drainWaiting(connectFailure: String? = nil) {
        while let call = self.waiting.first {
            if call.isEnded {
                self.waiting.removeFirst()
                continue
            }
            guard let lane = self.laneWithRoom(below: self.depth) else {
                guard let connectFailure else {
                    self.openLaneIfNeeded()
                    return
                }
                if self.connecting > 0 { return }
                self.waiting.removeFirst()
                call.end(.failed(connectFailure), reusable: false)
                continue
            }
            self.waiting.removeFirst()
            self.enqueue(call, on: lane)
        }
        self.closeIdleLanesIfRetired()
    }

    /// Some calls on `lane` passed their deadline (and ended as timeouts). Answers come in order: when the one
    /// at the front is late, those behind it wait on it, so the connection is given up and they go again on
    /// another. A late call further back only stays queued, its answer to be read and passed over.
    func deadlinesPassed(on lane: Lane) {
        guard self.lanes.contains(where: { $0 === lane }), let first = lane.calls.first, first.isEnded else { return }
        self.abandon(lane, reason: "did not answer in time")
    }

    /// The upstream closed a connection after an answer, as it said it would (`Connection: close`).
    func closedAfterAnswer(_ lane: Lane) {
        // After a single answer: the upstream closes every connection; stop pipelining to it.
        if lane.answered <= 1 { self.depth = 1 }
        self.abandon(lane, reason: "closed the connection", processed: false)
    }

    /// Gives a connection up: it is closed, and the calls it still owes an answer go again on another
    /// connection. `processed: false` says the upstream cannot have acted on them (it closed after the answer
    /// before them): they go again freely. Otherwise they go again once; a call that already did fails with
    /// `reason`. Calls that timed out are not sent again.
    func abandon(_ lane: Lane, reason: String, processed: Bool = true) {
        guard self.lanes.contains(where: { $0 === lane }) else { return }
        self.lanes.removeAll { $0 === lane }
        lane.connection.handler.lane = nil
        lane.connection.close()
        let owed = lane.calls
        lane.calls.removeAll()
        for call in owed where !call.isEnded {
            call.lane = nil
            call.rewind()
            if !processed {
                self.send(call)
            } else if call.retried {
                call.end(.failed("the upstream \(reason)"), reusable: false)
            } else {
                call.retried = true
                self.send(call)
            }
        }
        self.drainWaiting()
    }

    /// The upstream left the table, or its address changed (a reload resolved it again): the pool no longer
    /// hands this pipeline out, and its connections close once they owe nothing and no call waits for room.
    func retire() {
        self.retired = true
        self.closeIdleLanesIfRetired()
    }

    fileprivate func closeIdleLanesIfRetired() {
        guard self.retired, self.liveWaiting == 0 else { return }
        for lane in self.lanes where lane.calls.isEmpty {
            self.abandon(lane, reason: "retired")
        }
    }
}
