import Atomics
import NIOConcurrencyHelpers

/// What the proxy saw of one route and side, as running totals: answers, 5xx answers, and a latency histogram, for
/// the live dashboard (requests per second, error rate, p50/p99 per side) without reading the Prometheus registry.
/// Written on the data plane with relaxed atomic adds (one cell per route and side, found through the metric handles
/// the hot path already holds); read by whoever samples it, as a ``Totals`` value.
public final class TrafficCell: Sendable {
    /// The buckets' upper bounds, in nanoseconds: 100 µs to 30 s, about ×1.5 each, then +∞.
    public static let bounds: [Int64] = [
        100_000, 150_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000,
        7_500_000, 10_000_000, 15_000_000, 20_000_000, 30_000_000, 50_000_000, 75_000_000, 100_000_000, 150_000_000,
        200_000_000, 300_000_000, 500_000_000, 750_000_000, 1_000_000_000, 1_500_000_000, 2_000_000_000,
        3_000_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
    ]

    private let answers = ManagedAtomic<Int>(0)
    private let errors = ManagedAtomic<Int>(0)
    private let buckets: [ManagedAtomic<Int>] = (0...TrafficCell.bounds.count).map { _ in ManagedAtomic(0) }

    init() {}

    /// One answer of `status` (0: none, the upstream failed) after `nanoseconds`.
    func record(status: UInt, nanoseconds: Int64) {
        self.answers.wrappingIncrement(ordering: .relaxed)
        if status >= 500 || status == 0 { self.errors.wrappingIncrement(ordering: .relaxed) }
        var low = 0
        var high = Self.bounds.count
        while low < high {
            let middle = (low + high) / 2
            if Self.bounds[middle] < nanoseconds { low = middle + 1 } else { high = middle }
        }
        self.buckets[low].wrappingIncrement(ordering: .relaxed)
    }

    /// The running totals, read now.
    public var totals: Totals {
        Totals(
            answers: self.answers.load(ordering: .relaxed), errors: self.errors.load(ordering: .relaxed),
            buckets: self.buckets.map { $0.load(ordering: .relaxed) })
    }

    /// Running totals (or, subtracted, what happened between two readings).
    public struct Totals: Sendable, Equatable {
        public var answers = 0
        public var errors = 0
        public var buckets: [Int] = Array(repeating: 0, count: TrafficCell.bounds.count + 1)

        public init() {}

        init(answers: Int, errors: Int, buckets: [Int]) {
            self.answers = answers
            self.errors = errors
            self.buckets = buckets
        }

        /// What happened since `earlier`.
        public func since(_ earlier: Totals) -> Totals {
            Totals(
                answers: self.answers - earlier.answers, errors: self.errors - earlier.errors,
                buckets: zip(self.buckets, earlier.buckets).map { $0 - $1 })
        }

        /// The latency under which `share` (0.5, 0.99) of the answers came, in seconds: the upper bound of the bucket
        /// where that share is reached (nil with no answer; the last finite bound for the +∞ bucket).
        public func quantile(_ share: Double) -> Double? {
            let total = self.buckets.reduce(0, +)
            guard total > 0 else { return nil }
            let wanted = max(1, Int((Double(total) * share).rounded(.up)))
            var seen = 0
            for (index, count) in self.buckets.enumerated() {
                seen += count
                if seen >= wanted {
                    let bound = TrafficCell.bounds[min(index, TrafficCell.bounds.count - 1)]
                    return Double(bound) / 1_000_000_000
                }
            }
            return nil
        }
    }
}

/// Every route's cells, by route id and side (`monolith`, `service`) and whether the answer was the shadow's.
public final class RouteTraffic: Sendable {
    public struct Key: Hashable, Sendable {
        public var route: String
        /// `monolith` or `service`.
        public var side: String
        public var shadow: Bool

        public init(route: String, side: String, shadow: Bool) {
            self.route = route
            self.side = side
            self.shadow = shadow
        }
    }

    private let cells = NIOLockedValueBox<[Key: TrafficCell]>([:])

    public init() {}

    /// The cell of `key`, made on first use (the hot path keeps it in its metric handles).
    func cell(_ key: Key) -> TrafficCell {
        self.cells.withLockedValue { cells in
            if let cell = cells[key] { return cell }
            let cell = TrafficCell()
            cells[key] = cell
            return cell
        }
    }

    /// Every cell's totals, now.
    public func snapshot() -> [Key: TrafficCell.Totals] {
        let cells = self.cells.withLockedValue { $0 }
        return cells.mapValues(\.totals)
    }
}
