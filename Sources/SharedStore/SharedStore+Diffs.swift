public import ControlPlane
public import DiffStore
public import Foundation
public import JSON
import Logging
import PostgresNIO

// The rest of the diff store in the shared store (schema step 3): the differing pointers, noise, the minute buckets,
// the samples with the keyed hashes of what was redacted from them, the reconcile records and the redaction key. What
// `/admin/diffs`, `/admin/diffs/samples`, `/admin/noise`, reports and fixtures read, whichever proxy they ask.
extension SharedStore {
    /// Samples kept per (route, signature), over every proxy: as a proxy's own diff store keeps.
    public static let maxSamplesPerSignature = 20

    /// The sample columns, as in `diffs.sqlite` (`request_body`, `monolith_body` and `service_body` are bytea).
    static let sampleColumns = [
        "route", "signature", "recorded_at", "request_id", "served_by", "method", "path", "query", "request_headers",
        "request_body", "monolith_status", "monolith_headers", "monolith_body", "service_status", "service_headers",
        "service_body", "diff", "trace_id",
    ]

    static let diffStatements: [String] = [
        """
        CREATE TABLE strangler.evidence_pointers (
            route text NOT NULL, pointer text NOT NULL, kind text NOT NULL, count bigint NOT NULL,
            PRIMARY KEY (route, pointer, kind))
        """,
        """
        CREATE TABLE strangler.evidence_noise (
            route text NOT NULL, pointer text NOT NULL, count bigint NOT NULL, PRIMARY KEY (route, pointer))
        """,
        """
        CREATE TABLE strangler.evidence_buckets (
            route text NOT NULL, start bigint NOT NULL,
            \(SharedStore.counterColumns.map { "\($0) bigint NOT NULL DEFAULT 0" }.joined(separator: ",\n    ")),
            PRIMARY KEY (route, start))
        """,
        "CREATE INDEX evidence_buckets_by_start ON strangler.evidence_buckets (start)",
        """
        CREATE TABLE strangler.evidence_samples (
            id bigserial PRIMARY KEY,
            route text NOT NULL, signature text NOT NULL, recorded_at double precision NOT NULL,
            request_id text NOT NULL, served_by text NOT NULL, method text NOT NULL, path text NOT NULL, query text,
            request_headers text NOT NULL, request_body bytea NOT NULL,
            monolith_status integer NOT NULL, monolith_headers text NOT NULL, monolith_body bytea NOT NULL,
            service_status integer NOT NULL, service_headers text NOT NULL, service_body bytea NOT NULL,
            diff text NOT NULL)
        """,
        "CREATE INDEX evidence_samples_by_signature ON strangler.evidence_samples (route, signature)",
        "CREATE INDEX evidence_samples_by_time ON strangler.evidence_samples (recorded_at)",
        """
        CREATE TABLE strangler.evidence_sample_subjects (
            hash text NOT NULL,
            sample_id bigint NOT NULL REFERENCES strangler.evidence_samples (id) ON DELETE CASCADE,
            PRIMARY KEY (hash, sample_id))
        """,
        "CREATE INDEX evidence_sample_subjects_by_sample ON strangler.evidence_sample_subjects (sample_id)",
        // The hashes erased (`strangler purge --store … --subject`), and when: a sample recorded before its subject's
        // erasure and written after it (held by a proxy while the store was away) is not kept.
        "CREATE TABLE strangler.erased_subjects (hash text PRIMARY KEY, erased_at double precision NOT NULL)",
        // Every `strangler reconcile` run, its record as JSON; the gates read an entity's latest.
        """
        CREATE TABLE strangler.reconcile_records (
            id bigserial PRIMARY KEY, entity text NOT NULL, record text NOT NULL,
            written_at timestamptz NOT NULL DEFAULT now())
        """,
        "CREATE INDEX reconcile_records_by_entity ON strangler.reconcile_records (entity, id)",
        // The key of the keyed hashes that stand for redacted values: one for every proxy, so that a value has one
        // token in every sample and one erasure finds them all.
        "CREATE TABLE strangler.secrets (name text PRIMARY KEY, value bytea NOT NULL)",
    ]

    // MARK: Writing

    /// Adds a batch's pointers, noise, minute buckets and samples inside the caller's transaction (after ``add``:
    /// every transaction takes its locks in the same order). A signature keeps ``maxSamplesPerSignature`` samples over
    /// every proxy: each is counted under a lock of its own.
    static func addDiffs(
        _ batch: DiffBatch, samplesPerSignature limit: Int = SharedStore.maxSamplesPerSignature,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        for (key, count) in batch.pointers.sorted(by: {
            ($0.key.route, $0.key.pointer, $0.key.kind) < ($1.key.route, $1.key.pointer, $1.key.kind)
        }) {
            try await connection.query(
                """
                INSERT INTO strangler.evidence_pointers (route, pointer, kind, count)
                VALUES (\(key.route), \(key.pointer), \(key.kind), \(count))
                ON CONFLICT (route, pointer, kind) DO UPDATE SET count = evidence_pointers.count + excluded.count
                """, logger: logger)
        }
        for (key, count) in batch.noise.sorted(by: { ($0.key.route, $0.key.pointer) < ($1.key.route, $1.key.pointer) })
        {
            try await connection.query(
                """
                INSERT INTO strangler.evidence_noise (route, pointer, count) VALUES (\(key.route), \(key.pointer), \(count))
                ON CONFLICT (route, pointer) DO UPDATE SET count = evidence_noise.count + excluded.count
                """, logger: logger)
        }
        if !batch.counts.isEmpty || !batch.minutes.isEmpty {
            var minutes = batch.minutes
            if minutes.isEmpty {
                let start = DiffStore.minute(of: batch.time)
                for (route, counts) in batch.counts { minutes[.init(route: route, start: start)] = counts }
            }
            let columns = Self.counterColumns
            let sql =
                "INSERT INTO strangler.evidence_buckets (route, start, \(columns.joined(separator: ", "))) "
                + "VALUES (\((1...(columns.count + 2)).map { "$\($0)" }.joined(separator: ", "))) "
                + "ON CONFLICT (route, start) DO UPDATE SET "
                + columns.map { "\($0) = evidence_buckets.\($0) + excluded.\($0)" }.joined(separator: ", ")
            for (key, counts) in minutes.sorted(by: { ($0.key.route, $0.key.start) < ($1.key.route, $1.key.start) }) {
                var binds = PostgresBindings()
                binds.append(key.route)
                binds.append(key.start)
                for counter in RouteCounts.counters { binds.append(counts[keyPath: counter.keyPath]) }
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            }
            let expired = Int(batch.time - DiffStore.bucketRetention)
            try await connection.query(
                "DELETE FROM strangler.evidence_buckets WHERE start < \(expired)", logger: logger)
        }
        let samples = batch.samples.enumerated().sorted {
            ($0.element.route, $0.element.signature, $0.offset) < ($1.element.route, $1.element.signature, $1.offset)
        }
        for (_, sample) in samples {
            let lock: PostgresQuery =
                "SELECT pg_advisory_xact_lock(hashtextextended(\(sample.route + " " + sample.signature), 0))"
            try await connection.query(lock, logger: logger)
            guard
                let id = try await Self.insert(
                    sample, limit: limit, on: connection, logger: logger)
            else { continue }
            for hash in sample.subjects.sorted() {
                try await connection.query(
                    """
                    INSERT INTO strangler.evidence_sample_subjects (hash, sample_id) VALUES (\(hash), \(id))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
        }
    }

    /// Inserts a sample unless its signature keeps `limit` already; its id, or nil when it was not kept.
    static func insert(
        _ sample: DiffSample, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        let stored = StoredSample(sample)
        var binds = PostgresBindings()
        binds.append(stored.route)
        binds.append(stored.signature)
        binds.append(stored.recordedAt)
        binds.append(stored.requestID)
        binds.append(stored.servedBy)
        binds.append(stored.method)
        binds.append(stored.path)
        binds.append(stored.query)
        binds.append(stored.requestHeaders)
        try binds.append(stored.requestBody)
        binds.append(stored.monolith.status)
        binds.append(stored.monolith.headers)
        try binds.append(stored.monolith.body)
        binds.append(stored.service.status)
        binds.append(stored.service.headers)
        try binds.append(stored.service.body)
        binds.append(stored.diff)
        binds.append(stored.traceID)
        binds.append(limit)
        binds.append(sample.subjects.sorted())
        let marks = (1...Self.sampleColumns.count).map { "$\($0)" }.joined(separator: ", ")
        let sql =
            "INSERT INTO strangler.evidence_samples (\(Self.sampleColumns.joined(separator: ", "))) "
            + "SELECT \(marks) WHERE (SELECT count(*) FROM strangler.evidence_samples "
            + "WHERE route = $1 AND signature = $2) < $\(Self.sampleColumns.count + 1) "
            // Not a sample recorded before one of its subjects was erased.
            + "AND NOT EXISTS (SELECT 1 FROM strangler.erased_subjects e "
            + "WHERE e.hash = ANY($\(Self.sampleColumns.count + 2)) AND e.erased_at >= $3) RETURNING id"
        for try await id in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            .decode(Int64.self)
        {
            return id
        }
        return nil
    }

    // MARK: Reading

    public func summary(route: String?, pointerLimit: Int) async throws(SharedStoreFailure) -> JSONValue {
        try await self.bounded("reading the diff summary") { [client, logger] in
            let columns = Self.counterColumns
            var sql =
                "SELECT route, \(columns.joined(separator: ", ")), first_seen, last_seen "
                + "FROM strangler.evidence_counters"
            var binds = PostgresBindings()
            if let route {
                sql += " WHERE route = $1"
                binds.append(route)
            }
            sql += " ORDER BY route COLLATE \"C\""
            var routes: [SummaryRoute] = []
            for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                let cells = row.makeRandomAccess()
                let counts = try RouteCounts { counter throws in try cells[counter.column].decode(Int.self) }
                routes.append(
                    SummaryRoute(
                        route: try cells["route"].decode(String.self), counts: counts,
                        firstSeen: try cells["first_seen"].decode(Double.self),
                        lastSeen: try cells["last_seen"].decode(Double.self)))
            }
            for index in routes.indices {
                let name = routes[index].route
                let signatures = try await client.query(
                    """
                    SELECT s.signature, s.text, s.count,
                        (SELECT count(*) FROM strangler.evidence_samples m
                            WHERE m.route = s.route AND m.signature = s.signature),
                        s.first_seen, s.last_seen
                    FROM strangler.evidence_signatures s WHERE s.route = \(name)
                    ORDER BY s.count DESC, s.signature COLLATE "C"
                    """, logger: logger)
                for try await (id, text, count, samples, first, last) in signatures.decode(
                    (String, String, Int, Int, Double, Double).self)
                {
                    routes[index].signatures.append(
                        .init(id: id, text: text, count: count, samples: samples, firstSeen: first, lastSeen: last))
                }
                let pointers = try await client.query(
                    """
                    SELECT pointer, kind, count FROM strangler.evidence_pointers WHERE route = \(name)
                    ORDER BY count DESC, pointer COLLATE "C", kind COLLATE "C" LIMIT \(pointerLimit)
                    """, logger: logger)
                for try await (pointer, kind, count) in pointers.decode((String, String, Int).self) {
                    routes[index].pointers.append(.init(pointer: pointer, kind: kind, count: count))
                }
            }
            return SummaryRoute.json(routes)
        }
    }

    public func noise(
        route: String
    ) async throws(SharedStoreFailure) -> (checks: Int, pointers: [(pointer: String, count: Int)]) {
        try await self.bounded("reading the noise") { [client, logger] in
            var checks = 0
            for try await value in try await client.query(
                "SELECT noise_checks FROM strangler.evidence_counters WHERE route = \(route)", logger: logger
            ).decode(Int.self) {
                checks = value
            }
            var pointers: [(pointer: String, count: Int)] = []
            for try await (pointer, count) in try await client.query(
                """
                SELECT pointer, count FROM strangler.evidence_noise WHERE route = \(route)
                ORDER BY count DESC, pointer COLLATE "C"
                """, logger: logger
            ).decode((String, Int).self) {
                pointers.append((pointer, count))
            }
            return (checks, pointers)
        }
    }

    public func samples(
        route: String, signature: String?, limit: Int
    ) async throws(SharedStoreFailure) -> JSONValue {
        .array(
            try await self.storedSamples(route: route, signature: signature, newestFirst: true, limit: limit).map(
                \.json))
    }

    public func storedPairs(route: String) async throws(SharedStoreFailure) -> [DiffStore.StoredPair] {
        try await self.storedSamples(route: route, signature: nil, newestFirst: false, limit: nil).map(\.pair)
    }

    /// A route's samples (one signature's, when given), as stored.
    func storedSamples(
        route: String?, signature: String?, newestFirst: Bool, limit: Int?
    ) async throws(SharedStoreFailure) -> [StoredSample] {
        try await self.bounded("reading samples") { [client, logger] in
            var filter = PostgresFilter().and("route =", route).and("signature =", signature)
            var sql =
                "SELECT id, \(Self.sampleColumns.joined(separator: ", ")) FROM strangler.evidence_samples"
                + filter.clause + (newestFirst ? " ORDER BY id DESC" : " ORDER BY id")
            if let limit { sql += " LIMIT " + filter.bind(limit) }
            var samples: [StoredSample] = []
            for try await row in try await client.query(filter.query(sql), logger: logger) {
                samples.append(try Self.sample(row.makeRandomAccess()))
            }
            return samples
        }
    }

    static func sample(_ cells: PostgresRandomAccessRow) throws -> StoredSample {
        func text(_ name: String) throws -> String { try cells[name].decode(String.self) }
        func answer(_ prefix: String) throws -> StoredSample.Answer {
            StoredSample.Answer(
                status: try cells["\(prefix)_status"].decode(Int.self), headers: try text("\(prefix)_headers"),
                body: try cells["\(prefix)_body"].decode(Data.self))
        }
        return StoredSample(
            id: try cells["id"].decode(Int64.self), route: try text("route"), signature: try text("signature"),
            recordedAt: try cells["recorded_at"].decode(Double.self), requestID: try text("request_id"),
            servedBy: try text("served_by"), method: try text("method"), path: try text("path"),
            query: try cells["query"].decode(String?.self), requestHeaders: try text("request_headers"),
            requestBody: try cells["request_body"].decode(Data.self), monolith: try answer("monolith"),
            service: try answer("service"), diff: try text("diff"),
            traceID: try cells["trace_id"].decode(String?.self))
    }

    public func buckets(route: String?, since: Date?) async throws(SharedStoreFailure) -> [TimeBucket] {
        try await self.bounded("reading the minute buckets") { [client, logger] in
            var conditions: [String] = []
            var binds = PostgresBindings()
            if let route {
                binds.append(route)
                conditions.append("route = $\(binds.count)")
            }
            if let since {
                // A bucket counts when its minute overlaps the window.
                binds.append(since.timeIntervalSince1970 - Double(DiffStore.bucketSeconds))
                conditions.append("start > $\(binds.count)")
            }
            var sql =
                "SELECT route, start, \(Self.counterColumns.joined(separator: ", ")) FROM strangler.evidence_buckets"
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY route COLLATE \"C\", start"
            var buckets: [TimeBucket] = []
            for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                let cells = row.makeRandomAccess()
                let counts = try RouteCounts { counter throws in try cells[counter.column].decode(Int.self) }
                buckets.append(
                    TimeBucket(
                        route: try cells["route"].decode(String.self),
                        start: Date(timeIntervalSince1970: Double(try cells["start"].decode(Int.self))), counts: counts)
                )
            }
            return buckets
        }
    }

    // MARK: Deleting

    /// Deletes samples (all, one route's, those recorded before a time, or both); returns how many.
    @discardableResult
    public func purgeSamples(route: String? = nil, before: Date? = nil) async throws(SharedStoreFailure) -> Int {
        try await self.bounded("deleting samples", within: max(self.timeout, .seconds(60))) { [client, logger] in
            let filter = PostgresFilter().and("route =", route).and("recorded_at <", before?.timeIntervalSince1970)
            let sql =
                "WITH gone AS (DELETE FROM strangler.evidence_samples\(filter.clause) RETURNING 1) "
                + "SELECT count(*) FROM gone"
            return try await Self.count(client, filter.query(sql), logger)
        }
    }

    /// Deletes every sample that held the value whose keyed hash is `hash`, and every sample that holds `value`
    /// itself in any part (stored before redaction, or with the defaults off); returns how many.
    public func eraseSubject(hash: String, value: [UInt8]) async throws(SharedStoreFailure) -> Int {
        try await self.bounded("erasing a subject", within: max(self.timeout, .seconds(60))) { [client, logger] in
            let bytes = Data(value)
            // Text columns are searched as their UTF-8 bytes, as bytea columns are.
            let columns =
                ["path", "query", "request_headers", "monolith_headers", "service_headers", "diff"].map {
                    "position($2::bytea IN convert_to(COALESCE(\($0), ''), 'UTF8')) > 0"
                } + ["request_body", "monolith_body", "service_body"].map { "position($2::bytea IN \($0)) > 0" }
            var binds = PostgresBindings()
            binds.append(hash)
            try binds.append(bytes)
            binds.append(Date().timeIntervalSince1970)
            // The hash is remembered with the time: a sample recorded before it (one a proxy still held while the
            // store was away) is not stored afterwards.
            let sql =
                "WITH mark AS (INSERT INTO strangler.erased_subjects (hash, erased_at) VALUES ($1, $3) "
                + "ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at), "
                + "gone AS (DELETE FROM strangler.evidence_samples WHERE id IN "
                + "(SELECT sample_id FROM strangler.evidence_sample_subjects WHERE hash = $1)"
                + (value.isEmpty ? "" : " OR " + columns.joined(separator: " OR ")) + " RETURNING 1) "
                + "SELECT count(*) FROM gone"
            return try await Self.count(client, PostgresQuery(unsafeSQL: sql, binds: binds), logger)
        }
    }

    /// How many samples hold the value whose keyed hash is `hash`.
    public func sampleCount(subjectHash hash: String) async throws(SharedStoreFailure) -> Int {
        try await self.bounded("counting samples") { [client, logger] in
            try await Self.count(
                client, "SELECT count(*) FROM strangler.evidence_sample_subjects WHERE hash = \(hash)", logger)
        }
    }

    static func count(_ client: PostgresClient, _ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        for try await count in try await client.query(query, logger: logger).decode(Int.self) { return count }
        return 0
    }

    // MARK: The redaction key

    /// The store's redaction key, made (32 random bytes) by the first caller: every proxy of the store redacts with it.
    public func redactionKey() async throws(SharedStoreFailure) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let fresh = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try await self.bounded("reading the redaction key") { [client, logger] in
            try await client.withConnection { connection in
                try await Self.redactionKey(offering: fresh, on: connection, logger: logger)
            }
        }
    }

    /// The key in force: `offered` when the store had none (it is then the store's), else the store's.
    static func redactionKey(
        offering offered: [UInt8], on connection: PostgresConnection, logger: Logger
    ) async throws -> [UInt8] {
        let bytes = Data(offered)
        let insert: PostgresQuery = try """
        INSERT INTO strangler.secrets (name, value) VALUES ('redaction-key', \(bytes)) ON CONFLICT (name) DO NOTHING
        """
        try await connection.query(insert, logger: logger)
        for try await value in try await connection.query(
            "SELECT value FROM strangler.secrets WHERE name = 'redaction-key'", logger: logger
        ).decode(Data.self) {
            return Array(value)
        }
        throw SharedStoreFailure("the store's redaction key could not be read back")
    }

    // MARK: Reconcile records

    public func recordReconcile(_ record: ReconcileRecord) async throws(SharedStoreFailure) {
        let text = record.json.jsonText
        try await self.bounded("recording a reconcile result") { [client, logger] in
            try await client.query(
                "INSERT INTO strangler.reconcile_records (entity, record) VALUES (\(record.service), \(text))",
                logger: logger)
        }
    }

    public func latestReconcile(entity: String) async throws(SharedStoreFailure) -> ReconcileRecord? {
        let text = try await self.bounded("reading a reconcile record") { [client, logger] () -> String? in
            for try await record in try await client.query(
                """
                SELECT record FROM strangler.reconcile_records WHERE entity = \(entity) ORDER BY id DESC LIMIT 1
                """, logger: logger
            ).decode(String.self) {
                return record
            }
            return nil
        }
        return text.flatMap { ReconcileRecord(text: $0, service: entity) }
    }
}

extension SharedStore: ReviewEvidence {}

/// The `WHERE` of a query whose conditions are each optional, with its bindings: `$1`, `$2`… in the order added.
struct PostgresFilter {
    private var conditions: [String] = []
    private var binds = PostgresBindings()

    /// With `condition value` (`"route ="`, `"start >"`) when `value` is not nil.
    func and(_ condition: String, _ value: (some PostgresNonThrowingEncodable)?) -> PostgresFilter {
        guard let value else { return self }
        var filter = self
        filter.conditions.append("\(condition) \(filter.bind(value))")
        return filter
    }

    /// Binds `value` next; its placeholder.
    mutating func bind(_ value: some PostgresNonThrowingEncodable) -> String {
        self.binds.append(value)
        return "$\(self.binds.count)"
    }

    /// ` WHERE a AND b`, or nothing without conditions.
    var clause: String { self.conditions.isEmpty ? "" : " WHERE " + self.conditions.joined(separator: " AND ") }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: self.binds) }
}
