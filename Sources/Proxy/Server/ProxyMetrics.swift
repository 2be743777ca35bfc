import CoreMetrics
import Foundation
import Metrics
import NIOConcurrencyHelpers
import NIOCore
public import Prometheus
public import RouteTable

/// The proxy's metrics, through swift-metrics into a Prometheus registry of its own, served as text on
/// the admin port's `/metrics`:
/// - `strangler_requests_total{route, stage, side, upstream, status}`: answered requests, by status class (`2xx`…)
///   and the side that answered (`monolith`, `service`);
/// - `strangler_request_duration_seconds{route, stage, side}`: latency histogram of the answers;
/// - `strangler_shadow_duration_seconds{route, side}`: latency histogram of the shadows' answers (coexist), by the
///   side the shadow went to;
/// - `strangler_upstream_errors_total{route, upstream, kind}`: refused, reset or timed-out upstreams;
/// - `strangler_rejected_requests_total`: requests refused before routing (malformed, too large, a client's internal
///   header, a non-canonical path in strict mode);
/// - `strangler_client_timeouts_total{kind}`: requests cut because their head (`head`) or body (`body`) came too
///   slowly;
/// - `strangler_shadows_not_compared_total{route, reason}`: shadows not compared, by reason (`too-large`, `upgrade`,
///   `unanswered`, `early-answer`, `in-flight`, `overflow`, `unhealthy`; `SkipReason`);
/// - `strangler_shadow_comparisons_total{route, result}`: shadowed pairs compared, `result` `match`, `mismatch` or
///   `stale` (the match rate is `match` over the three);
/// - `strangler_route_info{route, stage, service}`: 1 per route of the live table (its stage now);
/// - `strangler_open_connections{listener}` and `strangler_refused_connections_total{listener}`: client connections
///   open and refused over the cap, for the data plane (`proxy`) and the admin API (`admin`).
///
/// Metric handles are cached per event loop and label set, so the hot path does one lock-free dictionary
/// lookup, not a registry one.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The same answers as running totals per route and side, for the live dashboard.
    public let traffic = RouteTraffic()
    private let factory: PrometheusMetricsFactory
    private let rejectedCounter: Metrics.Counter
    private let headTimeouts: Metrics.Counter
    private let bodyTimeouts: Metrics.Counter

    /// The counters of shadows not compared, by route and reason (off the hot path: a shadow not compared is rare,
    /// and a lock here costs less than the work it did not do).
    private let notCompared = NIOLockedValueBox<[String: Metrics.Counter]>([:])

    private struct ComparisonKey: Hashable {
        var route: String
        var result: String
    }

    private let comparisons = NIOLockedValueBox<[ComparisonKey: Metrics.Counter]>([:])

    /// Counts a comparison (`strangler_shadow_comparisons_total{route, result}`): a lock and a lookup by the two
    /// strings (no string is made), as the recorder's own count of the pair takes.
    public func shadowCompared(route: String, result: String) {
        let counter = self.comparisons.withLockedValue { counters in
            let key = ComparisonKey(route: route, result: result)
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(
                label: "strangler_shadow_comparisons_total", dimensions: [("route", route), ("result", result)],
                factory: self.factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// `strangler_route_info{route, stage, service} 1` for every route of `table` (rendered at each scrape).
    public static func routeInfo(_ table: RouteTable) -> String {
        func label(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        var text =
            "# HELP strangler_route_info The live table's routes, by stage (1 each).\n"
            + "# TYPE strangler_route_info gauge\n"
        for route in table.routes {
            text +=
                "strangler_route_info{route=\"\(label(route.id))\",stage=\"\(route.stage.rawValue)\","
                + "service=\"\(label(route.service ?? ""))\"} 1\n"
        }
        return text
    }

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
        var byMonolith: Bool

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.route.utf8.count)
            hasher.combine(self.byMonolith)
            hasher.combine(self.upstream.port)
            hasher.combine(self.statusClass)
        }
    }

    /// The counter and latency timer of one label set (the registry returns the same series for the same labels).
    final class Handles {
        let requests: Metrics.Counter
        let latency: Metrics.Timer
        let cell: TrafficCell

        init(requests: Metrics.Counter, latency: Metrics.Timer, cell: TrafficCell) {
            self.requests = requests
            self.latency = latency
            self.cell = cell
        }
    }

    func makeHandles(_ key: Key) -> Handles {
        let stage = key.stage?.rawValue ?? "transform"
        let side = key.byMonolith ? "monolith" : "service"
        return Handles(
            requests: Metrics.Counter(
                label: "strangler_requests_total",
                dimensions: [
                    ("route", key.route), ("stage", stage), ("side", side), ("upstream", key.upstream.url),
                    ("status", "\(key.statusClass)xx"),
                ],
                factory: self.factory),
            latency: Metrics.Timer(
                label: "strangler_request_duration_seconds",
                dimensions: [("route", key.route), ("stage", stage), ("side", side)], factory: self.factory),
            cell: self.traffic.cell(RouteTraffic.Key(route: key.route, side: side, shadow: false)))
    }

    /// The shadows' latency timers and cells, by route and side (a lock per shadow: shadows are a share of coexist
    /// traffic, and each costs a request to another upstream).
    private let shadowHandles = NIOLockedValueBox<[RouteTraffic.Key: (Metrics.Timer, TrafficCell)]>([:])

    /// A shadow's answer (`status` 0: it failed or timed out) after `nanoseconds`.
    func shadowCompleted(route: String, side: String, status: UInt, nanoseconds: Int64) {
        let key = RouteTraffic.Key(route: route, side: side, shadow: true)
        let (timer, cell) = self.shadowHandles.withLockedValue { handles in
            if let found = handles[key] { return found }
            let made = (
                Metrics.Timer(
                    label: "strangler_shadow_duration_seconds", dimensions: [("route", route), ("side", side)],
                    factory: self.factory),
                self.traffic.cell(key)
            )
            handles[key] = made
            return made
        }
        if status != 0 { timer.recordNanoseconds(nanoseconds) }
        cell.record(status: status, nanoseconds: nanoseconds)
    }

    /// An exchange the upstream failed (no answer): an error of its route and side in the dashboard's totals.
    func failedExchange(route: String, byMonolith: Bool, nanoseconds: Int64) {
        self.traffic.cell(RouteTraffic.Key(route: route, side: byMonolith ? "monolith" : "service", shadow: false))
            .record(status: 0, nanoseconds: nanoseconds)
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
