import CoreMetrics
import HTTP1
package import NIOCore
import RouteTable
import Synchronization
import Tracing

/// What one event loop's connections share: its upstream pool and its id generator. Used on that loop only.
final class LoopState {
    let pool: UpstreamPool
    let shadowDeadlines: ShadowDeadlines
    let eventLoop: any EventLoop
    /// Touched on this loop only, one call at a time (no overlapping access: no exclusivity checks).
    @exclusivity(unchecked) var ids = IDGenerator()
    @exclusivity(unchecked) private var metricHandles: [ProxyMetrics.Key: ProxyMetrics.Handles] = [:]
    /// The handles used last: a run of requests to the same route and upstream skips the dictionary's hashing.
    @exclusivity(unchecked) private var lastMetrics: (key: ProxyMetrics.Key, handles: ProxyMetrics.Handles)?

    // Memory the loop's exchanges reuse instead of allocating per request: the buffers upstream request heads were
    // written in (a few, as several exchanges are in flight at once), the one the last client answer head was written
    // in, and the field arrays of the last request and answer heads parsed. Each is used by one exchange at a time;
    // one still held elsewhere (an exchange in flight, a write not yet done, a head a shadow kept) is copied on write,
    // never shared.
    @exclusivity(unchecked) var requestHeads: [ByteBuffer] = []
    @exclusivity(unchecked) var responseHead: ByteBuffer?
    @exclusivity(unchecked) var requestFields: [HTTPHead.Field] = []
    @exclusivity(unchecked) var responseFields: [HTTPHead.Field] = []
    /// What is kept for reuse: at most this many head buffers of at most this size, field arrays of 64 fields.
    static let keptHeads = 16
    static let keptHeadBytes = 8 * 1024

    func recycle(requestHead buffer: ByteBuffer) {
        if self.requestHeads.count < Self.keptHeads, buffer.capacity <= Self.keptHeadBytes {
            self.requestHeads.append(buffer)
        }
    }

    func recycle(responseHead buffer: ByteBuffer) {
        if buffer.capacity <= Self.keptHeadBytes { self.responseHead = buffer }
    }

    func recycle(requestFields fields: [HTTPHead.Field]) {
        if fields.capacity <= 64 { self.requestFields = fields }
    }

    func recycle(responseFields fields: [HTTPHead.Field]) {
        if fields.capacity <= 64 { self.responseFields = fields }
    }

    /// Counts an answered request and its latency.
    func recordCompleted(
        _ metrics: ProxyMetrics, route: Route?, upstream: Upstream, status: UInt, since start: NIODeadline,
        byMonolith: Bool
    ) {
        let key = ProxyMetrics.Key(
            route: route?.id ?? "unmatched", stage: route?.stage, upstream: upstream, statusClass: status / 100,
            byMonolith: byMonolith)
        let handles: ProxyMetrics.Handles
        if let last = self.lastMetrics, last.key == key {
            handles = last.handles
        } else if let cached = self.metricHandles[key] {
            handles = cached
            self.lastMetrics = (key, cached)
        } else {
            handles = metrics.makeHandles(key)
            self.metricHandles[key] = handles
            self.lastMetrics = (key, handles)
        }
        handles.requests.increment()
        let nanoseconds = (self.eventLoop.now - start).nanoseconds
        handles.latency.recordNanoseconds(nanoseconds)
        handles.cell.record(status: status, nanoseconds: nanoseconds)
    }

    init(pool: UpstreamPool, eventLoop: any EventLoop) {
        self.pool = pool
        self.eventLoop = eventLoop
        self.shadowDeadlines = ShadowDeadlines(eventLoop: eventLoop)
    }
}

/// What every connection of the proxy shares: the live table, the configuration, the metrics, and the
/// per-event-loop state.
package final class ProxyShared: Sendable {
    let store: RouteTableStore
    let configuration: ProxyConfiguration
    let metrics: ProxyMetrics
    /// Where shadow outcomes go (coexist); nil runs coexist routes like transform.
    let recorder: (any ShadowSink)?
    /// Where recorded exchanges go (`strangler record`); nil: nothing is ever recorded.
    let capture: (any CaptureSink)?
    /// The requests no route matched, by template (`strangler routes suggest`).
    package let unmatched = UnmatchedTraffic()
    /// Spans for each forwarded exchange (`ProxyConfiguration.tracing`); nil: none are made.
    let tracer: (any Tracer)?
    /// The data plane's connection cap.
    let connections: ConnectionLimiter
    private let loops: [ObjectIdentifier: NIOLoopBoundBox<LoopState>]
    private let eventLoops: [any EventLoop]

    package init(
        store: RouteTableStore, configuration: ProxyConfiguration, metrics: ProxyMetrics, recorder: (any ShadowSink)?,
        connections: ConnectionLimiter, capture: (any CaptureSink)? = nil,
        group: any EventLoopGroup
    ) {
        self.capture = capture
        self.store = store
        self.connections = connections
        self.recorder = recorder
        self.tracer = configuration.tracing?.tracer
        self.configuration = configuration
        self.metrics = metrics
        var loops: [ObjectIdentifier: NIOLoopBoundBox<LoopState>] = [:]
        let snapshot = store.snapshot
        let pools = PoolDirectory()
        for loop in group.makeIterator() {
            loops[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                LoopState(
                    pool: UpstreamPool(
                        eventLoop: loop, maxIdle: configuration.maxIdleConnectionsPerUpstream,
                        connectTimeout: TimeAmount(configuration.connectTimeout),
                        snapshot: snapshot, directory: pools),
                    eventLoop: loop),
                eventLoop: loop)
        }
        pools.set(loops)
        self.loops = loops
        self.eventLoops = Array(group.makeIterator())
    }

    /// A new table is live: each loop lets go of the connections of upstreams that left it or moved. Each loop
    /// reads the table live when it gets to it, so that notices handled out of order still leave it on the latest.
    package func tableChanged() {
        let store = self.store
        for eventLoop in self.eventLoops {
            let state = self.loops[ObjectIdentifier(eventLoop)]!
            eventLoop.execute { state.value.pool.tableChanged(store.snapshot) }
        }
    }

    /// What each loop's pool holds, one loop after another (for a test's failure message): the upstreams it knows,
    /// its idle connections and its shadow pipelines' connections, per upstream.
    package func poolDescription() async -> String {
        var parts: [String] = []
        for eventLoop in self.eventLoops {
            let state = self.loops[ObjectIdentifier(eventLoop)]!
            let text = try? await eventLoop.submit { state.value.pool.contentsDescription }.get()
            parts.append(text ?? "(loop gone)")
        }
        return parts.joined(separator: " | ")
    }

    /// The state of the loop a channel runs on; must be called on that loop.
    func loopState(for eventLoop: any EventLoop) -> LoopState {
        self.loops[ObjectIdentifier(eventLoop)]!.value
    }
}

/// Every event loop's pool, for what one loop asks of the others: an exchange waiting at an instance's
/// `maxConnections` has the other loops close their idle connections to it, so that it can open one.
final class PoolDirectory: Sendable {
    private let loops = Mutex<[ObjectIdentifier: NIOLoopBoundBox<LoopState>]>([:])

    func set(_ loops: [ObjectIdentifier: NIOLoopBoundBox<LoopState>]) {
        self.loops.withLock { $0 = loops }
    }

    /// Closes the idle connections to `upstream` of every loop but `loop`.
    func closeIdle(to upstream: Upstream, except loop: any EventLoop) {
        for (id, box) in self.loops.withLock({ $0 }) where id != ObjectIdentifier(loop) {
            box.eventLoop.execute { box.value.pool.closeIdle(to: upstream) }
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(Route.nanoseconds(duration))
    }
}
