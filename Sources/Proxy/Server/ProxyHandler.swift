import HTTP1
import NIOCore
import NIOHTTP1
import NIOPosix
import RouteTable
import Synchronization

/// The proxy's handler for one client connection, working on raw bytes: a thin shell around the connection's
/// `ConnectionStateMachine`, which it feeds every event (bytes read, the timer, half-close, shutdown, the answer's
/// progress) and whose actions it performs. Each request head the machine reads is routed on the live table
/// (`ProxyHandler+Exchange`), written rewritten, then the body bytes as they come, to a pooled keep-alive upstream
/// connection of the same event loop; the answer is relayed back the same way (`ProxyHandler+Answer`), following the
/// framing of both sides without buffering bodies. Everything runs on the connection's event loop, including what the
/// upstream connection reports (the `upstream…` methods).
///
/// Its mutable state is touched only on its event loop, by one call at a time, and no access to a property overlaps
/// another to the same property: the hot ones are marked `@exclusivity(unchecked)`, which saves the runtime's
/// exclusivity bookkeeping (a `swift_beginAccess` and its access set, about 150 instructions) on every access.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let shared: ProxyShared
    let loop: LoopState
    @exclusivity(unchecked) var context: ChannelHandlerContext?
    var clientAddress = "unknown"
    /// `ip:ADDRESS`, the gateway's key for limits by address, once a limit asked for it.
    var limitIPKey: String?
    /// The channel's allocator, kept (asking the channel for it each time costs a call through its protocol).
    var allocator = ByteBufferAllocator()
    /// The I/O side of the exchange in flight (its phase is the machine's).
    @exclusivity(unchecked) var exchange: Exchange?
    @exclusivity(unchecked) var machine: ConnectionStateMachine
    /// The machine's steps are being handled (a step's action may lead back to `process`).
    @exclusivity(unchecked) private var processing = false
    /// One timer per connection, not per request: it is moved only when a deadline is earlier than the one it is
    /// set for, and asks the machine what is due when it fires.
    @exclusivity(unchecked) var timer: Scheduled<Void>?
    @exclusivity(unchecked) private var timerDeadline: NIODeadline = .distantFuture
    /// Bytes written to the client since its last flush.
    @exclusivity(unchecked) var clientUnflushed = false
    /// Counted under the data plane's connection cap (released when the connection closes).
    private var admitted = false
    /// After a `101 Switching Protocols`: the connection and its exchange's upstream connection are a tunnel, bytes
    /// relayed both ways as they come, until either side closes (`ProxyHandler+Tunnel`).
    @exclusivity(unchecked) var tunnel = false
    /// In a tunnel, a read the client side held while the upstream could not take more.
    var tunnelReadHeld = false

    /// The client's connection came in on a TLS listener (`X-Forwarded-Proto: https`).
    let secure: Bool

    init(shared: ProxyShared, loop: LoopState, secure: Bool = false) {
        self.shared = shared
        self.loop = loop
        self.secure = secure
        self.machine = ConnectionStateMachine(limits: Self.limits(shared.configuration), now: loop.eventLoop.now)
    }

    /// The time, by the event loop's clock (a test's embedded loop has its own).
    var now: NIODeadline { self.loop.eventLoop.now }

    static func limits(_ configuration: ProxyConfiguration) -> ConnectionStateMachine.Limits {
        let (seconds, attoseconds) = configuration.bodyRateWindow.components
        let perWindow = (Double(configuration.minBodyRate) * (Double(seconds) + Double(attoseconds) / 1e18)).rounded(
            .up)
        return ConnectionStateMachine.Limits(
            maxHeaderBytes: configuration.maxHeaderBytes, maxBodyBytes: configuration.maxBodyBytes,
            headTimeout: TimeAmount(configuration.headTimeout), idleTimeout: TimeAmount(configuration.idleTimeout),
            bodyRateWindow: TimeAmount(configuration.bodyRateWindow), bodyRateEnabled: configuration.minBodyRate > 0,
            bodyBytesPerWindow: Int(perWindow))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        if let address = context.channel.remoteAddress?.ipAddress { self.clientAddress = address }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client side

    func channelActive(context: ChannelHandlerContext) {
        // Over the cap, the connection is closed as soon as it is accepted: nothing is read, nothing waits.
        guard self.shared.connections.admit() else {
            self.machine.refusedAtCap()
            context.close(promise: nil)
            return
        }
        self.admitted = true
        // The first head's clock starts at the accept.
        self.machine = ConnectionStateMachine(limits: self.machine.limits, now: self.now)
        self.armTimer(for: self.machine.activated())
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.tunnel {
            self.tunnelClientBytes(self.unwrapInboundIn(data))
            return
        }
        let now = self.now
        guard self.machine.received(self.unwrapInboundIn(data), now: now) else { return }
        self.process(now: now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange = self.exchange, exchange.upstreamUnflushed {
            exchange.upstreamUnflushed = false
            exchange.connection?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange = self.exchange { self.finish(exchange, reusable: false) }
        if self.admitted {
            self.admitted = false
            self.shared.connections.release()
        }
        self.timer?.cancel()
        self.timer = nil
        self.machine.channelInactive()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.exchange?.connection?.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange = self.exchange { self.finish(exchange, reusable: false) }
        self.machine.errorCaught()
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // A tunnel has no end of its own to wait for: it closes.
            if self.tunnel || self.machine.quiesce() { context.close(promise: nil) }
            return
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            if self.tunnel {
                self.exchange?.connection?.channel.close(mode: .output, promise: nil)
                return
            }
            switch self.machine.inputClosed() {
            case .closeNow:
                // The request was cut short: nothing sensible can be answered.
                if let exchange = self.exchange { self.finish(exchange, reusable: false) }
                context.close(promise: nil)
            case .process:
                self.process()
            case .none:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private var upstreamReadiness: ConnectionStateMachine.UpstreamReadiness {
        self.exchange?.upstreamReadiness ?? .writable
    }

    func read(context: ChannelHandlerContext) {
        if self.tunnel {
            if self.exchange?.connection?.isWritable == true { context.read() } else { self.tunnelReadHeld = true }
            return
        }
        if self.machine.readRequested(upstream: self.upstreamReadiness) { context.read() }
    }

    func resumeReadsIfHeld() {
        if self.tunnel {
            guard self.tunnelReadHeld, self.exchange?.connection?.isWritable == true, let context = self.context else {
                return
            }
            self.tunnelReadHeld = false
            context.read()
            return
        }
        // Nothing held (the common case): the upstream's readiness is not even asked for.
        guard self.machine.readPending else { return }
        if let context = self.context, self.machine.mayResumeReading(upstream: self.upstreamReadiness) {
            context.read()
        }
    }

    /// Handles the bytes read so far, step by step as the machine says: the current request's body, then the next
    /// request's head (unless an exchange is still in flight: pipelined requests wait their turn).
    func process(now: NIODeadline? = nil) {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        let now = now ?? self.now
        while true {
            switch self.machine.next(now: now, fieldStorage: &self.loop.requestFields) {
            case .wait:
                return
            case .waitArming(let deadline):
                self.armTimer(for: deadline)
                return
            case .head(let head):
                self.start(head)
                self.loop.recycle(requestFields: head.fields)
            case .body(let slice, let last):
                self.forwardBody(slice)
                if last { self.requestComplete() }
            case .refuse(let refusal, let exchangeAnswered):
                self.refuse(refusal, exchangeAnswered: exchangeAnswered)
            case .closeAfterFlush:
                self.closeAfterFlush()
                return
            }
        }
    }

    private func refuse(
        _ refusal: ConnectionStateMachine.Refusal, exchangeAnswered: ConnectionStateMachine.AnswerProgress?
    ) {
        let limit = self.shared.configuration.maxBodyBytes
        let answer: ProxyErrorResponse
        switch refusal {
        case .headerTooLarge:
            self.shared.metrics.rejected()
            answer = Self.headerTooLarge(self.shared.configuration.maxHeaderBytes)
        case .malformedHead(let reason):
            self.shared.metrics.rejected()
            answer = .badRequest("malformed request: \(reason)")
        case .malformedBody(let reason):
            answer = .badRequest("malformed chunked body: \(reason)")
        case .bodyTooLarge:
            answer = ProxyErrorResponse(
                status: .payloadTooLarge, code: "payload_too_large", message: "the body is larger than \(limit) bytes",
                route: self.exchange?.route?.id)
        }
        guard let exchange = self.exchange, exchangeAnswered != nil else {
            self.respond(answer, requestID: nil, ending: .closeAfterFlush(deadline: nil))
            return
        }
        self.finish(exchange, reusable: false)
        if exchangeAnswered == .streaming {
            // Part of the answer is out: it cannot be followed by another.
            self.context?.close(promise: nil)
        } else {
            self.respond(answer, requestID: exchange.requestID, ending: .closeAfterFlush(deadline: nil))
        }
    }

    static func headerTooLarge(_ limit: Int) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .requestHeaderFieldsTooLarge, code: "header_too_large",
            message: "the request's headers are larger than \(limit) bytes", route: nil)
    }

    private func forwardBody(_ slice: ByteBuffer) {
        guard let exchange = self.exchange else { return }
        if let end = self.machine.bodyWindowEnd { self.armTimer(for: end) }
        exchange.shadow?.requestBodyBytes(slice)
        exchange.capture?.requestBodyBytes(slice)
        if let connection = exchange.connection {
            connection.write(slice)
            exchange.upstreamUnflushed = true
        } else {
            exchange.pending.append(slice)
        }
    }

    /// The request's last byte was read.
    private func requestComplete() {
        guard let exchange = self.exchange else { return }
        self.launchShadow(exchange)
        if exchange.upstreamUnflushed {
            exchange.upstreamUnflushed = false
            exchange.connection?.flush()
        }
    }

    // MARK: Ending

    /// Performs how an exchange ended for the connection (after its answer, or the proxy's own, was written).
    func perform(_ ending: ConnectionStateMachine.Ending) {
        guard let context = self.context else { return }
        switch ending {
        case .serveNext(let idleDeadline):
            // The connection is idle from now: the timer may still be set for the exchange's (later) deadline.
            self.armTimer(for: idleDeadline)
            self.process()
            self.resumeReadsIfHeld()
        case .closeAfterFlush(let deadline):
            if let deadline { self.armTimer(for: deadline) }
            self.closeAfterFlush()
        case .closeNow:
            context.close(promise: nil)
        }
    }

    private func closeAfterFlush() {
        guard let context = self.context else { return }
        self.clientUnflushed = false
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Makes sure the connection's timer fires no later than `deadline`.
    func armTimer(for deadline: NIODeadline) {
        guard !self.tunnel, self.timer == nil || deadline < self.timerDeadline, let context = self.context else {
            return
        }
        self.timer?.cancel()
        self.timerDeadline = deadline
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        self.timerDeadline = .distantFuture
        guard !self.tunnel else { return }
        let configuration = self.shared.configuration
        switch self.machine.timerFired(now: self.now) {
        case .rearm(let deadline):
            self.armTimer(for: deadline)
        case .close:
            // Idle too long, or a closing connection whose last write never drained.
            self.context?.close(promise: nil)
        case .headTimedOut(let idleDeadline):
            self.shared.metrics.clientTimedOut(body: false)
            self.respond(
                ProxyErrorResponse(
                    status: .requestTimeout, code: "request_timeout",
                    message:
                        "the request head did not arrive whole within "
                        + "\(DurationText.format(configuration.headTimeout))",
                    route: nil),
                requestID: nil, ending: .closeAfterFlush(deadline: nil))
            // Should the answer never drain (a client that does not read), the timer still closes the connection.
            self.armTimer(for: idleDeadline)
        case .bodyTooSlow(let received, let idleDeadline):
            guard let exchange = self.exchange else { return }
            self.shared.metrics.clientTimedOut(body: true)
            self.finish(exchange, reusable: false)
            let window = DurationText.format(configuration.bodyRateWindow)
            self.respond(
                self.decorated(
                    .bodyTooSlow(
                        least: configuration.minBodyRate, received: received, window: window,
                        route: exchange.route?.id),
                    for: exchange),
                requestID: exchange.requestID, ending: .closeAfterFlush(deadline: nil))
            self.armTimer(for: idleDeadline)
        case .exchangeTimedOut:
            guard let exchange = self.exchange else { return }
            self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "timeout")
            exchange.failure = "did not answer within \(DurationText.format(exchange.timeout))"
            self.finish(exchange, reusable: false)
            let ending = self.machine.exchangeFailed(now: self.now)
            if case .closeNow = ending {
                self.perform(ending)
                return
            }
            self.respond(
                self.decorated(
                    .gatewayTimeout(
                        exchange.upstream.url, after: DurationText.format(exchange.timeout), route: exchange.route?.id),
                    for: exchange),
                requestID: exchange.requestID, ending: ending, isHEAD: exchange.isHEAD)
        }
    }

    /// Ends the exchange: the upstream connection goes back to the pool or is closed.
    func finish(_ exchange: Exchange, reusable: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        let balancer = exchange.balancer
        let state = balancer.instances[exchange.instance]
        state.inFlight.wrappingSubtract(1, ordering: .relaxed)
        exchange.endedWaiting()
        if !exchange.throttles.isEmpty { self.releaseThrottles(exchange) }
        if let failure = exchange.failure {
            self.instanceFailed(exchange, why: failure, now: self.now)
        } else if let status = exchange.responseStatus {
            if status >= 500 {
                self.instanceFailed(exchange, why: "answered \(status)", now: self.now)
            } else {
                balancer.succeeded(exchange.instance)
            }
        }
        if let tap = exchange.shadow {
            exchange.shadow = nil
            tap.primaryEnded(answered: exchange.answered)
        }
        if let trace = exchange.trace {
            exchange.trace = nil
            trace.end(status: exchange.responseStatus, failure: exchange.failure)
        }
        if let capture = exchange.capture, let sink = self.shared.capture {
            exchange.capture = nil
            capture.ended(answered: exchange.answered, sink: sink)
        }
        // Its upstream head's buffer, for a later exchange on this loop to write its head in.
        self.loop.recycle(requestHead: exchange.upstreamHead)
        if let connection = exchange.connection {
            exchange.connection = nil
            // An upgrade request's connection is its own: never pooled, whatever the answer.
            if reusable, !exchange.isUpgrade { self.loop.pool.release(connection) } else { connection.close() }
        }
        if let status = exchange.responseStatus {
            self.loop.recordCompleted(
                self.shared.metrics, route: exchange.route, upstream: exchange.upstream, status: status,
                since: exchange.started, byMonolith: exchange.byMonolith)
        } else if exchange.failure != nil {
            self.shared.metrics.failedExchange(
                route: exchange.route?.id ?? "unmatched", byMonolith: exchange.byMonolith,
                nanoseconds: (self.now - exchange.started).nanoseconds)
        }
    }

    /// Answers a request the proxy refuses outright, and closes the connection: nothing after a refused request is
    /// trusted (a smuggled second request is never read).
    /// `head`: the refused request's, when it was read (its `Accept` chooses the answer's media type; a HEAD request
    /// gets the head only).
    func reject(_ answer: ProxyErrorResponse, requestID: String?, isHEAD: Bool = false, head: HTTPHead? = nil) {
        self.machine.refusedHead()
        var answer = answer
        var isHEAD = isHEAD
        if let head {
            if answer.accept == nil { answer.accept = head.value(of: "accept") }
            isHEAD = isHEAD || Self.method(of: head) == "HEAD"
        }
        self.respond(answer, requestID: requestID, ending: .closeAfterFlush(deadline: nil), isHEAD: isHEAD)
    }

    /// Writes the proxy's own answer, then ends as the machine said (`connection: close` unless it serves on).
    func respond(
        _ answer: ProxyErrorResponse, requestID: String?, ending: ConnectionStateMachine.Ending, isHEAD: Bool = false
    ) {
        guard let context = self.context else { return }
        var close = true
        if case .serveNext = ending { close = false }
        let bytes = answer.bytes(
            allocator: context.channel.allocator, close: close, requestID: requestID, isHEAD: isHEAD)
        if close {
            context.writeAndFlush(self.wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            if case .closeAfterFlush(let deadline?) = ending { self.armTimer(for: deadline) }
        } else {
            context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
            self.perform(ending)
        }
    }
}
