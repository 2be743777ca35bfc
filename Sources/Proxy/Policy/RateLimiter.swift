import RouteTable
import Synchronization

/// A token bucket as the generic cell rate algorithm keeps it: one number per key, the theoretical arrival time
/// (`tat`) of the next request at the bucket's rate. A request at `now` is admitted while `tat` stays within `burst`
/// emission intervals of `now`; each admitted request moves it one interval on. Exact integer arithmetic in
/// nanoseconds: the same bucket as nginx's `limit_req` with `burst` (nodelay) or Envoy's local rate limit.
///
/// ```swift
/// var bucket = TokenBucket.State()
/// let rule = TokenBucket(rate: RateText(count: 100, period: .seconds(1)), burst: 200)
/// rule.take(&bucket, now: 0).admitted  // true: 199 left
/// ```
struct TokenBucket: Sendable, Equatable {
    /// Nanoseconds per request at the rate (at least 1).
    let interval: Int64
    /// `burst` intervals: how far ahead of `now` the arrival time may run.
    let tolerance: Int64
    let burst: Int

    init(rate: RateText, burst: Int) {
        self.interval = max(1, rate.periodNanoseconds / Int64(rate.count))
        self.burst = max(1, burst)
        let (tolerance, overflow) = self.interval.multipliedReportingOverflow(by: Int64(self.burst))
        self.tolerance = overflow ? .max / 2 : tolerance
    }

    struct State: Sendable, Equatable {
        /// Theoretical arrival time of the next request, in nanoseconds (0: a full bucket).
        var tat: Int64 = 0
    }

    struct Outcome: Sendable, Equatable {
        var admitted: Bool
        /// Requests the bucket admits now, after this one.
        var remaining: Int
        /// Nanoseconds until the next request is admitted (0 when one is now).
        var retryAfter: Int64
        /// Nanoseconds until the bucket is full again.
        var untilFull: Int64
    }

    /// Admits a request at `now` (and counts it) or refuses it (counting nothing).
    func take(_ state: inout State, now: Int64) -> Outcome {
        let start = max(state.tat, now)
        let next = start &+ self.interval
        let ahead = next &- now
        guard ahead <= self.tolerance else {
            let wait = ahead &- self.tolerance
            return Outcome(admitted: false, remaining: 0, retryAfter: wait, untilFull: start &- now)
        }
        state.tat = next
        let remaining = Int((self.tolerance &- ahead) / self.interval)
        return Outcome(
            admitted: true, remaining: remaining,
            retryAfter: remaining > 0 ? 0 : self.interval &- (self.tolerance &- ahead),
            untilFull: ahead)
    }

    /// Gives back a request `take` admitted (another limit refused the same request).
    func refund(_ state: inout State) {
        state.tat &-= self.interval
    }

    /// Whether a state is the same as a full bucket at `now` (it may be forgotten).
    func isFull(_ state: State, now: Int64) -> Bool { state.tat <= now }
}

/// A quota: at most `count` requests in each fixed window of `period`, windows aligned to the Unix epoch (a day's
/// quota resets at midnight UTC), as Kong's rate-limiting windows are.
struct QuotaWindow: Sendable, Equatable {
    let count: Int
    let period: Int64

    init(_ quota: RateText) {
        self.count = quota.count
        self.period = max(1, quota.periodNanoseconds)
    }

    struct State: Sendable, Equatable {
        var window: Int64 = .min
        var used = 0
    }

    struct Outcome: Sendable, Equatable {
        var admitted: Bool
        var remaining: Int
        /// Nanoseconds until the window resets.
        var reset: Int64
    }

    /// Admits a request at `wall` (nanoseconds since the epoch) or refuses it.
    func take(_ state: inout State, wall: Int64) -> Outcome {
        let window = wall >= 0 ? wall / self.period : (wall - self.period + 1) / self.period
        if state.window != window {
            state.window = window
            state.used = 0
        }
        let reset = (window + 1) * self.period - wall
        guard state.used < self.count else { return Outcome(admitted: false, remaining: 0, reset: reset) }
        state.used += 1
        return Outcome(admitted: true, remaining: self.count - state.used, reset: reset)
    }

    func refund(_ state: inout State) {
        if state.used > 0 { state.used -= 1 }
    }

    func isUnused(_ state: State, wall: Int64) -> Bool {
        state.used == 0 || state.window != (wall >= 0 ? wall / self.period : (wall - self.period + 1) / self.period)
    }
}

/// One scope's `"limits"` (a route's, a service's or the table's) with the buckets and quota windows of every key
/// it counts, shared by all event loops. Kept across table changes while the scope's limits stay the same.
final class RateLimiter: Sendable {
    let policy: LimitPolicy
    /// `RateLimit-Policy` names: `burst` and `quota`, after a scope prefix (`service.`, `table.`).
    let rateName: String
    let quotaName: String
    private let bucket: TokenBucket?
    private let quota: QuotaWindow?
    private let entries = Mutex<[String: Entry]>([:])
    /// Keys kept at most: past it, those back at a full budget are forgotten first.
    static let maxKeys = 100_000

    struct Entry: Sendable {
        var bucket = TokenBucket.State()
        var quota = QuotaWindow.State()
    }

    init(policy: LimitPolicy, prefix: String) {
        self.policy = policy
        self.rateName = prefix + "burst"
        self.quotaName = prefix + "quota"
        self.bucket = policy.rate.map { TokenBucket(rate: $0, burst: policy.burst) }
        self.quota = policy.quota.map(QuotaWindow.init)
    }

    /// What one request did to a scope's budgets.
    struct Outcome: Sendable {
        var admitted: Bool
        /// Nanoseconds until a refused request would be admitted.
        var retryAfter: Int64 = 0
        var rate: TokenBucket.Outcome?
        var quota: QuotaWindow.Outcome?
    }

    /// Counts a request of `key` at `now` (monotonic nanoseconds, for the bucket) and `wall` (since the epoch, for the
    /// quota's windows); a request refused by either is counted by neither.
    func take(key: String, now: Int64, wall: Int64) -> Outcome {
        self.entries.withLock { entries in
            if entries.count >= Self.maxKeys, entries[key] == nil { self.forgetIdle(&entries, now: now, wall: wall) }
            var entry = entries[key] ?? Entry()
            var outcome = Outcome(admitted: true)
            if let bucket = self.bucket {
                let rate = bucket.take(&entry.bucket, now: now)
                outcome.rate = rate
                if !rate.admitted {
                    outcome.admitted = false
                    outcome.retryAfter = rate.retryAfter
                }
            }
            if let quota = self.quota {
                if outcome.admitted {
                    let result = quota.take(&entry.quota, wall: wall)
                    outcome.quota = result
                    if !result.admitted {
                        outcome.admitted = false
                        outcome.retryAfter = result.reset
                        if let bucket = self.bucket { bucket.refund(&entry.bucket) }
                    }
                } else {
                    var peek = entry.quota
                    outcome.quota = quota.take(&peek, wall: wall)
                    if let result = outcome.quota, result.admitted { outcome.quota?.remaining += 1 }
                    outcome.quota?.admitted = false
                }
            }
            entries[key] = entry
            return outcome
        }
    }

    /// Gives back what `take` counted for `key` (a later scope refused the request).
    func refund(key: String) {
        self.entries.withLock { entries in
            guard var entry = entries[key] else { return }
            self.bucket?.refund(&entry.bucket)
            self.quota?.refund(&entry.quota)
            entries[key] = entry
        }
    }

    /// Keys tracked now (for tests and the admin API).
    var keyCount: Int { self.entries.withLock { $0.count } }

    private func forgetIdle(_ entries: inout [String: Entry], now: Int64, wall: Int64) {
        let bucket = self.bucket
        let quota = self.quota
        entries = entries.filter { _, entry in
            !((bucket?.isFull(entry.bucket, now: now) ?? true) && (quota?.isUnused(entry.quota, wall: wall) ?? true))
        }
        // Everyone still counting: the oldest budgets cannot be told apart cheaply; a quarter goes.
        if entries.count >= Self.maxKeys {
            for key in entries.keys.prefix(Self.maxKeys / 4) { entries.removeValue(forKey: key) }
        }
    }
}
