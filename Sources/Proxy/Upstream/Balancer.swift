import NIOCore
import NIOSSL
import RouteTable
import Synchronization

/// What the proxy observes of one instance, shared by every event loop and kept across table reloads for as long as
/// the instance stays in the table (YARP's destination state, apart from its configuration).
final class InstanceState: Sendable {
    let upstream: Upstream
    /// Requests being answered by it (connecting, sent, or relaying its answer).
    let inFlight = Atomic<Int>(0)
    /// Connections open to it, idle ones included.
    let openConnections = Atomic<Int>(0)
    /// Requests waiting for a connection to it.
    let pending = Atomic<Int>(0)
    /// The active checks' verdict (true until checks say otherwise).
    let healthy = Atomic<Bool>(true)
    /// Until when it is ejected, in `NIODeadline` uptime nanoseconds; 0: not ejected.
    let ejectedUntil = Atomic<UInt64>(0)
    /// Failures in a row (connect failures, resets, timeouts, 5xx), for ejection.
    let consecutiveFailures = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let ejections = Atomic<Int>(0)
    let healthTransitions = Atomic<Int>(0)
    /// Why it was last ejected or found unhealthy, and the ejection back-off's multiplier.
    let record = Mutex<Record>(Record())

    struct Record {
        var ejectedWhy: String?
        var multiplier = 0
        /// When the last ejection ended (uptime nanoseconds), for the back-off's decay.
        var lastEjectionEnd: UInt64 = 0
        var unhealthyWhy: String?
        var passes = 0
        var failures = 0
        var lastCheck: String?
    }

    init(upstream: Upstream) {
        self.upstream = upstream
    }

    func isAvailable(now: UInt64) -> Bool {
        self.healthy.load(ordering: .relaxed) && self.ejectedUntil.load(ordering: .relaxed) <= now
    }
}

/// One group's instances as the data plane uses them: where each is, how to speak TLS to it, its observed state, and
/// the choice of an instance per request (round-robin, or least-requests by power of two choices). Made with each
/// table snapshot; the states outlive it.
final class Balancer: Sendable {
    /// `monolith`, or `service NAME` (for messages).
    let name: String
    let group: UpstreamGroup
    let instances: [InstanceState]
    let addresses: [SocketAddress]
    /// For `https://` instances; nil for plain ones.
    let tlsContexts: [NIOSSLContext?]
    /// One instance and nothing to watch: every request goes to it with no choice made.
    let isSingle: Bool
    let maxEjected: Int
    /// `maxConnections` or `maxPending` is set: connections are obtained within them.
    let hasLimits: Bool
    private let turn = Atomic<Int>(0)
    /// The retry budget, in thousandths of a retry: every request adds `retryBudget` of one, a retry takes one
    /// (Linkerd's retry budget). It starts with, and never holds more than, `Self.retryBurst` retries.
    let retryTokens = Atomic<Int>(Balancer.retryBurst * 1000)
    /// Thousandths of a retry each request adds.
    private let retryDeposit: Int
    /// The most retries saved up: a burst when an instance dies with requests in flight.
    static let retryBurst = 50
    /// Serializes ejections, so that `maxPercent` holds when several loops eject at once.
    private let ejecting = Mutex<Void>(())

    init(
        name: String, group: UpstreamGroup, instances: [InstanceState], addresses: [SocketAddress],
        tlsContexts: [NIOSSLContext?]
    ) {
        self.name = name
        self.group = group
        self.instances = instances
        self.addresses = addresses
        self.tlsContexts = tlsContexts
        self.isSingle = group.isSingle
        self.maxEjected = group.maxEjected
        self.hasLimits = group.maxConnections != nil || group.maxPending != nil
        self.retryDeposit = Int((group.retryBudget * 1000).rounded())
    }

    /// The instance for a request, or nil when none can take it now. `avoiding` is one not to choose (a retry's first
    /// instance); nil when it is the only one available.
    func pick(now: NIODeadline, avoiding: Int? = nil, random: inout IDGenerator) -> Int? {
        if self.isSingle { return avoiding == 0 ? nil : 0 }
        let count = self.instances.count
        let time = now.uptimeNanoseconds
        func usable(_ index: Int) -> Bool { index != avoiding && self.instances[index].isAvailable(now: time) }
        switch self.group.balance {
        case .roundRobin:
            let start = Int(UInt(bitPattern: self.turn.wrappingAdd(1, ordering: .relaxed).oldValue) % UInt(count))
            for step in 0..<count {
                let index = (start + step) % count
                if usable(index) { return index }
            }
            return nil
        case .leastRequests:
            guard count > 1 else { return usable(0) ? 0 : nil }
            let draw = random.next()
            let first = Int(draw % UInt64(count))
            var second = Int((draw >> 32) % UInt64(count - 1))
            if second >= first { second += 1 }
            switch (usable(first), usable(second)) {
            case (true, true):
                let a = self.instances[first].inFlight.load(ordering: .relaxed)
                let b = self.instances[second].inFlight.load(ordering: .relaxed)
                return b < a ? second : first
            case (true, false): return first
            case (false, true): return second
            case (false, false):
                for step in 1..<count {
                    let index = (first + step) % count
                    if usable(index) { return index }
                }
                return nil
            }
        }
    }

    /// Seconds a client should wait before trying again when no instance is available: until the first ejection
    /// ends, or one health-check interval (at least 1).
    func retryAfter(now: NIODeadline) -> Int {
        let time = now.uptimeNanoseconds
        var soonest = UInt64.max
        for state in self.instances {
            let until = state.ejectedUntil.load(ordering: .relaxed)
            if until > time, state.healthy.load(ordering: .relaxed) { soonest = min(soonest, until - time) }
        }
        if soonest == .max, let health = self.group.health {
            soonest = UInt64(TimeAmount(health.interval).nanoseconds)
        }
        guard soonest != .max else { return 1 }
        return max(1, Int((soonest + 999_999_999) / 1_000_000_000))
    }

    /// Why no instance is available (for the 503's message).
    func unavailableReason(now: NIODeadline) -> String {
        let time = now.uptimeNanoseconds
        let unhealthy = self.instances.filter { !$0.healthy.load(ordering: .relaxed) }.count
        let ejected = self.instances.filter { $0.ejectedUntil.load(ordering: .relaxed) > time }.count
        let count = self.instances.count
        switch (unhealthy, ejected) {
        case (count, _): return count == 1 ? "is unhealthy" : "has no healthy instance (\(count) of \(count) unhealthy)"
        case (_, 0): return "has no instance left to retry on"
        default: return "has no available instance (\(unhealthy) unhealthy, \(ejected) ejected, of \(count))"
        }
    }

    /// A request to the group started: it adds its share to the retry budget (groups of one instance never retry
    /// elsewhere, and keep no budget).
    func requestStarted() {
        guard self.instances.count > 1, self.retryDeposit > 0 else { return }
        let cap = Self.retryBurst * 1000
        if self.retryTokens.load(ordering: .relaxed) < cap {
            self.retryTokens.wrappingAdd(self.retryDeposit, ordering: .relaxed)
        }
    }

    /// Whether a retry fits the budget (retries at most `retryBudget` of the requests, with a saved-up burst); takes
    /// its share when it does.
    func claimRetry() -> Bool {
        let left = self.retryTokens.wrappingSubtract(1000, ordering: .relaxed).newValue
        guard left >= 0 else {
            self.retryTokens.wrappingAdd(1000, ordering: .relaxed)
            return false
        }
        return true
    }

    /// An answer below 500 came from `index`: its run of failures ends.
    func succeeded(_ index: Int) {
        guard self.maxEjected > 0 else { return }
        let state = self.instances[index]
        if state.consecutiveFailures.load(ordering: .relaxed) != 0 {
            state.consecutiveFailures.store(0, ordering: .relaxed)
        }
    }

    /// `index` failed (`why`: a connect failure, a reset, a timeout, a 5xx); returns the ejection's length when this
    /// failure ejects it.
    @discardableResult
    func failed(_ index: Int, why: String, now: NIODeadline) -> Duration? {
        guard self.maxEjected > 0, let ejection = self.group.ejection else { return nil }
        let state = self.instances[index]
        let failures = state.consecutiveFailures.wrappingAdd(1, ordering: .relaxed).newValue
        guard failures >= ejection.consecutive else { return nil }
        let time = now.uptimeNanoseconds
        return self.ejecting.withLock { _ -> Duration? in
            guard state.ejectedUntil.load(ordering: .relaxed) <= time else { return nil }
            let ejected = self.instances.filter { $0.ejectedUntil.load(ordering: .relaxed) > time }.count
            guard ejected < self.maxEjected else { return nil }
            let length = state.record.withLock { record -> Duration in
                // The back-off decays: one step per `base` the instance has served since its last ejection ended.
                let base = UInt64(TimeAmount(ejection.base).nanoseconds)
                if record.lastEjectionEnd > 0, time > record.lastEjectionEnd {
                    record.multiplier = max(0, record.multiplier - Int((time - record.lastEjectionEnd) / max(base, 1)))
                }
                let factor = 1 << min(record.multiplier, 30)
                let length = min(ejection.base * factor, ejection.max)
                record.multiplier += 1
                record.ejectedWhy = "\(failures) failures in a row, the last: \(why)"
                record.lastEjectionEnd = time + UInt64(TimeAmount(length).nanoseconds)
                return length
            }
            state.consecutiveFailures.store(0, ordering: .relaxed)
            state.ejectedUntil.store(time + UInt64(TimeAmount(length).nanoseconds), ordering: .relaxed)
            state.ejections.wrappingAdd(1, ordering: .relaxed)
            return length
        }
    }
}
