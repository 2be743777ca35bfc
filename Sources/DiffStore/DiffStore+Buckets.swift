public import Foundation
import GRDB

/// A route's shadow counters in one minute: what `strangler report` draws as the match rate over time.
public struct TimeBucket: Sendable, Equatable {
    public var route: String
    /// The minute's first second.
    public var start: Date
    public var counts: RouteCounts

    public init(route: String, start: Date, counts: RouteCounts) {
        self.route = route
        self.start = start
        self.counts = counts
    }
}

extension DiffStore {
    /// Width of a time bucket, in seconds.
    public static let bucketSeconds = 60
    /// Buckets older than this (14 days of minutes) are deleted as new batches arrive: the table stays bounded
    /// (20,160 rows a route at most).
    public static let bucketRetention: Double = 14 * 24 * 3600

    /// Per route and minute: the counters of the batches applied in that minute (by the batch's time). Counters of
    /// batches applied before this migration are in `route_counters` only.
    static func migrateBuckets(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE route_buckets (
                    route TEXT NOT NULL, start INTEGER NOT NULL,
                    compared INTEGER NOT NULL DEFAULT 0, matched INTEGER NOT NULL DEFAULT 0,
                        mismatched INTEGER NOT NULL DEFAULT 0,
                    shadow_errors INTEGER NOT NULL DEFAULT 0, timeouts INTEGER NOT NULL DEFAULT 0,
                        dropped INTEGER NOT NULL DEFAULT 0,
                    skipped INTEGER NOT NULL DEFAULT 0, noise_checks INTEGER NOT NULL DEFAULT 0,
                        stale INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (route, start));
                CREATE INDEX route_buckets_by_start ON route_buckets (start);
                """)
    }

    /// The first second of the minute bucket `time` (seconds since 1970) falls in.
    public static func minute(of time: Double) -> Int {
        Int((time / Double(Self.bucketSeconds)).rounded(.down)) * Self.bucketSeconds
    }

    /// Adds a batch's counters to its minute's buckets (inside `apply`'s transaction) and drops expired buckets.
    static func addBuckets(_ batch: DiffBatch, _ db: Database) throws {
        let start = Self.minute(of: batch.time)
        let sql = Self.addCountersSQL(table: "route_buckets", keys: ["route", "start"])
        for (route, counts) in batch.counts {
            try db.execute(
                sql: sql,
                arguments: StatementArguments(
                    [route as any DatabaseValueConvertible, start]
                        + RouteCounts.counters.map { counts[keyPath: $0.keyPath] }))
        }
        try db.execute(
            sql: "DELETE FROM route_buckets WHERE start < ?", arguments: [Int(batch.time - Self.bucketRetention)])
    }

    /// The minute buckets of a route (or every route), oldest first; only those starting at or after `since` when
    /// given.
    ///
    /// ```swift
    /// let minutes = try store.buckets(route: "contacts.get", since: Date().addingTimeInterval(-3600))
    /// minutes.map { Double($0.counts.matched) / Double($0.counts.compared) }   // the match rate, minute by minute
    /// ```
    public func buckets(route: String? = nil, since: Date? = nil) throws -> [TimeBucket] {
        try self.database.read { db in
            // A bucket counts when its minute overlaps the window.
            let filter = SQLFilter(route: route)
                .and("start > ?", since.map { $0.timeIntervalSince1970 - Double(Self.bucketSeconds) })
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM route_buckets" + filter.clause + " ORDER BY route, start",
                arguments: filter.arguments)
            return rows.map { row in
                let counts = RouteCounts { row[$0.column] }
                let start: Int = row["start"]
                return TimeBucket(
                    route: row["route"], start: Date(timeIntervalSince1970: Double(start)), counts: counts)
            }
        }
    }
}

extension DiffStore {
    /// Replaces every minute bucket with `buckets` (`strangler store export`: the buckets as the shared store kept
    /// them, not the minute of the export).
    public func replaceBuckets(with buckets: [TimeBucket]) throws {
        let sql = Self.addCountersSQL(table: "route_buckets", keys: ["route", "start"])
        try self.database.write { db in
            try db.execute(sql: "DELETE FROM route_buckets")
            for bucket in buckets {
                try db.execute(
                    sql: sql,
                    arguments: StatementArguments(
                        [bucket.route as any DatabaseValueConvertible, Int(bucket.start.timeIntervalSince1970)]
                            + RouteCounts.counters.map { bucket.counts[keyPath: $0.keyPath] }))
            }
        }
    }

    /// Every differing pointer's and noise pointer's count, and each route's noise checks (`strangler store export`).
    public func pointerCounts() throws -> DiffBatch {
        try self.database.read { db in
            var batch = DiffBatch()
            for row in try Row.fetchAll(db, sql: "SELECT route, pointer, kind, count FROM pointers") {
                batch.pointers[.init(route: row["route"], pointer: row["pointer"], kind: row["kind"])] = row["count"]
            }
            for row in try Row.fetchAll(db, sql: "SELECT route, pointer, count FROM noise") {
                batch.noise[.init(route: row["route"], pointer: row["pointer"])] = row["count"]
            }
            return batch
        }
    }

    /// Each route's noise checks.
    public func noiseChecks() throws -> [String: Int] {
        try self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT route, noise_checks FROM route_counters WHERE noise_checks > 0")
                .reduce(into: [:]) { $0[$1["route"]] = $1["noise_checks"] }
        }
    }
}

/// The `WHERE` of a query whose conditions are each optional: `route = ?` for a route, then the others given.
struct SQLFilter {
    private var conditions: [String] = []
    private(set) var arguments: StatementArguments = []

    init(route: String?) {
        self = self.and("route = ?", route)
    }

    /// With `condition` (one `?`, bound to `value`) when `value` is not nil.
    func and(_ condition: String, _ value: (some DatabaseValueConvertible)?) -> SQLFilter {
        guard let value else { return self }
        var filter = self
        filter.conditions.append(condition)
        filter.arguments += [value]
        return filter
    }

    /// ` WHERE a AND b`, or nothing without conditions.
    var clause: String { self.conditions.isEmpty ? "" : " WHERE " + self.conditions.joined(separator: " AND ") }
}
