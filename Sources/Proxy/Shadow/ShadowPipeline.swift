import NIOCore
import RouteTable

/// The shadow GETs of one event loop to one upstream, pipelined (HTTP/1.1, RFC 9112 §9.3.2) on a few
/// keep-alive connections of their own, and written once per event-loop tick.
///
/// A shadow's answer is never on a client's path, so it can wait a little for company: the requests that
/// the loop's clients send in one tick go out in one write, and their answers come back in as few reads.
/// That takes most of the cost of shadowing (a write, a read and their wake-ups per request) off the
/// loop. Only bodiless GET and HEAD requests go this way: when a connection breaks or closes with requests
/// still unanswered, those are sent again once, on another connection, which is safe only for them.
///
/// Used on its event loop only.
final class ShadowPipeline {
    /// Requests in flight on one connection, at most.
    static let maxDepth = 16
    /// Connections to the upstream, at most (with `maxDepth`, more than the recorder lets be in flight).
    static let maxLanes = 32

    /// One pipelined connection and the calls whose answers it owes, in order.
    final class Lane {
        unowned let pipeline: ShadowPipeline
        let connection: UpstreamConnection
        var calls = CircularBuffer<ShadowCall>(initialCapacity: ShadowPipeline.maxDepth)
        var unflushed = false
        /// False once it stops taking calls (the upstream said `close`, or it is given up).
        var open = true

        init(pipeline: ShadowPipeline, connection: UpstreamConnection) {
            self.pipeline = pipeline
            self.connection = connection
        }

        /// What the upstream sent: the answers, in the order of the calls.
        func received(_ bytes: ByteBuffer) {
            var bytes = bytes
            while bytes.readableBytes > 0 {
                guard let call = self.calls.first else {
                    self.pipeline.abandon(self, reason: "sent bytes that answer no request", after: nil)
                    return
                }
                switch call.read(&bytes) {
                case .needMore:
                    return
                case .complete:
                    self.calls.removeFirst()
                    call.complete(reusable: false)
                    if !call.keepAlive {
                        self.pipeline.abandon(self, reason: "closed the connection", after: nil)
                        return
                    }
                    self.pipeline.drainWaiting()
                case .broken(let reason):
                    self.calls.removeFirst()
                    call.end(.failed(reason), reusable: false)
                    self.pipeline.abandon(self, reason: reason, after: nil)
                    return
                case .tooLarge:
                    self.calls.removeFirst()
                    call.end(.tooLarge, reusable: false)
                    self.pipeline.abandon(self, reason: "sent an answer too large to compare", after: nil)
                    return
                }
            }
        }

        /// The connection closed or failed.
        func failed(_ error: any Error) {
            // An answer delimited by the close is whole now.
            if let call = self.calls.first, call.readsUntilClose {
                self.calls.removeFirst()
                call.complete(reusable: false)
            }
            self.pipeline.abandon(self, reason: "\(error)", after: nil)
        }
    }

    let upstream: Upstream
    private let address: SocketAddress
    private unowned let pool: UpstreamPool
    private let eventLoop: any EventLoop
    private var lanes: [Lane] = []
    private var connecting = 0
    /// Calls waiting for a connection to open.
    private var waiting = CircularBuffer<ShadowCall>()
    private var flushScheduled = false

    init(upstream: Upstream, address: SocketAddress, pool: UpstreamPool, eventLoop: any EventLoop) {
        self.upstream = upstream
        self.address = address
        self.pool = pool
        self.eventLoop = eventLoop
    }

    /// Connections open now (for tests and the status).
    var connectionCount: Int { self.lanes.count }

    /// Queues a call's request on the first connection with room, or opens one.
    func send(_ call: ShadowCall) {
        if let lane = self.lanes.first(where: { $0.open && $0.calls.count < Self.maxDepth }) {
            self.enqueue(call, on: lane)
            return
        }
        self.waiting.append(call)
        // One more connection for each `maxDepth` calls waiting, within the bound.
        if self.lanes.count + self.connecting < Self.maxLanes, self.waiting.count > self.connecting * Self.maxDepth {
            self.openLane()
        }
    }

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
                let lane = Lane(pipeline: self, connection: transfer.wrappedValue)
                transfer.wrappedValue.handler.lane = lane
                self.lanes.append(lane)
                self.drainWaiting()
            case .failure(let error):
                // The calls waiting go on the connections that have room; the rest fail, unless another
                // connection is on its way (a refused connection is not tried again in a loop).
                while let call = self.waiting.first {
                    if call.isEnded {
                        self.waiting.removeFirst()
                    } else if let lane = self.lanes.first(where: { $0.open && $0.calls.count < Self.maxDepth }) {
                        self.waiting.removeFirst()
                        self.enqueue(call, on: lane)
                    } else if self.connecting > 0 {
                        return
                    } else {
                        self.waiting.removeFirst()
                        call.end(.failed("could not connect: \(error)"), reusable: false)
                    }
                }
            }
        }
    }

    func drainWaiting() {
        while let call = self.waiting.first {
            if call.isEnded {
                self.waiting.removeFirst()
                continue
            }
            guard let lane = self.lanes.first(where: { $0.open && $0.calls.count < Self.maxDepth }) else {
                if self.lanes.count + self.connecting < Self.maxLanes, self.waiting.count > self.connecting * Self.maxDepth { self.openLane() }
                return
            }
            self.waiting.removeFirst()
            self.enqueue(call, on: lane)
        }
    }

    /// Gives a connection up: it is closed, and the calls it still owes an answer (but `except`) go again on
    /// another connection, once; a call that already went again fails with `reason`.
    func abandon(_ lane: Lane, reason: String, after except: ShadowCall?) {
        guard self.lanes.contains(where: { $0 === lane }) else { return }
        lane.open = false
        self.lanes.removeAll { $0 === lane }
        lane.connection.handler.lane = nil
        lane.connection.close()
        let owed = lane.calls
        lane.calls.removeAll()
        for call in owed where call !== except && !call.isEnded {
            call.lane = nil
            if call.retried {
                call.end(.failed("the upstream \(reason)"), reusable: false)
            } else {
                call.retried = true
                call.rewind()
                self.send(call)
            }
        }
    }
}
