import HTTP1
import NIOCore
import NIOHTTP1
import NIOPosix
import RouteTable

/// One exchange: a client request being forwarded and its answer being relayed.
final class Exchange {
    enum ResponseFraming {
        /// Waiting for (the rest of) the upstream's head.
        case head(ByteBuffer?)
        case length(Int)
        case chunked(ChunkedTracker)
        /// The body runs until the upstream closes the connection.
        case untilClose
    }

    let route: Route?
    let upstream: Upstream
    let address: SocketAddress
    /// The rewritten head for the upstream (kept to send again on a retry).
    let upstreamHead: ByteBuffer
    let requestID: String
    let isHEAD: Bool
    let hasBody: Bool
    let started: NIODeadline
    var clientKeepAlive: Bool
    var connection: UpstreamConnection?
    var pending: [ByteBuffer] = []
    var requestEnded = false
    var bodyBytes = 0
    var response: ResponseFraming = .head(nil)
    var responseStarted = false
    var responseStatus: UInt?
    var upstreamKeepAlive = true
    /// An HTTP/1.0 client cannot take chunked framing: the chunks are unwrapped and the connection closes.
    var unchunkForClient = false
    /// When the route's timeout runs out.
    var deadline: NIODeadline = .distantFuture
    var timeout: Duration = Route.defaultTimeout
    /// Whether any byte came back from the upstream (after which a retry could repeat a processed request).
    var receivedAny = false
    let method: String
    let clientVersionMinor: Int
    /// Bytes written to the upstream since its last flush.
    var upstreamUnflushed = false
    var retried = false
    /// In `coexist`, when this request is shadowed: the copy of the exchange for comparison.
    var shadow: ShadowTap?
    /// The whole answer was relayed.
    var answered = false

    init(
        route: Route?, upstream: Upstream, address: SocketAddress, upstreamHead: ByteBuffer, requestID: String, method: String, hasBody: Bool,
        clientKeepAlive: Bool, clientVersionMinor: Int
    ) {
        self.method = method
        self.clientVersionMinor = clientVersionMinor
        self.route = route
        self.upstream = upstream
        self.address = address
        self.upstreamHead = upstreamHead
        self.requestID = requestID
        self.isHEAD = method == "HEAD"
        self.hasBody = hasBody
        self.clientKeepAlive = clientKeepAlive
        self.started = .now()
    }
}

/// The proxy's handler for one client connection, working on raw bytes: it parses each request head
/// itself (strictly), picks the route on the live table, writes a rewritten head and then the body bytes
/// as they come to a pooled keep-alive upstream connection of the same event loop, and relays the answer
/// back the same way, following the framing of both sides without buffering bodies. Everything runs on
/// the connection's event loop, including what the upstream connection reports (the `upstream…` methods).
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum RequestBody {
        case none
        case length(Int)
        case chunked(ChunkedTracker)
    }

    /// Bytes read ahead of the exchange in flight (pipelined requests) before reads are held.
    static let readAheadLimit = 256 * 1024

    private let shared: ProxyShared
    private let loop: LoopState
    private var context: ChannelHandlerContext?
    private var clientAddress = "unknown"
    private var exchange: Exchange?
    /// Bytes read but not yet handled.
    private var inbound: ByteBuffer?
    /// How far the current head has been searched for its end.
    private var scanned = 0
    /// The framing of the request body being read.
    private var requestBody: RequestBody = .none
    /// The answer came before the request's body ended: the rest of that body is dropped, so that the connection can
    /// serve a next request; but for at most `headTimeout` and `maxDiscardedBytes` (a client must not keep a
    /// connection by trickling a body nobody waits for), past which the connection closes.
    private var discardingBody = false
    private var discardDeadline: NIODeadline?
    private var discardedBytes = 0
    static let maxDiscardedBytes = 1 << 20
    /// After a refused request the connection only waits to close: nothing after it is read.
    private var closing = false
    /// Graceful shutdown has begun: finish the exchange in flight, then close.
    private var quiescing = false
    /// The client closed its sending side (half-close): answer what it sent, then close.
    private var inputClosed = false
    private var pendingRead = false
    private var processing = false
    /// One timer per connection, not per request: it is moved only when an exchange's deadline is earlier
    /// than the one it is set for, and checks the exchange in flight when it fires.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline = .distantFuture
    /// Bytes written to the client since its last flush.
    private var clientUnflushed = false
    /// When the client last sent bytes or was last answered; a connection with no exchange closes after
    /// `idleTimeout` without any (an idle keep-alive connection, a head that never completes, a body that stops).
    private var lastActivity: NIODeadline = .now()
    /// Counted under the data plane's connection cap (released when the connection closes).
    private var admitted = false
    /// When the head being read must be whole: `headTimeout` after its first byte (after the accept, for the first
    /// request), whatever comes in between. Nil while no head is being read (idle, or an exchange in flight).
    private var headDeadline: NIODeadline?
    /// How the rate of the request body being read is measured.
    private enum BodyRate {
        case off
        /// `Expect: 100-continue`: the client sends nothing before an interim answer (or its own wait) ends.
        case awaitingContinue
        /// The current window: when it ends, and how many body bytes had come when it began.
        case window(end: NIODeadline, startBytes: Int)
    }
    private var bodyRate: BodyRate = .off
    /// Reads were held during the current body window (the proxy's doing, for a slow upstream): it is not judged.
    private var heldDuringWindow = false

    init(shared: ProxyShared, loop: LoopState) {
        self.shared = shared
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress?.ipAddress { self.clientAddress = address }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client side

    func channelActive(context: ChannelHandlerContext) {
        // Over the cap, the connection is closed as soon as it is accepted: nothing is read, nothing waits.
        guard self.shared.connections.admit() else {
            self.closing = true
            context.close(promise: nil)
            return
        }
        self.admitted = true
        self.lastActivity = .now()
        let headDeadline = self.lastActivity + TimeAmount(self.shared.configuration.headTimeout)
        self.headDeadline = headDeadline
        self.armTimer(for: min(headDeadline, self.lastActivity + TimeAmount(self.shared.configuration.idleTimeout)))
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        self.lastActivity = .now()
        var buffer = self.unwrapInboundIn(data)
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = buffer
        } else {
            self.inbound!.writeBuffer(&buffer)
        }
        self.process()
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
        self.closing = true
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.exchange?.connection?.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange = self.exchange { self.finish(exchange, reusable: false) }
        self.closing = true
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.quiescing = true
            if self.exchange == nil {
                self.closing = true
                context.close(promise: nil)
            }
            return
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.inputClosed = true
            if let exchange = self.exchange, !exchange.requestEnded {
                // The request was cut short: nothing sensible can be answered.
                self.finish(exchange, reusable: false)
                self.closing = true
                context.close(promise: nil)
            } else if self.exchange == nil {
                self.process()
                self.closeIfDrained(context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// After a half-close, the connection closes once every complete request it carried is answered.
    private func closeIfDrained(_ context: ChannelHandlerContext) {
        guard self.inputClosed, self.exchange == nil, !self.closing else { return }
        self.closing = true
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Reads are held while an upstream connection is being opened or cannot take more, while too many
    /// bytes wait behind the exchange in flight, and once the connection is closing. Otherwise the client is
    /// read as it sends, with no read-interest changes per request.
    private var holdsReads: Bool {
        if self.closing { return true }
        guard let exchange = self.exchange else { return false }
        if let connection = exchange.connection {
            if !connection.isWritable { return true }
        } else if !exchange.requestEnded {
            return true
        }
        return (self.inbound?.readableBytes ?? 0) > Self.readAheadLimit
    }

    func read(context: ChannelHandlerContext) {
        if self.holdsReads {
            self.pendingRead = true
            self.heldDuringWindow = true
        } else {
            context.read()
        }
    }

    private func resumeReadsIfHeld() {
        if self.pendingRead, !self.holdsReads, let context = self.context {
            self.pendingRead = false
            context.read()
        }
    }

    /// Handles the bytes read so far: the current request's body, then the next request's head, unless an
    /// exchange is still in flight (pipelined requests wait their turn).
    private func process() {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        while !self.closing, var inbound = self.inbound, inbound.readableBytes > 0 {
            switch self.requestBody {
            case .length(let remaining):
                let take = min(remaining, inbound.readableBytes)
                let slice = inbound.readSlice(length: take)!
                self.inbound = inbound
                self.requestBody = remaining - take == 0 ? .none : .length(remaining - take)
                self.bodyBytes(slice)
                if case .none = self.requestBody { self.requestComplete() }
            case .chunked(var tracker):
                let consumed: Int
                do {
                    consumed = try inbound.withUnsafeReadableBytes { raw throws(HeadError) in try tracker.consume(raw) }
                } catch {
                    self.refuseBody(.badRequest("malformed chunked body: \(error.reason)"))
                    return
                }
                let slice = inbound.readSlice(length: consumed)!
                self.inbound = inbound
                self.requestBody = tracker.isDone ? .none : .chunked(tracker)
                self.bodyBytes(slice)
                if tracker.isDone { self.requestComplete() }
            case .none:
                if self.exchange != nil || self.discardingBody { return }
                let maxHeader = self.shared.configuration.maxHeaderBytes
                guard let length = HTTPHeadParser.headLength(in: inbound, searchFrom: self.scanned) else {
                    if inbound.readableBytes > maxHeader {
                        self.shared.metrics.rejected()
                        self.reject(Self.headerTooLarge(maxHeader), requestID: nil)
                    } else {
                        self.scanned = inbound.readableBytes
                        if self.headDeadline == nil {
                            // The head's first bytes: its clock starts, and no byte after them restarts it.
                            let deadline = NIODeadline.now() + TimeAmount(self.shared.configuration.headTimeout)
                            self.headDeadline = deadline
                            self.armTimer(for: deadline)
                        }
                    }
                    return
                }
                self.scanned = 0
                self.headDeadline = nil
                guard length <= maxHeader + 4 else {
                    self.shared.metrics.rejected()
                    self.reject(Self.headerTooLarge(maxHeader), requestID: nil)
                    return
                }
                let headBytes = inbound.readSlice(length: length)!
                self.inbound = inbound
                do {
                    let head = try HTTPHeadParser.parseRequest(headBytes)
                    self.start(head)
                } catch {
                    self.shared.metrics.rejected()
                    self.reject(.badRequest("malformed request: \(error.reason)"), requestID: nil)
                    return
                }
            }
        }
        if self.inbound?.readableBytes == 0 { self.inbound = nil }
    }

    static func headerTooLarge(_ limit: Int) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .requestHeaderFieldsTooLarge, code: "header_too_large", message: "the request's headers are larger than \(limit) bytes", route: nil)
    }

    private func bodyBytes(_ slice: ByteBuffer) {
        if self.discardingBody {
            self.discardedBytes += slice.readableBytes
            if self.discardedBytes > Self.maxDiscardedBytes { self.stopDiscarding() }
            return
        }
        guard let exchange = self.exchange else { return }
        exchange.bodyBytes += slice.readableBytes
        if case .awaitingContinue = self.bodyRate { self.startBodyWindow(exchange) }
        if exchange.bodyBytes > self.shared.configuration.maxBodyBytes {
            self.refuseBody(
                ProxyErrorResponse(
                    status: .payloadTooLarge, code: "payload_too_large", message: "the body is larger than \(self.shared.configuration.maxBodyBytes) bytes",
                    route: exchange.route?.id))
            return
        }
        exchange.shadow?.requestBodyBytes(slice)
        if let connection = exchange.connection {
            connection.write(slice)
            exchange.upstreamUnflushed = true
        } else {
            exchange.pending.append(slice)
        }
    }

    /// The request's body cannot go on: answer if nothing was answered yet, and close.
    private func refuseBody(_ answer: ProxyErrorResponse) {
        guard let exchange = self.exchange else {
            self.reject(answer, requestID: nil)
            return
        }
        let started = exchange.responseStarted
        self.finish(exchange, reusable: false)
        if started {
            self.closing = true
            self.context?.close(promise: nil)
        } else {
            self.reject(answer, requestID: exchange.requestID)
        }
    }

    /// The request's last byte was read.
    private func requestComplete() {
        if self.discardingBody {
            self.discardingBody = false
            self.discardDeadline = nil
            self.answered()
            return
        }
        guard let exchange = self.exchange else { return }
        exchange.requestEnded = true
        self.bodyRate = .off
        self.launchShadow(exchange)
        if exchange.upstreamUnflushed {
            exchange.upstreamUnflushed = false
            exchange.connection?.flush()
        }
    }

    // MARK: Starting an exchange

    private func start(_ head: HTTPHead) {
        let configuration = self.shared.configuration
        if let length = head.contentLength, length > configuration.maxBodyBytes {
            self.shared.metrics.rejected()
            self.reject(
                ProxyErrorResponse(
                    status: .payloadTooLarge, code: "payload_too_large", message: "the body is larger than \(configuration.maxBodyBytes) bytes", route: nil),
                requestID: nil)
            return
        }
        if head.hasDryRunField {
            self.shared.metrics.rejected()
            self.reject(Self.clientDryRun, requestID: nil)
            return
        }
        let method = head.string(head.startLine.first)
        let snapshot = self.shared.store.snapshot
        guard let resolved = self.resolvePath(head, method: method, snapshot: snapshot) else { return }
        let route = resolved.route
        var upstream = snapshot.upstream(for: route)
        // coexist: both sides run; the sampler decides whether this request is shadowed and who answers it.
        var shadowPlan: ShadowPlan?
        if let route, route.stage == .coexist, let service = snapshot.serviceUpstream(for: route), let recorder = self.shared.recorder {
            let policy = route.shadow ?? ShadowPolicy.defaults
            let path = resolved.pathText(head)
            let decision = ShadowSampler.decide(policy, route: route, head: head, path: Substring(path), ids: &self.loop.ids)
            let servedBy: ShadowObservation.Side = decision.serve ? .service : .monolith
            if decision.serve { upstream = service }
            let write = HTTPMethodRules.isWrite(method)
            if decision.shadow, !write || policy.writes == .dryRun {
                if recorder.tryAcquire() {
                    shadowPlan = ShadowPlan(
                        route: route, policy: policy, shadow: decision.serve ? snapshot.monolith : service, servedBy: servedBy, method: method,
                        write: write, path: path)
                } else {
                    recorder.count(.dropped, route: route.id)
                }
            }
        }
        guard let address = snapshot.addresses[upstream] else {
            if shadowPlan != nil { self.shared.recorder?.release() }
            self.reject(.badGateway("has no address", upstream: upstream.url, route: route?.id), requestID: nil)
            return
        }
        let allocator = self.context?.channel.allocator ?? ByteBufferAllocator()
        let (upstreamHead, requestID) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: upstream.authority, clientAddress: self.clientAddress, ids: &self.loop.ids, allocator: allocator,
            path: resolved.rewrite)
        let hasBody = head.chunked || (head.contentLength ?? 0) > 0
        let exchange = Exchange(
            route: route, upstream: upstream, address: address, upstreamHead: upstreamHead, requestID: requestID, method: method,
            hasBody: hasBody, clientKeepAlive: head.isKeepAlive, clientVersionMinor: head.versionMinor)
        exchange.unchunkForClient = head.versionMinor == 0
        if let shadowPlan, let recorder = self.shared.recorder {
            exchange.shadow = self.makeTap(
                shadowPlan, recorder: recorder, head: head, path: resolved, requestID: requestID, upstream: upstream, address: address,
                upstreamHead: upstreamHead, snapshot: snapshot, allocator: allocator)
        }
        self.exchange = exchange
        if head.chunked {
            self.requestBody = .chunked(ChunkedTracker())
        } else if let length = head.contentLength, length > 0 {
            self.requestBody = .length(length)
        } else {
            self.requestBody = .none
            exchange.requestEnded = true
        }
        exchange.timeout = route?.timeout ?? Route.defaultTimeout
        exchange.deadline = exchange.started + TimeAmount(exchange.timeout)
        self.armTimer(for: exchange.deadline)
        if !exchange.requestEnded, configuration.minBodyRate > 0 {
            if head.expectsContinue { self.bodyRate = .awaitingContinue } else { self.startBodyWindow(exchange) }
        }
        if let connection = self.loop.pool.takeIdle(upstream) {
            self.attach(connection, to: exchange)
        } else {
            self.connect(exchange)
        }
        // The client's request goes out first; a bodiless request's shadow copy right after it.
        if exchange.requestEnded { self.launchShadow(exchange) }
    }

    /// A request's path as routed: its route, where its path ends in the target, and the canonical path the upstream
    /// gets instead of the client's (nil when the client sent it canonical, the common case: no copy is made).
    struct ResolvedPath {
        var route: Route?
        var target: Range<Int>
        var pathLength: Int
        var rewrite: HeadRewriter.PathRewrite?

        /// The path as forwarded (for samples and `{param}` sampling: made only when needed).
        func pathText(_ head: HTTPHead) -> String {
            if let rewrite { return String(decoding: rewrite.bytes, as: UTF8.self) }
            return self.pathLength == 0 ? "/" : head.string(self.target.lowerBound..<(self.target.lowerBound + self.pathLength))
        }

        /// The query string after `?`, if any, as sent.
        func query(_ head: HTTPHead) -> String? {
            let start = self.target.lowerBound + self.pathLength
            guard start < self.target.upperBound else { return nil }
            return head.string((start + 1)..<self.target.upperBound)
        }
    }

    static let rootPath: [UInt8] = [UInt8(ascii: "/")]

    static let clientDryRun = ProxyErrorResponse(
        status: .badRequest, code: "internal_header",
        message: "the request carries Strangler-Dry-Run, the proxy's own header (it marks its dry-run shadow copies): a client may not send it",
        route: nil)

    /// Routes the request by its canonical path (`CanonicalPath`): one scan of the target when it is canonical; a
    /// rewrite when it is another spelling of its canonical form, or when its trailing slash is dropped for its
    /// route. Nil after refusing it (an invalid path; in `"paths": "strict"`, any path the proxy would rewrite).
    private func resolvePath(_ head: HTTPHead, method: String, snapshot: RouteTableStore.Snapshot) -> ResolvedPath? {
        let target = head.startLine.second
        let (pathLength, verdict) = head.bytes.withUnsafeReadableBytes { raw in
            CanonicalPath.scan(UnsafeBufferPointer(rebasing: raw.assumingMemoryBound(to: UInt8.self)[target]))
        }
        var rewrite: HeadRewriter.PathRewrite?
        switch verdict {
        case .canonical:
            break
        case .invalid(let problem):
            self.refusePath(head, length: pathLength, problem)
            return nil
        case .normalizable:
            let sent = head.bytes.getBytes(at: head.bytes.readerIndex + target.lowerBound, length: pathLength) ?? []
            switch CanonicalPath.normalize(sent) {
            case .success(let canonical): rewrite = HeadRewriter.PathRewrite(bytes: canonical, replacing: pathLength)
            case .failure(let problem):
                self.refusePath(head, length: pathLength, problem)
                return nil
            }
        }
        let routing: (route: Route?, dropsTrailingSlash: Bool)
        if let rewrite {
            routing = rewrite.bytes.withUnsafeBufferPointer { snapshot.routing(method: method, path: $0) }
        } else if pathLength == 0 {
            routing = Self.rootPath.withUnsafeBufferPointer { snapshot.routing(method: method, path: $0) }
        } else {
            routing = head.bytes.withUnsafeReadableBytes { raw in
                let path = target.lowerBound..<(target.lowerBound + pathLength)
                return snapshot.routing(method: method, path: UnsafeBufferPointer(rebasing: raw.assumingMemoryBound(to: UInt8.self)[path]))
            }
        }
        if routing.dropsTrailingSlash {
            var bytes = rewrite?.bytes ?? head.bytes.getBytes(at: head.bytes.readerIndex + target.lowerBound, length: pathLength) ?? []
            bytes.removeLast()
            rewrite = HeadRewriter.PathRewrite(bytes: bytes, replacing: pathLength)
        }
        if let rewrite, snapshot.paths == .strict {
            self.shared.metrics.rejected()
            let sent = head.string(target.lowerBound..<(target.lowerBound + pathLength))
            let canonical = String(decoding: rewrite.bytes, as: UTF8.self)
            self.reject(
                ProxyErrorResponse(
                    status: .badRequest, code: "non_canonical_path",
                    message: "the path \(sent) is not canonical (it reads as \(canonical)); the route table serves canonical paths only (\"paths\": \"strict\")",
                    route: routing.route?.id),
                requestID: nil)
            return nil
        }
        return ResolvedPath(route: routing.route, target: target, pathLength: pathLength, rewrite: rewrite)
    }

    /// Answers 400 to a path the proxy cannot route, naming it (its first 200 bytes) and what is wrong with it.
    private func refusePath(_ head: HTTPHead, length: Int, _ problem: CanonicalPath.Problem) {
        self.shared.metrics.rejected()
        let start = head.startLine.second.lowerBound
        var path = head.string(start..<(start + min(length, 200)))
        if length > 200 { path += "…" }
        self.reject(.badRequest("malformed request: the path \(path) \(problem)"), requestID: nil)
    }

    /// What the sampler decided for a shadowed request.
    private struct ShadowPlan {
        var route: Route
        var policy: ShadowPolicy
        var shadow: Upstream
        var servedBy: ShadowObservation.Side
        var method: String
        /// Not GET/HEAD/OPTIONS: shadowed only as a dry run.
        var write: Bool
        /// The path as forwarded (canonical).
        var path: String
    }

    private func makeTap(
        _ plan: ShadowPlan, recorder: ShadowRecorder, head: HTTPHead,
        path: ResolvedPath, requestID: String, upstream: Upstream, address: SocketAddress, upstreamHead: ByteBuffer,
        snapshot: RouteTableStore.Snapshot, allocator: ByteBufferAllocator
    ) -> ShadowTap? {
        guard let shadowAddress = snapshot.addresses[plan.shadow] else {
            recorder.release()
            recorder.count(.shadowError, route: plan.route.id)
            return nil
        }
        // The answering request's head, re-addressed (a second rewrite from the client's head only if that fails).
        // The client's head, kept for a sample, goes in the same buffer, after it: one allocation for both.
        let shadowHead: ByteBuffer
        let requestHead: ByteBuffer
        if var both = HeadRewriter.retarget(
            upstreamHead, to: plan.shadow.authority, dryRun: plan.write, reserving: head.bytes.readableBytes, allocator: allocator)
        {
            let shadowCount = both.readableBytes
            both.writeImmutableBuffer(head.bytes)
            shadowHead = both.getSlice(at: both.readerIndex, length: shadowCount)!
            requestHead = both.getSlice(at: both.readerIndex + shadowCount, length: head.bytes.readableBytes)!
        } else {
            shadowHead =
                HeadRewriter.upstreamRequest(
                    head, upstreamAuthority: plan.shadow.authority, clientAddress: self.clientAddress, ids: &self.loop.ids, allocator: allocator,
                    requestID: requestID, dryRun: plan.write, path: path.rewrite
                ).0
            requestHead = head.bytes
        }
        var repeatTarget: (upstream: Upstream, address: SocketAddress, head: ByteBuffer)?
        let noiseShare = self.shared.configuration.noiseShare
        if plan.method == "GET", noiseShare > 0, ShadowSampler.unit(self.loop.ids.next()) < noiseShare {
            repeatTarget = (upstream, address, upstreamHead)
        }
        return ShadowTap(
            recorder: recorder, route: plan.route, policy: plan.policy, servedBy: plan.servedBy, requestID: requestID, method: plan.method,
            path: plan.path, query: path.query(head), requestHead: requestHead,
            maxBody: self.shared.configuration.maxCompareBytes, shadowUpstream: plan.shadow, shadowAddress: shadowAddress, shadowHead: shadowHead,
            repeatTarget: repeatTarget)
    }

    /// The request was read whole: a shadowed request's copy goes out to the other side.
    private func launchShadow(_ exchange: Exchange) {
        guard let tap = exchange.shadow else { return }
        tap.launch(pool: self.loop.pool, deadlines: self.loop.shadowDeadlines)
    }

    private func connect(_ exchange: Exchange) {
        self.loop.pool.connect(exchange.upstream, address: exchange.address).assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.exchange === exchange else {
                if case .success(let connection) = result { connection.wrappedValue.close() }
                return
            }
            switch result {
            case .success(let connection):
                self.attach(connection.wrappedValue, to: exchange)
            case .failure(let error):
                self.failBeforeAnswer(exchange, reason: Self.describe(error, connecting: true))
            }
        }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange) {
        exchange.connection = connection
        connection.handler.delegate = self
        connection.write(exchange.upstreamHead)
        for bytes in exchange.pending { connection.write(bytes) }
        exchange.pending.removeAll()
        connection.flush()
        self.resumeReadsIfHeld()
    }

    // MARK: Upstream side

    var clientIsWritable: Bool { self.context?.channel.isWritable ?? false }

    func upstreamWritabilityChanged() {
        self.resumeReadsIfHeld()
    }

    func upstreamReceived(_ bytes: ByteBuffer) {
        guard let exchange = self.exchange, let context = self.context else { return }
        exchange.receivedAny = true
        var bytes = bytes
        while bytes.readableBytes > 0, self.exchange === exchange {
            switch exchange.response {
            case .head(let previous):
                var accumulated = bytes
                if var previous {
                    previous.writeBuffer(&bytes)
                    accumulated = previous
                }
                bytes = ByteBuffer()
                guard let length = HTTPHeadParser.headLength(in: accumulated, searchFrom: 0) else {
                    if accumulated.readableBytes > 1024 * 1024 {
                        self.upstreamBroken(exchange, reason: "sent a response head larger than 1 MiB")
                        return
                    }
                    exchange.response = .head(accumulated)
                    return
                }
                let headBytes = accumulated.readSlice(length: length)!
                bytes = accumulated
                let head: HTTPHead
                do {
                    head = try HTTPHeadParser.parseResponse(headBytes)
                } catch {
                    self.upstreamBroken(exchange, reason: "sent a malformed response (\(error.reason))")
                    return
                }
                self.startResponse(head, exchange, rest: &bytes, context: context)
            case .length(let remaining):
                let take = min(remaining, bytes.readableBytes)
                let slice = bytes.readSlice(length: take)!
                exchange.shadow?.primaryBodyBytes(slice)
                context.write(self.wrapOutboundOut(slice), promise: nil)
                self.clientUnflushed = true
                if remaining - take == 0 {
                    exchange.response = .length(0)
                    if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
                    self.responseComplete(exchange, context: context)
                    return
                }
                exchange.response = .length(remaining - take)
            case .chunked(var tracker):
                let consumed: Int
                var dataSlices: [ByteBuffer] = []
                do {
                    let collect = exchange.unchunkForClient || exchange.shadow != nil
                    let view = bytes
                    consumed = try bytes.withUnsafeReadableBytes { raw throws(HeadError) in
                        try tracker.consume(raw) { range in
                            if collect { dataSlices.append(view.getSlice(at: view.readerIndex + range.lowerBound, length: range.count)!) }
                        }
                    }
                } catch {
                    self.upstreamBroken(exchange, reason: "sent a malformed chunked body (\(error.reason))")
                    return
                }
                let slice = bytes.readSlice(length: consumed)!
                if let tap = exchange.shadow {
                    for data in dataSlices { tap.primaryBodyBytes(data) }
                }
                if exchange.unchunkForClient {
                    for data in dataSlices { context.write(self.wrapOutboundOut(data), promise: nil) }
                } else {
                    context.write(self.wrapOutboundOut(slice), promise: nil)
                }
                self.clientUnflushed = true
                exchange.response = .chunked(tracker)
                if tracker.isDone {
                    if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
                    self.responseComplete(exchange, context: context)
                    return
                }
            case .untilClose:
                exchange.shadow?.primaryBodyBytes(bytes)
                context.write(self.wrapOutboundOut(bytes), promise: nil)
                self.clientUnflushed = true
                return
            }
        }
    }

    /// Bodies up to this size that came in the same read as their head go out in one write with the head.
    static let inlineBodyLimit = 16 * 1024

    /// A response head from the upstream: a 1xx is relayed and the final head awaited; a final head is
    /// relayed rewritten, and its framing decides how the body is followed.
    private func startResponse(_ head: HTTPHead, _ exchange: Exchange, rest bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        let status = head.statusCode
        if status == 101 {
            // Upgrade is never forwarded, so a switch of protocols is a broken upstream.
            self.upstreamBroken(exchange, reason: "switched protocols (101) though no upgrade was asked for")
            return
        }
        if (100..<200).contains(status) {
            // Interim answers (100 Continue, 103) are relayed, except to HTTP/1.0 clients, who cannot take them.
            if exchange.clientVersionMinor >= 1 {
                context.write(self.wrapOutboundOut(head.bytes), promise: nil)
                self.clientUnflushed = true
            }
            // The client may send its body now: its rate counts from here.
            if case .awaitingContinue = self.bodyRate { self.startBodyWindow(exchange) }
            exchange.response = .head(nil)
            return
        }
        // A final answer before the request's body was read: the rest of the body is dropped, and the
        // connection closes after the answer, so that no byte of that body can be read as a next request.
        if !exchange.requestEnded { exchange.clientKeepAlive = false }
        exchange.responseStarted = true
        exchange.responseStatus = status
        exchange.shadow?.primaryResponse(status: Int(status), head: head, isHEAD: exchange.isHEAD)
        exchange.upstreamKeepAlive = head.isKeepAlive
        var framing: Exchange.ResponseFraming
        if exchange.isHEAD || status == 204 || status == 304 {
            framing = .length(0)
        } else if head.chunked {
            framing = .chunked(ChunkedTracker())
            if exchange.unchunkForClient { exchange.clientKeepAlive = false }
        } else if let length = head.contentLength {
            framing = .length(length)
        } else {
            framing = .untilClose
            exchange.upstreamKeepAlive = false
            exchange.clientKeepAlive = false
        }
        // A small body already read whole goes out with the head, in one write.
        var inlineBody: ByteBuffer?
        if case .length(let length) = framing, length > 0, length <= Self.inlineBodyLimit, bytes.readableBytes >= length {
            let body = bytes.readSlice(length: length)!
            exchange.shadow?.primaryBodyBytes(body)
            inlineBody = body
            framing = .length(0)
        }
        exchange.response = framing
        let close = !exchange.clientKeepAlive || self.quiescing
        let rewritten = HeadRewriter.clientResponse(
            head, requestID: exchange.requestID, close: close, keepChunked: head.chunked && !exchange.unchunkForClient,
            keepAliveFor10: exchange.clientVersionMinor == 0 && !close, body: inlineBody, allocator: context.channel.allocator)
        context.write(self.wrapOutboundOut(rewritten), promise: nil)
        self.clientUnflushed = true
        if case .length(0) = framing {
            // Bytes after a complete answer mean the upstream framed it wrong: its connection is not reused.
            if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
            self.responseComplete(exchange, context: context)
        }
    }

    private func responseComplete(_ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.answered = true
        let requestComplete = exchange.requestEnded
        self.finish(exchange, reusable: requestComplete && exchange.upstreamKeepAlive)
        if !requestComplete, !self.closing { self.startDiscarding() }
        if exchange.clientKeepAlive, !self.quiescing {
            self.clientUnflushed = false
            context.flush()
            self.answered()
        } else {
            self.closing = true
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func upstreamReadComplete() {
        if self.clientUnflushed {
            self.clientUnflushed = false
            self.context?.flush()
        }
    }

    func upstreamFailed(_ error: any Error) {
        guard let exchange = self.exchange, let context = self.context else { return }
        if case .untilClose = exchange.response, error is ChannelError {
            // The end of a close-delimited body (a reset, by contrast, truncates it: handled below).
            self.responseComplete(exchange, context: context)
            return
        }
        if exchange.responseStarted {
            // Part of the answer is out: the client's connection cannot carry a correct answer any more.
            self.finish(exchange, reusable: false)
            self.closing = true
            context.close(promise: nil)
            return
        }
        // A reused keep-alive connection may have been closed by the upstream just as the request went out;
        // a request without a body is safe to send again once, on a new connection.
        if let connection = exchange.connection, connection.isReused, !exchange.retried, !exchange.hasBody, exchange.requestEnded,
            !exchange.receivedAny, HTTPMethodRules.isSafe(exchange.method)
        {
            exchange.retried = true
            exchange.receivedAny = false
            exchange.connection = nil
            exchange.response = .head(nil)
            connection.close()
            self.connect(exchange)
            return
        }
        self.failBeforeAnswer(exchange, reason: Self.describe(error, connecting: false))
    }

    private func upstreamBroken(_ exchange: Exchange, reason: String) {
        if exchange.responseStarted {
            self.finish(exchange, reusable: false)
            self.closing = true
            self.context?.close(promise: nil)
        } else {
            self.failBeforeAnswer(exchange, reason: reason)
        }
    }

    // MARK: Ending

    /// After an answer is complete: serve the pipelined request waiting, if any, then read on.
    private func answered() {
        guard let context = self.context, !self.closing else { return }
        // The connection is idle from now: the timer may still be set for the exchange's (later) deadline.
        self.lastActivity = .now()
        self.armTimer(for: self.lastActivity + TimeAmount(self.shared.configuration.idleTimeout))
        if self.quiescing, self.exchange == nil {
            self.closing = true
            context.close(promise: nil)
            return
        }
        self.process()
        self.closeIfDrained(context)
        self.resumeReadsIfHeld()
    }

    /// The rest of the request's body is read and dropped, within the lingering bounds.
    private func startDiscarding() {
        self.discardingBody = true
        self.discardedBytes = 0
        let deadline = NIODeadline.now() + TimeAmount(self.shared.configuration.headTimeout)
        self.discardDeadline = deadline
        self.armTimer(for: deadline)
    }

    /// The body being dropped took too long or was too large: the connection closes (its answer was sent).
    private func stopDiscarding() {
        self.discardingBody = false
        self.discardDeadline = nil
        self.closing = true
        self.context?.close(promise: nil)
    }

    /// Makes sure the connection's timer fires no later than `deadline`.
    private func armTimer(for deadline: NIODeadline) {
        guard self.timer == nil || deadline < self.timerDeadline, let context = self.context else { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        self.timerDeadline = .distantFuture
        let now = NIODeadline.now()
        guard let exchange = self.exchange else {
            let idleDeadline = self.lastActivity + TimeAmount(self.shared.configuration.idleTimeout)
            if !self.closing, self.discardingBody, let discardDeadline = self.discardDeadline, discardDeadline <= now {
                self.stopDiscarding()
            } else if !self.closing, let headDeadline = self.headDeadline, headDeadline <= now {
                self.headTimedOut()
            } else if self.closing || idleDeadline <= now {
                // Idle too long, or a closing connection whose last write never drained.
                self.closing = true
                self.context?.close(promise: nil)
            } else {
                self.armTimer(for: min(idleDeadline, self.headDeadline ?? .distantFuture, self.discardDeadline ?? .distantFuture))
            }
            return
        }
        if exchange.deadline <= now {
            self.timedOut(exchange, after: exchange.timeout)
            return
        }
        if case .window(let end, let startBytes) = self.bodyRate, end <= now {
            let received = exchange.bodyBytes - startBytes
            if !self.heldDuringWindow, !self.pendingRead, !exchange.responseStarted, received < self.bodyBytesPerWindow {
                self.bodyTooSlow(exchange, received: received)
                return
            }
            self.startBodyWindow(exchange)
        }
        if case .window(let end, _) = self.bodyRate {
            self.armTimer(for: min(exchange.deadline, end))
        } else {
            self.armTimer(for: exchange.deadline)
        }
    }

    /// The body bytes each window must bring (`minBodyRate` over `bodyRateWindow`).
    private var bodyBytesPerWindow: Int {
        let configuration = self.shared.configuration
        let (seconds, attoseconds) = configuration.bodyRateWindow.components
        return Int((Double(configuration.minBodyRate) * (Double(seconds) + Double(attoseconds) / 1e18)).rounded(.up))
    }

    /// A new window of the body's rate, from now.
    private func startBodyWindow(_ exchange: Exchange) {
        let end = NIODeadline.now() + TimeAmount(self.shared.configuration.bodyRateWindow)
        self.bodyRate = .window(end: end, startBytes: exchange.bodyBytes)
        self.heldDuringWindow = self.pendingRead
        self.armTimer(for: end)
    }

    /// The head did not come whole within `headTimeout`: 408, and the connection closes.
    private func headTimedOut() {
        let configuration = self.shared.configuration
        self.headDeadline = nil
        self.shared.metrics.clientTimedOut(body: false)
        self.reject(
            ProxyErrorResponse(
                status: .requestTimeout, code: "request_timeout",
                message: "the request head did not arrive whole within \(DurationText.format(configuration.headTimeout))", route: nil),
            requestID: nil)
        // Should the answer never drain (a client that does not read), the timer still closes the connection.
        self.armTimer(for: .now() + TimeAmount(configuration.idleTimeout))
    }

    /// The body came slower than `minBodyRate` over a window: 408, the upstream's exchange is dropped, and the
    /// connection closes.
    private func bodyTooSlow(_ exchange: Exchange, received: Int) {
        let configuration = self.shared.configuration
        self.shared.metrics.clientTimedOut(body: true)
        self.finish(exchange, reusable: false)
        self.respond(
            ProxyErrorResponse(
                status: .requestTimeout, code: "request_timeout",
                message: "the request body came slower than \(configuration.minBodyRate) bytes/s (\(received) bytes in \(DurationText.format(configuration.bodyRateWindow)))",
                route: exchange.route?.id),
            requestID: exchange.requestID, close: true)
        self.armTimer(for: .now() + TimeAmount(configuration.idleTimeout))
    }

    private func timedOut(_ exchange: Exchange, after timeout: Duration) {
        guard self.exchange === exchange else { return }
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "timeout")
        if exchange.responseStarted {
            self.finish(exchange, reusable: false)
            self.closing = true
            self.context?.close(promise: nil)
        } else {
            let requestComplete = exchange.requestEnded
            self.finish(exchange, reusable: false)
            if !requestComplete { self.startDiscarding() }
            self.respond(
                .gatewayTimeout(exchange.upstream.url, after: DurationText.format(timeout), route: exchange.route?.id),
                requestID: exchange.requestID, close: !requestComplete || !exchange.clientKeepAlive)
        }
    }

    private func failBeforeAnswer(_ exchange: Exchange, reason: String) {
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "connect")
        let requestComplete = exchange.requestEnded
        self.finish(exchange, reusable: false)
        if !requestComplete { self.startDiscarding() }
        self.respond(
            .badGateway(reason, upstream: exchange.upstream.url, route: exchange.route?.id),
            requestID: exchange.requestID, close: !requestComplete || !exchange.clientKeepAlive)
    }

    /// Ends the exchange: the upstream connection goes back to the pool or is closed.
    private func finish(_ exchange: Exchange, reusable: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        self.bodyRate = .off
        if let tap = exchange.shadow {
            exchange.shadow = nil
            tap.primaryEnded(answered: exchange.answered)
        }
        if let connection = exchange.connection {
            exchange.connection = nil
            if reusable { self.loop.pool.release(connection) } else { connection.close() }
        }
        if let status = exchange.responseStatus {
            self.loop.recordCompleted(self.shared.metrics, route: exchange.route, upstream: exchange.upstream, status: status, since: exchange.started)
        }
    }

    /// Answers a request the proxy refuses outright, and closes the connection: nothing after a refused
    /// request is trusted (a smuggled second request is never read).
    private func reject(_ answer: ProxyErrorResponse, requestID: String?) {
        self.respond(answer, requestID: requestID, close: true)
    }

    private func respond(_ answer: ProxyErrorResponse, requestID: String?, close: Bool) {
        guard let context = self.context else { return }
        let bytes = answer.bytes(allocator: context.channel.allocator, close: close || self.quiescing, requestID: requestID)
        if close || self.quiescing {
            self.closing = true
            context.writeAndFlush(self.wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
            self.answered()
        }
    }

    private static func describe(_ error: any Error, connecting: Bool) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case 111: return "refused the connection"
            case 104: return "reset the connection"
            default: return "failed: \(error.description)"
            }
        }
        if case ChannelError.connectTimeout = error { return "did not accept the connection in time" }
        if error is ChannelError, !connecting { return "closed the connection before answering" }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return Self.describe(first.error, connecting: true)
        }
        return connecting ? "could not be reached (\(error))" : "failed (\(error))"
    }
}
