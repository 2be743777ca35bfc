import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import NIOCore
public import Prometheus
import RouteTable

/// The proxy's metrics, through swift-metrics into a Prometheus registry of its own, served as text on
/// the admin port's `/metrics`:
/// - `strangler_requests_total{route, stage, upstream, status}`: answered requests, by status class (`2xx`…);
/// - `strangler_request_duration_seconds{route, stage}`: latency histogram;
/// - `strangler_upstream_errors_total{route, upstream, kind}`: refused, reset or timed-out upstreams;
/// - `strangler_rejected_requests_total`: requests refused before routing (malformed, too large).
///
/// Metric handles are cached per label set, so the hot path does one dictionary lookup, not a registry one.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let counters = NIOLockedValueBox<[CounterKey: Metrics.Counter]>([:])
    private let timers = NIOLockedValueBox<[TimerKey: Metrics.Timer]>([:])
    private let rejectedCounter: Metrics.Counter

    struct CounterKey: Hashable {
        var route: String
        var stage: String
        var upstream: String
        var statusClass: Int
    }

    struct TimerKey: Hashable {
        var route: String
        var stage: String
    }

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.registry = registry
        self.factory = factory
        self.rejectedCounter = Metrics.Counter(label: "strangler_rejected_requests_total", dimensions: [], factory: factory)
    }

    func completed(route: Route?, upstream: Upstream, status: UInt, since start: NIODeadline) {
        let routeID = route?.id ?? "unmatched"
        let stage = route?.stage.rawValue ?? "transform"
        let key = CounterKey(route: routeID, stage: stage, upstream: upstream.url, statusClass: Int(status / 100))
        let counter = self.counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "strangler_requests_total",
                dimensions: [("route", routeID), ("stage", stage), ("upstream", upstream.url), ("status", "\(key.statusClass)xx")],
                factory: self.factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timerKey = TimerKey(route: routeID, stage: stage)
        let timer = self.timers.withLockedValue { timers in
            if let timer = timers[timerKey] { return timer }
            let timer = Metrics.Timer(label: "strangler_request_duration_seconds", dimensions: [("route", routeID), ("stage", stage)], factory: self.factory)
            timers[timerKey] = timer
            return timer
        }
        timer.recordNanoseconds((NIODeadline.now() - start).nanoseconds)
    }

    func upstreamError(route: Route?, upstream: Upstream, kind: String) {
        Counter(
            label: "strangler_upstream_errors_total",
            dimensions: [("route", route?.id ?? "unmatched"), ("upstream", upstream.url), ("kind", kind)],
            factory: self.factory
        ).increment()
    }

    func rejected() {
        self.rejectedCounter.increment()
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        var bytes: [UInt8] = []
        self.registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
