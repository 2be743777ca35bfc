import Foundation
import HTTP1
import NIOCore
import NIOHTTP1
import RouteTable

// The gateway's policies on one request, before it is forwarded: who calls (API keys), whether the route lets them
// (401, 403), the limits of the table, the route and the answering service (429), and their throttles (a queue, then
// 503). Only a table that declares any of these has a `Gateway`: the others never come here.
extension ProxyHandler {
    /// What the gateway let through, for the exchange.
    struct Admission {
        /// The caller's identity, forwarded as `Strangler-Client`.
        var client: String?
        /// `RateLimit-Policy` and `RateLimit` lines for the answer (nil: no limit counts this request).
        var responseFields: String?
        /// Throttles the request must hold a slot of before it is forwarded, in order.
        var throttles: [Throttle] = []
    }

    /// Applies the gateway to a routed request; nil after answering it itself (refused).
    func admit(
        _ head: HTTPHead, route: Route?, answering: Balancer, snapshot: RouteTableStore.Snapshot, gateway: Gateway,
        method: String
    ) -> Admission? {
        var admission = Admission()
        let identity = gateway.identify(head)
        admission.client = identity.name
        let routeGate = route.flatMap { gateway.routes[$0.id] }
        let isHEAD = method == "HEAD"
        if let access = routeGate?.access, !access.isEmpty {
            let verdict = access.verdict(for: admission.client)
            gateway.observations.record(client: admission.client, route: route?.id)
            if verdict != .allowed, routeGate?.enforce ?? true {
                self.shared.metrics.rejected()
                var answer: ProxyErrorResponse
                if verdict == .unauthenticated {
                    var why = "route \(route?.id ?? "") allows only some clients, and the request "
                    if case .invalid(let reason) = identity {
                        why += "presented no valid identity (\(reason))"
                    } else {
                        why += "presented no identity (an X-Api-Key, or Authorization: Bearer)"
                    }
                    answer = ProxyErrorResponse(
                        status: .unauthorized, code: "unauthenticated", message: why, route: route?.id,
                        accept: head.value(of: "accept"))
                    answer.extraFields = "www-authenticate: Bearer realm=\"strangler\"\r\n"
                } else {
                    answer = ProxyErrorResponse(
                        status: .forbidden, code: "forbidden",
                        message: "client \(admission.client ?? "") may not call route \(route?.id ?? "")",
                        route: route?.id, accept: head.value(of: "accept"))
                }
                self.answerWithoutForwarding(answer, head: head, isHEAD: isHEAD)
                return nil
            }
        } else if gateway.observes {
            gateway.observations.record(client: admission.client, route: route?.id)
        }
        // The limits: the table's, the route's, then the answering service's (a shadow copy is never counted).
        let service = answering === snapshot.monolithBalancer ? nil : route?.service
        let serviceGate = service.flatMap { gateway.services[$0] }
        let limits =
            route == nil
            ? gateway.unmatchedLimits : service == nil ? routeGate?.monolithLimits : routeGate?.serviceLimits
        if let limits {
            let now = Int64(truncatingIfNeeded: self.now.uptimeNanoseconds)
            let wall = limits.needsWall ? Self.wallNanoseconds() : 0
            var states = "ratelimit: "
            var refusal: (limiter: RateLimiter, retryAfter: Int64)?
            // Which limiters counted the request (bit per limiter: there are three at most).
            var counted = 0
            for (index, limiter) in limits.limiters.enumerated() {
                let key = self.limitKey(limiter.policy.by, client: admission.client, routeGate: routeGate)
                let outcome = limiter.take(key: key, now: now, wall: wall)
                Self.describe(limiter, outcome, into: &states, first: index == 0)
                if outcome.admitted {
                    counted |= 1 << index
                } else if refusal == nil || outcome.retryAfter > refusal!.retryAfter {
                    refusal = (limiter, outcome.retryAfter)
                }
            }
            states += "\r\n"
            let fields = limits.policyField + states
            if let refusal {
                // A refused request is counted by none: what the others counted is given back.
                for (index, limiter) in limits.limiters.enumerated() where counted & (1 << index) != 0 {
                    limiter.refund(
                        key: self.limitKey(limiter.policy.by, client: admission.client, routeGate: routeGate))
                }
                self.shared.metrics.rejected()
                let seconds = Self.seconds(refusal.retryAfter)
                var answer = ProxyErrorResponse(
                    status: .tooManyRequests, code: "rate_limited",
                    message:
                        "over the limit of \(Self.scope(refusal.limiter, route: route, service: service)) "
                        + "(\(Self.summary(refusal.limiter.policy))); retry in \(seconds) s",
                    route: route?.id, retryAfter: seconds, accept: head.value(of: "accept"))
                answer.extraFields = fields
                self.answerWithoutForwarding(answer, head: head, isHEAD: isHEAD)
                return nil
            }
            admission.responseFields = fields
        }
        if let throttle = routeGate?.throttle { admission.throttles.append(throttle) }
        if let throttle = serviceGate?.throttle { admission.throttles.append(throttle) }
        return admission
    }

    /// The key a limit counts a request by.
    private func limitKey(_ by: LimitKey, client: String?, routeGate: Gateway.RouteGate?) -> String {
        switch by {
        case .client: client.map { "client:" + $0 } ?? self.ipKey
        case .ip: self.ipKey
        case .route: routeGate?.routeKey ?? "route:unmatched"
        }
    }

    /// `ip:ADDRESS`, the key of limits `by` address (made once per connection).
    private var ipKey: String {
        if let key = self.limitIPKey { return key }
        let key = "ip:" + self.clientAddress
        self.limitIPKey = key
        return key
    }

    /// The scope a limit belongs to, for messages.
    private static func scope(_ limiter: RateLimiter, route: Route?, service: String?) -> String {
        if limiter.rateName.hasPrefix("table.") { return "the gateway" }
        if limiter.rateName.hasPrefix("service."), let service { return "service \(service)" }
        return "route \(route?.id ?? "unmatched")"
    }

    private static func summary(_ policy: LimitPolicy) -> String {
        var parts: [String] = []
        if let rate = policy.rate { parts.append("\(rate) with a burst of \(policy.burst)") }
        if let quota = policy.quota { parts.append("a quota of \(quota)") }
        return parts.joined(separator: " and ") + " by \(policy.by.rawValue)"
    }

    /// A limiter's state items (draft-ietf-httpapi-ratelimit-headers), appended to the `RateLimit` line:
    /// `"burst";r=0;t=1` (`r`: requests left; `t`: seconds until one is admitted when none is left, else until the
    /// budget is whole again), and the quota's. The `RateLimit-Policy` line is the limit set's, made once.
    private static func describe(
        _ limiter: RateLimiter, _ outcome: RateLimiter.Outcome, into states: inout String, first: Bool
    ) {
        var first = first
        if let state = outcome.rate {
            let reset = state.remaining > 0 && state.admitted ? state.untilFull : max(state.retryAfter, 1)
            if !first { states += ", " }
            first = false
            states += "\""
            states += limiter.rateName
            states += "\";r="
            states += String(state.remaining)
            states += ";t="
            states += String(Self.seconds(reset, least: 0))
        }
        if let state = outcome.quota {
            if !first { states += ", " }
            states += "\""
            states += limiter.quotaName
            states += "\";r="
            states += String(state.remaining)
            states += ";t="
            states += String(Self.seconds(state.reset, least: 0))
        }
    }

    /// Nanoseconds as whole seconds, rounded up (at least `least`).
    static func seconds(_ nanoseconds: Int64, least: Int = 1) -> Int {
        max(least, Int((max(0, nanoseconds) + 999_999_999) / 1_000_000_000))
    }

    /// The wall clock, in nanoseconds since the epoch (a quota's windows are aligned to it).
    static func wallNanoseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1e9).rounded())
    }

    /// Answers a request the proxy does not forward (401, 403, 429) and serves the next one when it can: a request
    /// without a body on a keep-alive connection leaves it open; one with a body closes it after the answer (its body
    /// is not read as a next request).
    func answerWithoutForwarding(_ answer: ProxyErrorResponse, head: HTTPHead, isHEAD: Bool) {
        let ending = self.machine.answeredWithoutForwarding(
            body: BodyFraming.request(head), keepAlive: head.isKeepAlive, now: self.now)
        self.respond(answer, requestID: nil, ending: ending, isHEAD: isHEAD)
    }

    // MARK: Throttles

    /// Takes a slot of each of the exchange's throttles in turn, waiting in their queues as needed, then forwards it.
    func passThrottles(_ exchange: Exchange) {
        while exchange.throttlesHeld < exchange.throttles.count {
            let throttle = exchange.throttles[exchange.throttlesHeld]
            if throttle.tryAcquire() {
                exchange.throttlesHeld += 1
                continue
            }
            let eventLoop = self.loop.eventLoop
            let waiting = NIOLoopBound((self, exchange), eventLoop: eventLoop)
            switch throttle.enqueue(grant: {
                eventLoop.execute {
                    let (handler, exchange) = waiting.value
                    handler.throttleGranted(exchange, throttle)
                }
            }) {
            case .acquired:
                exchange.throttlesHeld += 1
                continue
            case .full:
                self.throttled(
                    exchange,
                    why: "\(throttle.scope) has \(throttle.maxInFlight) requests in flight and "
                        + "\(throttle.maxQueued) waiting (maxInFlight, maxQueued)")
                return
            case .waiting(let ticket):
                exchange.throttleTicket = ticket
                exchange.queueTimer = self.loop.eventLoop.assumeIsolated().scheduleTask(
                    in: TimeAmount(throttle.queueTimeout)
                ) { [weak self] in
                    self?.queueTimedOut(exchange)
                }
                return
            }
        }
        self.obtainConnection(for: exchange)
    }

    /// A slot came free for an exchange that waited for it (on this loop).
    func throttleGranted(_ exchange: Exchange, _ throttle: Throttle) {
        guard self.exchange === exchange, exchange.throttleTicket != nil else {
            // The exchange ended meanwhile: the slot it was handed goes on.
            throttle.release()
            return
        }
        exchange.throttleTicket = nil
        exchange.queueTimer?.cancel()
        exchange.queueTimer = nil
        exchange.throttlesHeld += 1
        self.passThrottles(exchange)
    }

    private func queueTimedOut(_ exchange: Exchange) {
        exchange.queueTimer = nil
        guard self.exchange === exchange, let ticket = exchange.throttleTicket else { return }
        let throttle = exchange.throttles[exchange.throttlesHeld]
        // Granted just now: the grant is on its way to this loop, and forwards the request.
        guard throttle.cancel(ticket: ticket) else { return }
        exchange.throttleTicket = nil
        self.throttled(
            exchange,
            why: "\(throttle.scope) has \(throttle.maxInFlight) requests in flight; this one waited "
                + "\(DurationText.format(throttle.queueTimeout)) for a slot (maxInFlight, queueTimeout)")
    }

    /// Answers 503 `throttled` with `Retry-After: 1`.
    private func throttled(_ exchange: Exchange, why: String) {
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "throttled")
        let ending = self.machine.exchangeFailed(now: self.now)
        var answer = ProxyErrorResponse(
            status: .serviceUnavailable, code: "throttled", message: why, route: exchange.route?.id, retryAfter: 1,
            accept: exchange.accept)
        answer.extraFields = exchange.responseFields ?? ""
        self.finish(exchange, reusable: false)
        if case .closeNow = ending {
            self.perform(ending)
            return
        }
        self.respond(answer, requestID: exchange.requestID, ending: ending, isHEAD: exchange.isHEAD)
    }

    /// The proxy's answer to an exchange's request, in the media type its `Accept` prefers, with the route's rate-limit
    /// fields.
    func decorated(_ answer: ProxyErrorResponse, for exchange: Exchange) -> ProxyErrorResponse {
        var answer = answer
        answer.accept = exchange.accept
        if let fields = exchange.responseFields { answer.extraFields += fields }
        return answer
    }

    /// Lets go of the throttle slots an ending exchange holds, and of its place in a queue.
    func releaseThrottles(_ exchange: Exchange) {
        exchange.queueTimer?.cancel()
        exchange.queueTimer = nil
        if let ticket = exchange.throttleTicket {
            exchange.throttleTicket = nil
            // Already granted: the grant finds the exchange ended and passes the slot on.
            _ = exchange.throttles[exchange.throttlesHeld].cancel(ticket: ticket)
        }
        for index in 0..<exchange.throttlesHeld { exchange.throttles[index].release() }
        exchange.throttlesHeld = 0
    }
}
