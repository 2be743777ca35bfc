import HTTP1
import RouteTable
import Synchronization
import Testing

@testable import Proxy

/// The gateway's counting with a test clock (nanoseconds given by the test): the token bucket, the quota's fixed
/// windows, a limiter with both, and the throttle's queue.
@Suite("Gateway: bucket, quota and throttle arithmetic")
struct RateLimitArithmeticTests {
    static let second: Int64 = 1_000_000_000

    @Test func aBucketAdmitsItsBurstThenOneRequestPerInterval() {
        let bucket = TokenBucket(rate: RateText(count: 10, period: .seconds(1)), burst: 3)
        var state = TokenBucket.State()
        let start: Int64 = 50 * Self.second
        let burst = (0..<3).map { _ in bucket.take(&state, now: start) }
        #expect(burst.map(\.admitted) == [true, true, true])
        #expect(burst.map(\.remaining) == [2, 1, 0])
        let refused = bucket.take(&state, now: start)
        #expect(!refused.admitted)
        #expect(refused.retryAfter == Self.second / 10, "one interval of 100 ms until the next token")
        // A refused request costs nothing: 99 ms later it is still refused, at 100 ms it passes.
        #expect(!bucket.take(&state, now: start + 99_000_000).admitted)
        #expect(bucket.take(&state, now: start + 100_000_000).admitted)
        #expect(!bucket.take(&state, now: start + 100_000_000).admitted)
        // After a quiet spell the bucket is full again, never fuller.
        let later = start + 60 * Self.second
        #expect((0..<3).allSatisfy { _ in bucket.take(&state, now: later).admitted })
        #expect(!bucket.take(&state, now: later).admitted)
    }

    @Test func aBucketAdmitsItsRateOverALongRun() {
        // 100/s with a burst of 1, offered 200/s for 10 s: 100 a second (the first request of the run included).
        let bucket = TokenBucket(rate: RateText(count: 100, period: .seconds(1)), burst: 1)
        var state = TokenBucket.State()
        var admitted = 0
        for step in 0..<2000 where bucket.take(&state, now: Int64(step) * 5_000_000).admitted { admitted += 1 }
        #expect(admitted == 1000)
    }

    @Test func aRefundGivesTheRequestBack() {
        let bucket = TokenBucket(rate: RateText(count: 1, period: .seconds(1)), burst: 1)
        var state = TokenBucket.State()
        #expect(bucket.take(&state, now: Self.second).admitted)
        #expect(!bucket.take(&state, now: Self.second).admitted)
        bucket.refund(&state)
        #expect(bucket.take(&state, now: Self.second).admitted)
    }

    @Test func aQuotaCountsInFixedWindowsAlignedToTheEpoch() {
        let quota = QuotaWindow(RateText(count: 2, period: .seconds(86_400)))
        var state = QuotaWindow.State()
        let day = 86_400 * Self.second
        let noon = 20_000 * day + day / 2
        let first = quota.take(&state, wall: noon)
        #expect(first.admitted && first.remaining == 1)
        #expect(first.reset == day / 2, "the window ends at midnight UTC")
        #expect(quota.take(&state, wall: noon + 1).admitted)
        let refused = quota.take(&state, wall: noon + 2)
        #expect(!refused.admitted && refused.remaining == 0)
        // A new day, a new window.
        let next = quota.take(&state, wall: 20_001 * day)
        #expect(next.admitted && next.remaining == 1 && next.reset == day)
    }

    @Test func aLimiterKeepsABudgetPerKeyAndCountsNeitherWhenOneRefuses() {
        let limiter = RateLimiter(
            policy: LimitPolicy(
                rate: RateText(count: 10, period: .seconds(1)), burst: 2, by: .ip,
                quota: RateText(count: 3, period: .seconds(3600))),
            prefix: "")
        let now: Int64 = 10 * Self.second
        let wall: Int64 = 1_800_000_000 * Self.second
        #expect(limiter.take(key: "a", now: now, wall: wall).admitted)
        #expect(limiter.take(key: "a", now: now, wall: wall).admitted)
        let refusedByBucket = limiter.take(key: "a", now: now, wall: wall)
        #expect(!refusedByBucket.admitted)
        #expect(refusedByBucket.quota?.remaining == 1, "the quota still has the one the bucket refused")
        #expect(limiter.take(key: "b", now: now, wall: wall).admitted, "another key has its own budget")
        // The bucket refills; the quota's third request passes, the fourth is refused by the quota.
        let refill = now + Self.second
        #expect(limiter.take(key: "a", now: refill, wall: wall).admitted)
        let refusedByQuota = limiter.take(key: "a", now: refill + Self.second, wall: wall)
        #expect(!refusedByQuota.admitted)
        #expect(refusedByQuota.retryAfter > 0 && refusedByQuota.retryAfter <= 3600 * Self.second)
        // The quota's refusal gave the bucket's token back.
        #expect(refusedByQuota.rate?.admitted == true)
        #expect(limiter.take(key: "b", now: refill, wall: wall).admitted)
    }

    @Test func rateTextsReadCountsPerUnitOrDuration() {
        #expect(RateText.parse("100/s") == RateText(count: 100, period: .seconds(1)))
        #expect(RateText.parse("10000/1d") == RateText(count: 10000, period: .seconds(86_400)))
        #expect(RateText.parse("50/10s") == RateText(count: 50, period: .seconds(10)))
        #expect(RateText.parse("5/m")?.windowSeconds == 60)
        #expect(RateText.parse("5/500ms")?.windowSeconds == 1)
        for bad in ["", "100", "/s", "0/s", "-1/s", "+1/s", "1.5/s", "100/x", "100/s/s", "100/0s", "2000000000/s"] {
            #expect(RateText.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func aThrottleHandsAFreedSlotToTheFirstInItsQueue() {
        let throttle = Throttle(maxInFlight: 1, maxQueued: 2, queueTimeout: .seconds(1), scope: "route r")
        #expect(throttle.tryAcquire())
        #expect(!throttle.tryAcquire())
        let granted = Granted()
        guard case .waiting(let first) = throttle.enqueue(grant: { granted.add("first") }),
            case .waiting(let second) = throttle.enqueue(grant: { granted.add("second") })
        else {
            Issue.record("both should wait")
            return
        }
        guard case .full = throttle.enqueue(grant: { granted.add("third") }) else {
            Issue.record("the queue holds two")
            return
        }
        #expect(throttle.cancel(ticket: second), "still waiting: taken out")
        throttle.release()
        #expect(granted.names == ["first"], "the slot went to the first, not freed")
        #expect(throttle.counts.inFlight == 1)
        #expect(!throttle.cancel(ticket: first), "granted already: cancelling says so")
        throttle.release()
        #expect(throttle.counts.inFlight == 0)
        #expect(throttle.tryAcquire())
    }

    final class Granted: Sendable {
        private let list = Mutex<[String]>([])
        func add(_ name: String) { self.list.withLock { $0.append(name) } }
        var names: [String] { self.list.withLock { $0 } }
    }

    @Test func acceptIsNegotiatedByWeightThenSpecificityThenTheServersOrder() {
        let offered = ProxyErrorResponse.offered
        #expect(MediaNegotiation.choose(offered, accept: nil) == "application/problem+json")
        #expect(MediaNegotiation.choose(offered, accept: "*/*") == "application/problem+json")
        #expect(MediaNegotiation.choose(offered, accept: "application/json") == "application/json")
        #expect(MediaNegotiation.choose(offered, accept: "text/html,application/xhtml+xml,*/*;q=0.8") == "text/html")
        #expect(MediaNegotiation.choose(offered, accept: "text/*;q=0.5, text/plain") == "text/plain")
        #expect(MediaNegotiation.choose(offered, accept: "application/*;q=0.2, text/plain;q=0.1") != "text/plain")
        #expect(
            MediaNegotiation.choose(offered, accept: "*/*;q=0.1, application/problem+json;q=0") == "application/json")
        #expect(MediaNegotiation.choose(offered, accept: "image/png") == nil)
        #expect(
            MediaNegotiation.choose(offered, accept: "text/html;q=2, text/plain;q=abc") == "application/problem+json")
        #expect(MediaNegotiation.choose(["application/json"], accept: "application/json;q=0") == nil)
        #expect(MediaNegotiation.quality(of: "text/html", in: MediaNegotiation.parse("text/*;q=0.3, */*;q=0.9")) == 0.3)
    }
}
