public import Diff
public import Foundation
public import GRDB
public import JSON

/// The diff store: what shadow traffic showed, per route, in SQLite (WAL) in the data directory.
///
/// Per route it keeps counters (compared, matched, mismatched, shadow errors, timeouts, dropped, skipped,
/// noise checks), counts per mismatch signature and per differing pointer, at most `maxSamplesPerSignature`
/// samples per signature (the request and both answers, with the diff), and the pointers that differed
/// between two answers of the same side (noise). The proxy never writes here on a request's path: its
/// recorder hands over batches (`apply(_:)`), one transaction each.
///
/// ```swift
/// let store = try DiffStore.open(path: ".strangler/diffs.sqlite")
/// try store.apply(batch)
/// let summary = try store.summary(route: "contacts.get")   // the JSON of GET /admin/diffs
/// ```
public final class DiffStore: Sendable {
    public let database: any DatabaseWriter
    /// Samples kept per (route, signature).
    public let maxSamplesPerSignature: Int
    /// The secret of the keyed hashes that stand for redacted values (`<dir>/redaction.key` beside the file; random
    /// for a store in memory).
    public let redactionKey: [UInt8]

    /// Opens (creating and migrating) the store at `path`, or an in-memory store when `path` is nil.
    public static func open(path: String?, maxSamplesPerSignature: Int = 20) throws -> DiffStore {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // Deleted rows are overwritten, not only unlinked: a purged value does not linger in free pages.
        // In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a crash of the process loses nothing,
        // a power cut at most the last batches (evidence, not the table), and a flush does not wait on the disk.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        if let path {
            // Only the owner reads the data directory, the database, its WAL and SHM, and the key (whatever the umask).
            try Self.ownerOnlyDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
            // Two processes opening a new store at once (the proxy and the CLI, or two CLIs) would both switch it to
            // WAL and both migrate it: one at a time, under an exclusive lock beside the file.
            let lock = Foundation.open(path + ".open-lock", O_RDWR | O_CREAT, 0o600)
            if lock >= 0 {
                while flock(lock, LOCK_EX) != 0, errno == EINTR {}
            }
            defer {
                if lock >= 0 {
                    flock(lock, LOCK_UN)
                    close(lock)
                }
            }
            try Self.ownerOnlyDatabaseFile(path)
            let key = try Self.redactionKey(beside: path)
            return try DiffStore(
                database: DatabasePool(path: path, configuration: configuration),
                maxSamplesPerSignature: maxSamplesPerSignature, redactionKey: key)
        }
        return try DiffStore(
            database: DatabaseQueue(configuration: configuration), maxSamplesPerSignature: maxSamplesPerSignature)
    }

    /// A store on `database` (migrated); `redactionKey` nil makes a random one (a store in memory).
    public init(database: any DatabaseWriter, maxSamplesPerSignature: Int = 20, redactionKey: [UInt8]? = nil) throws {
        try Self.migrator.migrate(database)
        self.database = database
        self.maxSamplesPerSignature = maxSamplesPerSignature
        var generator = SystemRandomNumberGenerator()
        self.redactionKey = redactionKey ?? (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE route_counters (
                        route TEXT PRIMARY KEY NOT NULL,
                        compared INTEGER NOT NULL DEFAULT 0, matched INTEGER NOT NULL DEFAULT 0,
                            mismatched INTEGER NOT NULL DEFAULT 0,
                        shadow_errors INTEGER NOT NULL DEFAULT 0, timeouts INTEGER NOT NULL DEFAULT 0,
                            dropped INTEGER NOT NULL DEFAULT 0,
                        skipped INTEGER NOT NULL DEFAULT 0, noise_checks INTEGER NOT NULL DEFAULT 0,
                        first_seen REAL NOT NULL, last_seen REAL NOT NULL);
                    CREATE TABLE signatures (
                        route TEXT NOT NULL, signature TEXT NOT NULL, text TEXT NOT NULL, count INTEGER NOT NULL,
                        first_seen REAL NOT NULL, last_seen REAL NOT NULL,
                        PRIMARY KEY (route, signature));
                    CREATE TABLE pointers (
                        route TEXT NOT NULL, pointer TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (route, pointer, kind));
                    CREATE TABLE noise (
                        route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (route, pointer));
                    CREATE TABLE samples (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        route TEXT NOT NULL, signature TEXT NOT NULL, recorded_at REAL NOT NULL,
                        request_id TEXT NOT NULL, served_by TEXT NOT NULL,
                        method TEXT NOT NULL, path TEXT NOT NULL, query TEXT,
                        request_headers TEXT NOT NULL, request_body BLOB NOT NULL,
                        monolith_status INTEGER NOT NULL, monolith_headers TEXT NOT NULL, monolith_body BLOB NOT NULL,
                        service_status INTEGER NOT NULL, service_headers TEXT NOT NULL, service_body BLOB NOT NULL,
                        diff TEXT NOT NULL);
                    CREATE INDEX samples_by_signature ON samples (route, signature);
                    CREATE INDEX samples_by_time ON samples (recorded_at);
                    """)
        }
        // Per-route epochs (the counters as they were when the route last changed stage, so that the gates count
        // what happened since) and triage decisions on mismatch signatures.
        migrator.registerMigration("v2-epochs-triage") { db in
            try db.execute(
                sql: """
                    CREATE TABLE route_epochs (
                        route TEXT PRIMARY KEY NOT NULL, stage TEXT NOT NULL, started_at REAL NOT NULL,
                        compared INTEGER NOT NULL, matched INTEGER NOT NULL, mismatched INTEGER NOT NULL);
                    CREATE TABLE epoch_signatures (
                        route TEXT NOT NULL, signature TEXT NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (route, signature));
                    CREATE TABLE triage (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        route TEXT NOT NULL, signature TEXT NOT NULL, decision TEXT NOT NULL,
                        reason TEXT NOT NULL, actor TEXT NOT NULL, decided_at REAL NOT NULL);
                    CREATE INDEX triage_by_signature ON triage (route, signature);
                    """)
        }
        migrator.registerMigration("v3-stale") { db in
            try db.execute(sql: "ALTER TABLE route_counters ADD COLUMN stale INTEGER NOT NULL DEFAULT 0")
        }
        // Per-route minute buckets of the counters: the match rate over time (DiffStore+Buckets.swift).
        migrator.registerMigration("v4-buckets", migrate: Self.migrateBuckets)
        // Per sample, the keyed hashes of its redacted values: erasure by subject (DiffStore+Privacy.swift).
        migrator.registerMigration("v5-sample-subjects", migrate: Self.migrateSubjects)
        // Why shadows were not compared: a counter per reason, in both counter tables.
        migrator.registerMigration("v6-skip-reasons") { db in
            for table in ["route_counters", "route_buckets"] {
                for column in RouteCounts.reasonColumns {
                    try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(column) INTEGER NOT NULL DEFAULT 0")
                }
            }
        }
        // Shadows skipped because no instance of the shadow side was available.
        migrator.registerMigration("v7-unhealthy") { db in
            for table in ["route_counters", "route_buckets"] {
                for column in RouteCounts.healthColumns {
                    try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(column) INTEGER NOT NULL DEFAULT 0")
                }
            }
        }
        // A sample's trace id (the request's traceparent), for following a mismatch to its spans.
        migrator.registerMigration("v8-sample-trace") { db in
            try db.execute(sql: "ALTER TABLE samples ADD COLUMN trace_id TEXT")
        }
        return migrator
    }

    /// `INSERT INTO table (keys…, counters…, extra…) VALUES (?…) ON CONFLICT (keys…) DO UPDATE SET counter =
    /// counter + excluded.counter, …`: one statement for every counter of `RouteCounts`, in its order, its arguments
    /// the keys, the counters, then the extra columns.
    static func addCountersSQL(
        table: String, keys: [String], extra: [String] = [], onConflict: String? = nil
    ) -> String {
        let columns = RouteCounts.counters.map(\.column)
        let names = (keys + columns + extra).joined(separator: ", ")
        let marks = Array(repeating: "?", count: keys.count + columns.count + extra.count).joined(separator: ", ")
        let sums = columns.map { "\($0) = \($0) + excluded.\($0)" } + (onConflict.map { [$0] } ?? [])
        return "INSERT INTO \(table) (\(names)) VALUES (\(marks)) ON CONFLICT (\(keys.joined(separator: ", "))) "
            + "DO UPDATE SET " + sums.joined(separator: ", ")
    }

    // MARK: Writing

    /// Adds a batch in one transaction. Samples beyond `maxSamplesPerSignature` for their signature are not kept.
    public func apply(_ batch: DiffBatch) throws {
        guard !batch.isEmpty else { return }
        let limit = self.maxSamplesPerSignature
        try self.database.write { db in
            for (route, counts) in batch.counts {
                try db.execute(
                    sql: Self.addCountersSQL(
                        table: "route_counters", keys: ["route"], extra: ["first_seen", "last_seen"],
                        onConflict: "last_seen = excluded.last_seen"),
                    arguments: StatementArguments(
                        [route as any DatabaseValueConvertible]
                            + RouteCounts.counters.map { counts[keyPath: $0.keyPath] }
                            + [batch.time, batch.time]))
            }
            try Self.addBuckets(batch, db)
            for (key, count) in batch.signatures {
                try db.execute(
                    sql: """
                        INSERT INTO signatures (route, signature, text, count, first_seen, last_seen) VALUES (?, ?, ?,
                            ?, ?, ?)
                        ON CONFLICT (route, signature) DO UPDATE SET count = count + excluded.count,
                            last_seen = excluded.last_seen
                        """,
                    arguments: [key.route, key.id, key.text, count, batch.time, batch.time])
            }
            for (key, count) in batch.pointers {
                try db.execute(
                    sql: """
                        INSERT INTO pointers (route, pointer, kind, count) VALUES (?, ?, ?, ?)
                        ON CONFLICT (route, pointer, kind) DO UPDATE SET count = count + excluded.count
                        """,
                    arguments: [key.route, key.pointer, key.kind, count])
            }
            for (key, count) in batch.noise {
                try db.execute(
                    sql: """
                        INSERT INTO noise (route, pointer, count) VALUES (?, ?, ?)
                        ON CONFLICT (route, pointer) DO UPDATE SET count = count + excluded.count
                        """,
                    arguments: [key.route, key.pointer, count])
            }
            for sample in batch.samples {
                let kept =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM samples WHERE route = ? AND signature = ?",
                        arguments: [sample.route, sample.signature]) ?? 0
                guard kept < limit else { continue }
                let stored = StoredSample(sample)
                try db.execute(
                    sql: """
                        INSERT INTO samples (route, signature, recorded_at, request_id, served_by, method, path, query,
                            request_headers, request_body,
                            monolith_status, monolith_headers, monolith_body, service_status, service_headers,
                                service_body, diff, trace_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        stored.route, stored.signature, stored.recordedAt, stored.requestID, stored.servedBy,
                        stored.method, stored.path, stored.query, stored.requestHeaders, stored.requestBody,
                        stored.monolith.status, stored.monolith.headers, stored.monolith.body,
                        stored.service.status, stored.service.headers, stored.service.body, stored.diff,
                        stored.traceID,
                    ])
                try Self.addSubjects(sample.subjects, sample: db.lastInsertedRowID, db)
            }
        }
    }

    /// How many samples a signature of a route has (the recorder uses it to stop collecting early).
    public func sampleCount(route: String, signature: String) throws -> Int {
        try self.database.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM samples WHERE route = ? AND signature = ?",
                arguments: [route, signature]) ?? 0
        }
    }

    /// Deletes samples (all, one route's, those recorded before a time, or both); returns how many.
    /// Counters, signature and pointer counts stay: they hold no request data. `compact()` afterwards takes the
    /// deleted bytes out of the file and its WAL.
    @discardableResult
    public func purge(route: String? = nil, before: Date? = nil) throws -> Int {
        try self.database.write { db in
            let filter = SQLFilter(route: route).and("recorded_at < ?", before?.timeIntervalSince1970)
            try db.execute(sql: "DELETE FROM samples" + filter.clause, arguments: filter.arguments)
            return db.changesCount
        }
    }

    // MARK: Reading

    /// Counters of every route (or one), with signatures by count and the most frequent pointers.
    /// This is the body of `GET /admin/diffs`.
    public func summary(route: String? = nil, pointerLimit: Int = 50) throws -> JSONValue {
        try self.database.read { db in
            let filter = SQLFilter(route: route)
            let counters = try Row.fetchAll(
                db, sql: "SELECT * FROM route_counters" + filter.clause + " ORDER BY route", arguments: filter.arguments
            )
            var routes: [SummaryRoute] = []
            for row in counters {
                var item = SummaryRoute(
                    route: row["route"], counts: RouteCounts { row[$0.column] }, firstSeen: row["first_seen"],
                    lastSeen: row["last_seen"])
                item.signatures = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT s.signature, s.text, s.count, s.first_seen, s.last_seen,
                            (SELECT COUNT(*) FROM samples m WHERE m.route = s.route AND m.signature = s.signature)
                                AS samples
                        FROM signatures s WHERE s.route = ? ORDER BY s.count DESC, s.signature
                        """,
                    arguments: [item.route]
                ).map { row in
                    SummaryRoute.Signature(
                        id: row["signature"], text: row["text"], count: row["count"], samples: row["samples"],
                        firstSeen: row["first_seen"], lastSeen: row["last_seen"])
                }
                item.pointers = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT pointer, kind, count FROM pointers WHERE route = ? ORDER BY count DESC, pointer, kind "
                        + "LIMIT ?",
                    arguments: [item.route, pointerLimit]
                ).map { SummaryRoute.Pointer(pointer: $0["pointer"], kind: $0["kind"], count: $0["count"]) }
                routes.append(item)
            }
            return SummaryRoute.json(routes)
        }
    }

    /// Pointers that differed between two answers of the same side, for a route, most frequent first.
    public func noise(route: String) throws -> (checks: Int, pointers: [(pointer: String, count: Int)]) {
        try self.database.read { db in
            let checks =
                try Int.fetchOne(db, sql: "SELECT noise_checks FROM route_counters WHERE route = ?", arguments: [route])
                ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT pointer, count FROM noise WHERE route = ? ORDER BY count DESC, pointer",
                arguments: [route])
            return (checks, rows.map { (pointer: $0["pointer"], count: $0["count"]) })
        }
    }

    /// The samples kept for a route (and signature), newest first, as JSON (bodies as text when UTF-8).
    public func samples(route: String, signature: String? = nil, limit: Int = 20) throws -> JSONValue {
        let filter = SQLFilter(route: route).and("signature = ?", signature)
        return .array(
            try self.storedSamples(filter.clause + " ORDER BY id DESC LIMIT ?", filter.arguments + [limit]).map(\.json))
    }

    /// A kept mismatch sample's two answers, as stored (redacted): what a change of the route's rules compares again.
    public struct StoredPair: Sendable {
        public var signature: String
        public var monolith: StoredResponse
        public var service: StoredResponse
    }

    /// Every kept sample of a route, as pairs of stored answers, oldest first.
    public func storedPairs(route: String) throws -> [StoredPair] {
        try self.storedSamples(" WHERE route = ? ORDER BY id", [route]).map(\.pair)
    }

    /// Samples as stored, `SELECT * FROM samples` followed by `tail`.
    func storedSamples(_ tail: String, _ arguments: StatementArguments) throws -> [StoredSample] {
        try self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM samples" + tail, arguments: arguments).map { row in
                func answer(_ prefix: String) -> StoredSample.Answer {
                    StoredSample.Answer(
                        status: row["\(prefix)_status"], headers: row["\(prefix)_headers"], body: row["\(prefix)_body"])
                }
                return StoredSample(
                    id: row["id"], route: row["route"], signature: row["signature"], recordedAt: row["recorded_at"],
                    requestID: row["request_id"], servedBy: row["served_by"], method: row["method"],
                    path: row["path"], query: row["query"], requestHeaders: row["request_headers"],
                    requestBody: row["request_body"], monolith: answer("monolith"), service: answer("service"),
                    diff: row["diff"], traceID: row["trace_id"])
            }
        }
    }

    // MARK: Encoding

    static func headersText(_ headers: [(name: String, value: String)]) -> String {
        JSONValue.array(headers.map { .array([.string($0.name), .string($0.value)]) }).jsonText
    }

    static func headersJSON(_ text: String) -> JSONValue {
        (try? JSONParser.parse(text)) ?? .array([])
    }

    static func bodyJSON(_ data: Data) -> JSONValue {
        if data.isEmpty { return .null }
        if let text = String(validating: data, as: UTF8.self) { return .string(text) }
        return .object([("base64", .string(data.base64EncodedString()))])
    }

    static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
