import NIOCore
import NIOPosix
import NIOSSL
import RouteTable
import Synchronization

/// The only handler of an upstream connection's pipeline: raw bytes both ways. It hands what the upstream
/// sends to the exchange using the connection, and holds reads while the client cannot keep up. Used on its event loop
/// only, one call at a time: its fields skip the runtime's exclusivity checks (as `ProxyHandler`'s do).
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The exchange's handler while it uses this connection. A strong reference, cleared whenever the
    /// connection is released or closed (a weak one costs a side-table load on every read).
    @exclusivity(unchecked) var delegate: ProxyHandler?
    /// A shadow request using the connection (never at the same time as `delegate`).
    @exclusivity(unchecked) var shadow: ShadowCall?
    /// Shadow requests pipelined on the connection (which then never serves anything else).
    @exclusivity(unchecked) var lane: ShadowPipeline.Lane?
    @exclusivity(unchecked) private var pendingRead = false
    @exclusivity(unchecked) private(set) var context: ChannelHandlerContext?
    /// The connection closed (cheaper to check on every take and release than the channel's state).
    @exclusivity(unchecked) private(set) var isClosed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let delegate = self.delegate {
            delegate.upstreamReceived(self.unwrapInboundIn(data))
        } else if let shadow = self.shadow {
            shadow.received(self.unwrapInboundIn(data))
        } else {
            self.lane?.received(self.unwrapInboundIn(data))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosed = true
        self.fail(ChannelError.ioOnClosedChannel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        let delegate = self.delegate
        let shadow = self.shadow
        let lane = self.lane
        self.delegate = nil
        self.shadow = nil
        self.lane = nil
        delegate?.upstreamFailed(error)
        shadow?.failed(error)
        lane?.failed(error)
    }

    func read(context: ChannelHandlerContext) {
        if let delegate = self.delegate, !delegate.clientIsWritable {
            self.pendingRead = true
        } else {
            context.read()
        }
    }

    /// The client drained: resume reading if a read was held.
    func resumeReading() {
        guard self.pendingRead, let context = self.context else { return }
        self.pendingRead = false
        context.read()
    }
}

/// One keep-alive connection to an upstream.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let upstream: Upstream
    /// Where it goes back when released: the idle stack of its upstream at the address it was opened to.
    fileprivate let stack: UpstreamPool.Stack
    /// Its instance's state when its group has circuit limits (released connections then make room for exchanges
    /// waiting on other loops).
    @exclusivity(unchecked) var limitedState: InstanceState?
    /// Whether it served a request before (a reused connection may have been closed by the upstream
    /// meanwhile, which makes a failure before any answer safe to retry for a bodiless request).
    @exclusivity(unchecked) var isReused = false

    fileprivate init(channel: any Channel, handler: UpstreamHandler, upstream: Upstream, stack: UpstreamPool.Stack) {
        self.channel = channel
        self.handler = handler
        self.upstream = upstream
        self.stack = stack
    }

    func write(_ bytes: ByteBuffer) {
        self.handler.context?.write(NIOAny(bytes), promise: nil)
    }

    func writeAndFlush(_ bytes: ByteBuffer) {
        self.handler.context?.writeAndFlush(NIOAny(bytes), promise: nil)
    }

    var isWritable: Bool { self.channel.isWritable }

    func flush() {
        self.handler.context?.flush()
    }

    func close() {
        self.handler.delegate = nil
        self.handler.shadow = nil
        self.handler.lane = nil
        self.channel.close(promise: nil)
    }
}

/// Idle upstream connections of one event loop, per upstream. Used only on its event loop.
///
/// When the live table changes (`tableChanged`), what belongs to an upstream that is gone, or that now
/// resolves to another address, is let go: idle connections close at once, connections in use close when
/// released, and pipelined shadow connections close once they owe no answer.
final class UpstreamPool {
    /// The idle connections to one upstream at one address. Mutated through the reference, so taking and
    /// returning a connection never copies an array, and a connection finds its stack without a lookup.
    fileprivate final class Stack {
        let address: SocketAddress
        @exclusivity(unchecked) var connections: [UpstreamConnection] = []
        /// The upstream left the table (or moved): connections released here close.
        @exclusivity(unchecked) var retired = false

        init(address: SocketAddress) {
            self.address = address
        }
    }

    @exclusivity(unchecked) private var idle: [Upstream: Stack] = [:]
    private var pipelines: [Upstream: ShadowPipeline] = [:]
    /// Exchanges waiting for a connection to an instance at its `maxConnections`, in arrival order.
    @exclusivity(unchecked) private var waiters: [Upstream: Waiters] = [:]

    private final class Waiters {
        let state: InstanceState
        let most: Int
        var queue = CircularBuffer<(handler: ProxyHandler, exchange: Exchange)>()
        /// A re-check is scheduled (connections to the instance may come free on other loops).
        var checking = false

        init(state: InstanceState, most: Int) {
            self.state = state
            self.most = most
        }
    }
    /// The live table's upstreams and their addresses.
    private var known: [Upstream: SocketAddress]
    /// The live table's TLS contexts and instance states (an upstream of an older table keeps what it had).
    private var tlsContexts: [Upstream: NIOSSLContext]
    private var states: [Upstream: InstanceState]
    private let eventLoop: any EventLoop
    private let maxIdle: Int
    private let connectTimeout: TimeAmount
    private let directory: PoolDirectory?

    init(
        eventLoop: any EventLoop, maxIdle: Int, connectTimeout: TimeAmount, snapshot: RouteTableStore.Snapshot,
        directory: PoolDirectory? = nil
    ) {
        self.eventLoop = eventLoop
        self.directory = directory
        self.maxIdle = maxIdle
        self.connectTimeout = connectTimeout
        self.known = snapshot.addresses
        self.tlsContexts = snapshot.tlsContexts
        self.states = snapshot.states
    }

    /// An idle connection that is still open, if any.
    func takeIdle(_ upstream: Upstream) -> UpstreamConnection? {
        guard let stack = self.idle[upstream] else { return nil }
        while let connection = stack.connections.popLast() {
            if !connection.handler.isClosed { return connection }
        }
        return nil
    }

    /// The pipelined shadow connections to `upstream` (made on first use).
    func pipeline(to upstream: Upstream, address: SocketAddress) -> ShadowPipeline {
        guard self.known[upstream] == address else {
            // For a request that started on a table no longer live: a pipeline of its own, kept nowhere, whose
            // connections close once they owe nothing.
            let stray = ShadowPipeline(upstream: upstream, address: address, pool: self, eventLoop: self.eventLoop)
            stray.retire()
            return stray
        }
        if let pipeline = self.pipelines[upstream] {
            if pipeline.address == address { return pipeline }
            // The upstream now resolves elsewhere (a reload): the old connections finish what they owe and close.
            pipeline.retire()
        }
        let pipeline = ShadowPipeline(upstream: upstream, address: address, pool: self, eventLoop: self.eventLoop)
        self.pipelines[upstream] = pipeline
        return pipeline
    }

    /// What the pool holds (``ProxyShared/poolDescription()``).
    var contentsDescription: String {
        let idle = self.idle.map { upstream, stack in
            "\(upstream.url)=\(stack.connections.count)\(stack.retired ? " retired" : "")"
        }
        let pipelines = self.pipelines.map { upstream, pipeline in
            "\(upstream.url)=\(pipeline.connectionCount)\(pipeline.retired ? " retired" : "")"
        }
        return "known \(self.known.keys.map(\.url).sorted()); idle \(idle.sorted()); pipelines \(pipelines.sorted())"
    }

    /// The live table changed: lets go of what belongs to upstreams that left it or moved.
    func tableChanged(_ snapshot: RouteTableStore.Snapshot) {
        let upstreams = snapshot.addresses
        self.known = upstreams
        self.tlsContexts.merge(snapshot.tlsContexts) { $1 }
        self.states.merge(snapshot.states) { $1 }
        for (upstream, stack) in self.idle where upstreams[upstream] != stack.address {
            self.idle[upstream] = nil
            Self.retire(stack)
        }
        for (upstream, pipeline) in self.pipelines where upstreams[upstream] != pipeline.address {
            self.pipelines[upstream] = nil
            pipeline.retire()
        }
    }

    private static func retire(_ stack: Stack) {
        stack.retired = true
        for connection in stack.connections { connection.close() }
        stack.connections.removeAll()
    }

    /// The stack a new connection to `upstream` at `address` is returned to.
    private func stack(for upstream: Upstream, address: SocketAddress) -> Stack {
        if let stack = self.idle[upstream], stack.address == address { return stack }
        let stack = Stack(address: address)
        guard self.known[upstream] == address else {
            // For a request that started on a table no longer live: its connection closes when released.
            stack.retired = true
            return stack
        }
        if let old = self.idle[upstream] { Self.retire(old) }
        self.idle[upstream] = stack
        return stack
    }

    /// Opens a new connection (bound to this pool's event loop, where its future completes): TLS for an `https://`
    /// upstream, with SNI from its host name when it is one. Counted open against the instance until it closes.
    func connect(_ upstream: Upstream, address: SocketAddress) -> EventLoopFuture<NIOLoopBound<UpstreamConnection>> {
        let stack = NIOLoopBound(self.stack(for: upstream, address: address), eventLoop: self.eventLoop)
        let eventLoop = self.eventLoop
        var tls: NIOSSLContext?
        if upstream.isTLS {
            guard let context = self.tlsContexts[upstream] else {
                return eventLoop.makeFailedFuture(UpstreamTLSError(upstream: upstream))
            }
            tls = context
        }
        // A connection more to this upstream: one idle to another goes, so that the loop never holds more upstream
        // connections than it had in use at once (however many upstreams, and however many idle each may keep).
        self.closeOneIdle(except: upstream)
        let serverName = upstream.serverName
        let state = self.states[upstream]
        state?.openConnections.wrappingAdd(1, ordering: .relaxed)
        return ClientBootstrap(group: self.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: true)
            .connectTimeout(self.connectTimeout)
            .channelInitializer { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try pipeline.addHandler(UpstreamHandler())
                }
            }
            .connect(to: address)
            .flatMapThrowing { channel in
                if let state {
                    channel.closeFuture.whenComplete { _ in
                        state.openConnections.wrappingSubtract(1, ordering: .relaxed)
                    }
                }
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                let connection = UpstreamConnection(
                    channel: channel, handler: handler, upstream: upstream, stack: stack.value)
                return NIOLoopBound(connection, eventLoop: eventLoop)
            }
            .flatMapErrorThrowing { error in
                state?.openConnections.wrappingSubtract(1, ordering: .relaxed)
                throw error
            }
    }

    /// Queues an exchange until a connection to `upstream` comes free: one of this loop's released, or room under
    /// `most` open (connections close on any loop: rechecked every 10 ms while some wait).
    func wait(for upstream: Upstream, handler: ProxyHandler, exchange: Exchange, state: InstanceState, most: Int) {
        let waiters: Waiters
        if let existing = self.waiters[upstream] {
            waiters = existing
        } else {
            waiters = Waiters(state: state, most: most)
            self.waiters[upstream] = waiters
        }
        waiters.queue.append((handler, exchange))
        // Idle connections elsewhere hold room the waiter could use: they close (the others' releases close too while
        // someone waits).
        if waiters.queue.count == 1 { self.directory?.closeIdle(to: upstream, except: self.eventLoop) }
        self.scheduleCheck(upstream, waiters)
    }

    /// Closes one idle connection to an upstream other than `upstream`, if this loop has one (the largest stack's).
    private func closeOneIdle(except upstream: Upstream) {
        var largest: Stack?
        for (other, stack) in self.idle where other != upstream && !stack.connections.isEmpty {
            if stack.connections.count > largest?.connections.count ?? 0 { largest = stack }
        }
        largest?.connections.removeFirst().close()
    }

    /// Closes this loop's idle connections to `upstream` (an exchange on another loop waits for room).
    func closeIdle(to upstream: Upstream) {
        guard let stack = self.idle[upstream] else { return }
        for connection in stack.connections { connection.close() }
        stack.connections.removeAll()
    }

    private func scheduleCheck(_ upstream: Upstream, _ waiters: Waiters) {
        guard !waiters.checking else { return }
        waiters.checking = true
        self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) { [self] in
            waiters.checking = false
            self.wakeWaiters(upstream)
        }
    }

    /// Hands room under `maxConnections` to waiting exchanges, in order (those no longer waiting are dropped).
    private func wakeWaiters(_ upstream: Upstream) {
        guard let waiters = self.waiters[upstream] else { return }
        while let first = waiters.queue.first {
            guard first.handler.exchange === first.exchange else {
                waiters.queue.removeFirst()
                continue
            }
            guard waiters.state.openConnections.load(ordering: .relaxed) < waiters.most else { break }
            waiters.queue.removeFirst()
            first.handler.waitEnded(first.exchange, connection: nil)
        }
        if waiters.queue.isEmpty {
            self.waiters[upstream] = nil
        } else {
            self.scheduleCheck(upstream, waiters)
        }
    }

    /// The first exchange still waiting for `upstream`, taken off the queue.
    private func nextWaiter(_ upstream: Upstream) -> (handler: ProxyHandler, exchange: Exchange)? {
        guard let waiters = self.waiters[upstream] else { return nil }
        while let first = waiters.queue.popFirst() {
            if first.handler.exchange === first.exchange { return first }
        }
        return nil
    }

    /// Returns a connection after a complete exchange; it goes to an exchange waiting for one, is kept for the next
    /// request, or is closed.
    func release(_ connection: UpstreamConnection) {
        connection.handler.delegate = nil
        connection.handler.shadow = nil
        let stack = connection.stack
        if !self.waiters.isEmpty, !connection.handler.isClosed, !stack.retired,
            let waiter = self.nextWaiter(connection.upstream)
        {
            connection.isReused = true
            waiter.handler.waitEnded(waiter.exchange, connection: connection)
            return
        }
        if let state = connection.limitedState, state.pending.load(ordering: .relaxed) > 0 {
            // An exchange on another loop waits for room under maxConnections: this connection makes it.
            connection.channel.close(promise: nil)
            return
        }
        guard !connection.handler.isClosed, !stack.retired, stack.connections.count < self.maxIdle else {
            connection.channel.close(promise: nil)
            return
        }
        connection.isReused = true
        stack.connections.append(connection)
    }
}

/// An `https://` upstream of a table that is no longer live, whose TLS context is gone (the request started just as
/// the table changed).
struct UpstreamTLSError: Error, CustomStringConvertible {
    var upstream: Upstream
    var description: String { "no TLS context for \(self.upstream.url) (the table changed)" }
}
