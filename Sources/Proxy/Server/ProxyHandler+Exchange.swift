import HTTP1
import NIOCore
import NIOHTTP1
import RouteTable
import Synchronization

// Starting an exchange: routing a head on the live table (by its canonical path), planning its shadow, and
// connecting to its upstream.
extension ProxyHandler {
    /// Routes a whole request head and starts its exchange, or refuses it.
    func start(_ head: HTTPHead) {
        let configuration = self.shared.configuration
        if let length = head.contentLength, length > configuration.maxBodyBytes {
            self.shared.metrics.rejected()
            self.reject(
                ProxyErrorResponse(
                    status: .payloadTooLarge, code: "payload_too_large",
                    message: "the body is larger than \(configuration.maxBodyBytes) bytes", route: nil),
                requestID: nil, head: head)
            return
        }
        if head.hasDryRunField {
            self.shared.metrics.rejected()
            self.reject(Self.clientDryRun, requestID: nil, head: head)
            return
        }
        let method = Self.method(of: head)
        let snapshot = self.shared.store.snapshot
        guard let resolved = self.resolvePath(head, method: method, snapshot: snapshot) else { return }
        let route = resolved.route
        if route == nil { self.shared.unmatched.record(method: method, path: resolved.pathText(head)) }
        // Only a coexist route shadows: the others never load the recorder (an existential, retained per load).
        let recorder = route?.stage == .coexist ? self.shared.recorder : nil
        let now = self.now
        let (balancer, shadowPlan) = ShadowPlan.decide(
            route: route, snapshot: snapshot, head: head, method: method, path: { resolved.pathText(head) },
            recorder: recorder, now: now, ids: &self.loop.ids)
        var admission: Admission?
        if let gateway = snapshot.gateway {
            guard
                let admitted = self.admit(
                    head, route: route, answering: balancer, snapshot: snapshot, gateway: gateway, method: method)
            else {
                if shadowPlan != nil { recorder?.release() }
                return
            }
            admission = admitted
        }
        guard let instance = balancer.pick(now: now, random: &self.loop.ids) else {
            if shadowPlan != nil { recorder?.release() }
            self.shared.metrics.rejected()
            var answer = ProxyErrorResponse.unavailable(
                balancer.unavailableReason(now: now), group: balancer.name, retryAfter: balancer.retryAfter(now: now),
                route: route?.id)
            answer.accept = head.value(of: "accept")
            if let fields = admission?.responseFields { answer.extraFields = fields }
            self.reject(answer, requestID: nil, isHEAD: method == "HEAD")
            return
        }
        let upstream = balancer.instances[instance].upstream
        let allocator = self.allocator
        var upstreamHead = self.loop.requestHeads.popLast() ?? allocator.buffer(capacity: 1024)
        let byMonolith = balancer === snapshot.monolithBalancer
        // Spans only with tracing on: off, this is one nil check.
        let trace = self.shared.tracer.map { tracer in
            ExchangeTrace.begin(
                tracer, head: head, method: method, route: route, upstream: upstream,
                byMonolith: byMonolith, path: resolved.pathText(head),
                query: resolved.query(head), clientAddress: self.clientAddress, secure: self.secure)
        }
        let requestID = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: upstream.authority, clientAddress: self.clientAddress, ids: &self.loop.ids,
            into: &upstreamHead, path: resolved.forwarded(head, prefix: upstream.pathPrefix), secure: self.secure,
            client: admission?.client, trace: trace?.forwarded)
        let body = BodyFraming.request(head)
        let timeout = route?.timeout ?? Route.defaultTimeout
        let timeoutNanoseconds = route?.timeoutNanoseconds ?? Self.defaultTimeoutNanoseconds
        let exchange = Exchange(
            route: route, balancer: balancer, instance: instance, upstreamHead: upstreamHead, requestID: requestID,
            method: method, hasBody: body != nil, clientVersionMinor: head.versionMinor, timeout: timeout, started: now)
        balancer.instances[instance].inFlight.wrappingAdd(1, ordering: .relaxed)
        exchange.trace = trace
        exchange.byMonolith = byMonolith
        if let admission {
            exchange.responseFields = admission.responseFields
            exchange.throttles = admission.throttles
        }
        if !balancer.isSingle {
            balancer.requestStarted()
            exchange.isIdempotent =
                HTTPMethodRules.isIdempotent(method) || head.value(of: "idempotency-key") != nil
        }
        if let shadowPlan, let recorder {
            exchange.shadow = shadowPlan.makeTap(
                head: head, upstream: upstream, address: exchange.address, upstreamHead: upstreamHead,
                requestID: exchange.requestID,
                shadowPath: resolved.forwarded(head, prefix: shadowPlan.shadow.pathPrefix),
                query: resolved.query(head), clientAddress: self.clientAddress, secure: self.secure, recorder: recorder,
                noiseShare: configuration.noiseShare, maxCompareBytes: configuration.maxCompareBytes,
                ids: &self.loop.ids, allocator: allocator, trace: trace, metrics: self.shared.metrics)
        }
        if head.isUpgrade {
            exchange.isUpgrade = true
            exchange.headReader.allowsSwitch = true
        }
        if let capture = self.shared.capture, let route, capture.wants(route: route.id) {
            exchange.capture = TrafficCapture(
                route: route.id, method: method, path: resolved.pathText(head), query: resolved.query(head),
                requestHead: head.bytes, maxBody: configuration.maxCompareBytes)
        }
        self.exchange = exchange
        self.armTimer(
            for: self.machine.exchangeStarted(
                body: body, keepAlive: head.isKeepAlive, timeout: .nanoseconds(timeoutNanoseconds), started: now,
                expectsContinue: head.expectsContinue, now: now))
        // `Expect: 100-continue` is answered here, as nginx and Envoy do: the proxy will read the body, and an
        // upstream that never sends an interim answer (most do not) would leave a strict client waiting. The field
        // is not forwarded.
        if head.expectsContinue, body != nil, head.versionMinor >= 1, let context = self.context {
            context.writeAndFlush(
                self.wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
            if let end = self.machine.interimAnswer(now: now) { self.armTimer(for: end) }
        }
        if exchange.throttles.isEmpty { self.obtainConnection(for: exchange) } else { self.passThrottles(exchange) }
        // The client's request goes out first; a bodiless request's shadow copy right after it.
        if body == nil { self.launchShadow(exchange) }
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
            return self.pathLength == 0
                ? "/" : head.string(self.target.lowerBound..<(self.target.lowerBound + self.pathLength))
        }

        /// The path an upstream whose URL has `prefix` gets: the rewrite, or nil (as sent) without a prefix; with one,
        /// the prefix and then the canonical path (`/api` + `/orders/7`).
        func forwarded(_ head: HTTPHead, prefix: String) -> HeadRewriter.PathRewrite? {
            guard !prefix.isEmpty else { return self.rewrite }
            var bytes = Array(prefix.utf8)
            if let rewrite = self.rewrite {
                bytes += rewrite.bytes
            } else if self.pathLength == 0 {
                bytes.append(UInt8(ascii: "/"))
            } else {
                bytes +=
                    head.bytes.getBytes(at: head.bytes.readerIndex + self.target.lowerBound, length: self.pathLength)
                    ?? []
            }
            return HeadRewriter.PathRewrite(bytes: bytes, replacing: self.rewrite?.replacing ?? self.pathLength)
        }

        /// The query string after `?`, if any, as sent.
        func query(_ head: HTTPHead) -> String? {
            let start = self.target.lowerBound + self.pathLength
            guard start < self.target.upperBound else { return nil }
            return head.string((start + 1)..<self.target.upperBound)
        }
    }

    static let rootPath: [UInt8] = [UInt8(ascii: "/")]
    static let defaultTimeoutNanoseconds = Route.nanoseconds(Route.defaultTimeout)

    /// The request's method as text: the common ones as literals (no decoding), any other token as sent.
    static func method(of head: HTTPHead) -> String {
        let range = head.startLine.first
        let known: String? = head.bytes.withUnsafeReadableBytes { raw in
            func equals(_ name: StaticString) -> Bool {
                let expected = name.utf8Start
                for offset in 0..<range.count where raw[range.lowerBound + offset] != expected[offset] { return false }
                return true
            }
            switch range.count {
            case 3: return equals("GET") ? "GET" : equals("PUT") ? "PUT" : nil
            case 4: return equals("POST") ? "POST" : equals("HEAD") ? "HEAD" : nil
            case 5: return equals("PATCH") ? "PATCH" : nil
            case 6: return equals("DELETE") ? "DELETE" : nil
            case 7: return equals("OPTIONS") ? "OPTIONS" : nil
            default: return nil
            }
        }
        return known ?? head.string(range)
    }

    static let clientDryRun = ProxyErrorResponse(
        status: .badRequest, code: "internal_header",
        message:
            "the request carries Strangler-Dry-Run, the proxy's own header (it marks its dry-run shadow copies): a "
            + "client may not send it",
        route: nil)

    /// Routes the request by its canonical path (`CanonicalPath`): one scan of the target when it is canonical; a
    /// rewrite when it is another spelling of its canonical form, or when its trailing slash is dropped for its
    /// route. Nil after refusing it (an invalid path; in `"paths": "strict"`, any path the proxy would rewrite).
    func resolvePath(_ head: HTTPHead, method: String, snapshot: RouteTableStore.Snapshot) -> ResolvedPath? {
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
                return snapshot.routing(
                    method: method, path: UnsafeBufferPointer(rebasing: raw.assumingMemoryBound(to: UInt8.self)[path]))
            }
        }
        if routing.dropsTrailingSlash {
            var bytes =
                rewrite?.bytes ?? head.bytes.getBytes(
                    at: head.bytes.readerIndex + target.lowerBound, length: pathLength) ?? []
            bytes.removeLast()
            rewrite = HeadRewriter.PathRewrite(bytes: bytes, replacing: pathLength)
        }
        if let rewrite, snapshot.paths == .strict {
            self.shared.metrics.rejected()
            let sent = head.string(target.lowerBound..<(target.lowerBound + pathLength))
            let canonical = String(decoding: rewrite.bytes, as: UTF8.self)
            self.reject(
                .nonCanonicalPath(sent, canonical: canonical, route: routing.route?.id),
                requestID: nil, head: head)
            return nil
        }
        return ResolvedPath(route: routing.route, target: target, pathLength: pathLength, rewrite: rewrite)
    }

    /// Answers 400 to a path the proxy cannot route, naming it (its first 200 bytes) and what is wrong with it.
    func refusePath(_ head: HTTPHead, length: Int, _ problem: CanonicalPath.Problem) {
        self.shared.metrics.rejected()
        let start = head.startLine.second.lowerBound
        var path = head.string(start..<(start + min(length, 200)))
        if length > 200 { path += "…" }
        self.reject(.badRequest("malformed request: the path \(path) \(problem)"), requestID: nil, head: head)
    }

    /// The request was read whole: a shadowed request's copy goes out to the other side.
    func launchShadow(_ exchange: Exchange) {
        guard let tap = exchange.shadow else { return }
        tap.launch(pool: self.loop.pool, deadlines: self.loop.shadowDeadlines)
    }

    /// An idle connection to the exchange's instance, else a new one, within the group's circuit limits: at
    /// `maxConnections` open, the exchange waits for one to come free when fewer than `maxPending` wait already; else
    /// (or past `maxPending` connecting) it is answered 503 at once.
    func obtainConnection(for exchange: Exchange) {
        if !exchange.isUpgrade, let connection = self.loop.pool.takeIdle(exchange.upstream) {
            self.attach(connection, to: exchange)
            return
        }
        let balancer = exchange.balancer
        guard balancer.hasLimits else {
            self.connect(exchange)
            return
        }
        let state = balancer.instances[exchange.instance]
        let pending = state.pending.load(ordering: .relaxed)
        let pendingRoom = balancer.group.maxPending.map { pending < $0 } ?? true
        if let most = balancer.group.maxConnections, state.openConnections.load(ordering: .relaxed) >= most {
            guard balancer.group.maxPending != nil, pendingRoom else {
                self.circuitOpen(
                    exchange, why: "has \(most) connections open to \(exchange.upstream.url) (maxConnections)")
                return
            }
            exchange.beganWaiting()
            self.loop.pool.wait(for: exchange.upstream, handler: self, exchange: exchange, state: state, most: most)
            return
        }
        guard pendingRoom else {
            self.circuitOpen(
                exchange, why: "has \(pending) requests waiting for \(exchange.upstream.url) (maxPending)")
            return
        }
        exchange.beganWaiting()
        self.connect(exchange)
    }

    /// Answers 503 with `Retry-After: 1`: the instance's circuit is full.
    func circuitOpen(_ exchange: Exchange, why: String) {
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "circuit")
        let ending = self.machine.exchangeFailed(now: self.now)
        self.finish(exchange, reusable: false)
        if case .closeNow = ending {
            self.perform(ending)
            return
        }
        self.respond(
            self.decorated(
                .unavailable(why, group: exchange.balancer.name, retryAfter: 1, route: exchange.route?.id),
                for: exchange),
            requestID: exchange.requestID, ending: ending, isHEAD: exchange.isHEAD)
    }

    /// A connection came free for an exchange that waited for one (from the pool).
    func waitEnded(_ exchange: Exchange, connection: UpstreamConnection?) {
        guard self.exchange === exchange else {
            connection.map { self.loop.pool.release($0) }
            return
        }
        if let connection {
            exchange.endedWaiting()
            self.attach(connection, to: exchange)
        } else {
            self.connect(exchange)
        }
    }

    func connect(_ exchange: Exchange) {
        self.loop.pool.connect(exchange.upstream, address: exchange.address).assumeIsolated().whenComplete {
            [weak self] result in
            exchange.endedWaiting()
            guard let self, self.exchange === exchange else {
                if case .success(let connection) = result { connection.value.close() }
                return
            }
            switch result {
            case .success(let connection):
                self.attach(connection.value, to: exchange)
            case .failure(let error):
                let reason = Self.describe(error, connecting: true)
                // Nothing was sent: the body read so far is still pending, so a request with one goes again too.
                if self.retryElsewhere(exchange, reason: reason, bodyIsKept: true) { return }
                self.failExchange(exchange, reason: reason)
            }
        }
    }

    /// Sends an idempotent request that failed before any answer byte once more, to another available instance of its
    /// group, within the group's retry budget; false when it may not (then it fails as it is).
    func retryElsewhere(_ exchange: Exchange, reason: String, bodyIsKept: Bool) -> Bool {
        let balancer = exchange.balancer
        guard exchange.isIdempotent, !exchange.retriedElsewhere, !exchange.isUpgrade, !exchange.receivedAny,
            exchange.responseStatus == nil, bodyIsKept || !exchange.hasBody, balancer.instances.count > 1
        else { return false }
        let now = self.now
        let failed = exchange.instance
        guard let next = balancer.pick(now: now, avoiding: failed, random: &self.loop.ids),
            let head = HeadRewriter.retarget(
                exchange.upstreamHead, to: balancer.instances[next].upstream.authority, dryRun: false,
                allocator: self.allocator),
            balancer.claimRetry()
        else { return false }  // the exchange fails as it is, and its failure is counted once, when it ends
        self.instanceFailed(exchange, why: reason, now: now)
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "retried")
        balancer.instances[failed].inFlight.wrappingSubtract(1, ordering: .relaxed)
        balancer.instances[next].inFlight.wrappingAdd(1, ordering: .relaxed)
        exchange.retriedElsewhere = true
        exchange.instance = next
        exchange.upstream = balancer.instances[next].upstream
        exchange.address = balancer.addresses[next]
        exchange.upstreamHead = head
        exchange.receivedAny = false
        exchange.headReader.reset()
        exchange.response = nil
        if let connection = exchange.connection {
            exchange.connection = nil
            connection.close()
        }
        self.obtainConnection(for: exchange)
        return true
    }

    /// Counts a failure of the exchange's instance toward its ejection (logged and counted when it ejects it).
    func instanceFailed(_ exchange: Exchange, why: String, now: NIODeadline) {
        let state = exchange.balancer.instances[exchange.instance]
        state.errors.wrappingAdd(1, ordering: .relaxed)
        if let length = exchange.balancer.failed(exchange.instance, why: why, now: now) {
            self.shared.metrics.instanceEjected(state.upstream, for: length)
        }
    }

    func attach(_ connection: UpstreamConnection, to exchange: Exchange) {
        exchange.connection = connection
        if exchange.balancer.hasLimits { connection.limitedState = exchange.balancer.instances[exchange.instance] }
        connection.handler.delegate = self
        if exchange.pending.isEmpty {
            // One trip through the pipeline instead of two (a write, then a flush).
            connection.writeAndFlush(exchange.upstreamHead)
        } else {
            connection.write(exchange.upstreamHead)
            for bytes in exchange.pending { connection.write(bytes) }
            exchange.pending.removeAll()
            connection.flush()
        }
        self.resumeReadsIfHeld()
    }
}
