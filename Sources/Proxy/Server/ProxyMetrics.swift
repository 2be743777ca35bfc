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
/// - `strangler_rejected_requests_total`: requests refused before routing (malformed, too large, a client's internal
///   header, a non-canonical path in strict mode);
/// - `strangler_client_timeouts_total{kind}`: requests cut because their head (`head`) or body (`body`) came too
///   slowly;
/// - `strangler_shadows_not_compared_total{route, reason}`: shadows not compared, by reason (`too-large`, `upgrade`,
///   `unanswered`, `early-answer`, `in-flight`, `overflow`, `unhealthy`; `SkipReason`);
/// - `strangler_open_connections{listener}` and `strangler_refused_connections_total{listener}`: client connections
///   open and refused over the cap, for the data plane (`proxy`) and the admin API (`admin`).
///
/// Metric handles are cached per event loop and label set, so the hot path does one lock-free dictionary
/// lookup, not a registry one.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let rejectedCounter: Metrics.Counter
    private let headTimeouts: Metrics.Counter
    private let bodyTimeouts: Metrics.Counter

    /// The counters of shadows not compared, by route and reason (off the hot path: a shadow not compared is rare,
    /// and a lock here costs less than the work it did not do).
    private let notCompared = NIOLockedValueBox<[String: Metrics.Counter]>([:])

    /// Counts a shadow not compared (`strangler_shadows_not_compared_total{route, reason}`).
    public func shadowNotCompared(route: String, reason: String) {
        let counter = self.notCompared.withLockedValue { counters in
            let key = route + "\u{0}" + reason
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(
                label: "strangler_shadows_not_compared_total", dimensions: [("route", route), ("reason", reason)],
                factory: self.factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(30),
        ]
        self.registry = registry
        self.factory = factory
        self.rejectedCounter = Metrics.Counter(
            label: "strangler_rejected_requests_total", dimensions: [], factory: factory)
        self.headTimeouts = Metrics.Counter(
            label: "strangler_client_timeouts_total", dimensions: [("kind", "head")], factory: factory)
        self.bodyTimeouts = Metrics.Counter(
            label: "strangler_client_timeouts_total", dimensions: [("kind", "body")], factory: factory)
    }

    /// The label set of an answered request. Hashing skips the strings' contents (route ids are few);
    /// equality compares them in full.
    struct Key: Hashable {
        var route: String
        var stage: Stage?
        var upstream: Upstream
        var statusClass: UInt

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.route.utf8.count)
            hasher.combine(self.upstream.port)
            hasher.combine(self.statusClass)
        }
    }

    /// The counter and latency timer of one label set (the registry returns the same series for the same labels).
    final class Handles {
        let requests: Metrics.Counter
        let latency: Metrics.Timer

        init(requests: Metrics.Counter, latency: Metrics.Timer) {
            self.requests = requests
            self.latency = latency
        }
    }

    func makeHandles(_ key: Key) -> Handles {
        let stage = key.stage?.rawValue ?? "transform"
        return Handles(
            requests: Metrics.Counter(
                label: "strangler_requests_total",
                dimensions: [
                    ("route", key.route), ("stage", stage), ("upstream", key.upstream.url),
                    ("status", "\(key.statusClass)xx"),
                ],
                factory: self.factory),
            latency: Metrics.Timer(
                label: "strangler_request_duration_seconds", dimensions: [("route", key.route), ("stage", stage)],
                factory: self.factory))
    }

    func upstreamError(route: Route?, upstream: Upstream, kind: String) {
        Counter(
            label: "strangler_upstream_errors_total",
            dimensions: [("route", route?.id ?? "unmatched"), ("upstream", upstream.url), ("kind", kind)],
            factory: self.factory
        ).increment()
    }

    /// An instance was ejected (passive outlier detection) for `length`.
    func instanceEjected(_ upstream: Upstream, for length: Duration) {
        Counter(
            label: "strangler_upstream_ejections_total", dimensions: [("upstream", upstream.url)],
            factory: self.factory
        ).increment()
    }

    /// An instance's active health checks turned it healthy or unhealthy.
    func healthChanged(_ upstream: Upstream, healthy: Bool) {
        Counter(
            label: "strangler_upstream_health_transitions_total",
            dimensions: [("upstream", upstream.url), ("to", healthy ? "healthy" : "unhealthy")], factory: self.factory
        ).increment()
    }

    func rejected() {
        self.rejectedCounter.increment()
    }

    /// A request cut because its head (`body: false`) or its body came too slowly.
    func clientTimedOut(body: Bool) {
        (body ? self.bodyTimeouts : self.headTimeouts).increment()
    }

    /// The gauge of open connections and the counter of refused ones of a listener (`proxy`, `admin`).
    func connectionMetrics(listener: String) -> (open: Metrics.Meter, refused: Metrics.Counter) {
        (
            Metrics.Meter(
                label: "strangler_open_connections", dimensions: [("listener", listener)], factory: self.factory),
            Metrics.Counter(
                label: "strangler_refused_connections_total", dimensions: [("listener", listener)],
                factory: self.factory)
        )
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        var bytes: [UInt8] = []
        self.registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
