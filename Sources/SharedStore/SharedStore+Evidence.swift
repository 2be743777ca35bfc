public import ControlPlane
public import DiffStore
public import Foundation
import Logging
import PostgresNIO

extension SharedStore: SharedEvidence {
    /// The counter columns of `strangler.evidence_counters`, in ``RouteCounts/counters`` order.
    static let counterColumns = RouteCounts.counters.map(\.column)

    /// The tables of schema step 2: every proxy's shadow counters and signatures, the epochs and triage.
    static let evidenceStatements: [String] = [
        """
        CREATE TABLE strangler.evidence_counters (
            route text PRIMARY KEY,
            \(SharedStore.counterColumns.map { "\($0) bigint NOT NULL DEFAULT 0" }.joined(separator: ",\n    ")),
            first_seen double precision NOT NULL,
            last_seen double precision NOT NULL)
        """,
        """
        CREATE TABLE strangler.evidence_signatures (
            route text NOT NULL, signature text NOT NULL, text text NOT NULL, count bigint NOT NULL,
            first_seen double precision NOT NULL, last_seen double precision NOT NULL,
            PRIMARY KEY (route, signature))
        """,
        """
        CREATE TABLE strangler.evidence_epochs (
            route text PRIMARY KEY, stage text NOT NULL, started_at double precision NOT NULL,
            compared bigint NOT NULL, matched bigint NOT NULL, mismatched bigint NOT NULL)
        """,
        """
        CREATE TABLE strangler.evidence_epoch_signatures (
            route text NOT NULL, signature text NOT NULL, count bigint NOT NULL,
            PRIMARY KEY (route, signature))
        """,
        """
        CREATE TABLE strangler.evidence_triage (
            id bigserial PRIMARY KEY, route text NOT NULL, signature text NOT NULL, decision text NOT NULL,
            reason text NOT NULL, actor text NOT NULL, decided_at double precision NOT NULL)
        """,
        "CREATE INDEX evidence_triage_by_signature ON strangler.evidence_triage (route, signature, id)",
        // The batches applied, by id, for a day: a retried batch is applied once.
        "CREATE TABLE strangler.evidence_batches (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        "CREATE INDEX evidence_batches_by_time ON strangler.evidence_batches (applied_at)",
    ]

    public func apply(_ batch: DiffBatch, id: String) async throws(SharedStoreFailure) {
        guard !batch.isEmpty else { return }
        try await self.bounded("writing shadow evidence") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                var fresh = false
                for try await _ in try await connection.query(
                    """
                    INSERT INTO strangler.evidence_batches (id) VALUES (\(id)) ON CONFLICT (id) DO NOTHING RETURNING id
                    """, logger: logger
                ).decode(String.self) {
                    fresh = true
                }
                guard fresh else { return }
                try await connection.query(
                    "DELETE FROM strangler.evidence_batches WHERE applied_at < now() - interval '1 day'", logger: logger
                )
                try await Self.add(batch, on: connection, logger: logger)
                try await Self.addDiffs(batch, on: connection, logger: logger)
            }
        }
    }

    /// Adds a batch's counters and signature counts inside the caller's transaction.
    static func add(_ batch: DiffBatch, on connection: PostgresConnection, logger: Logger) async throws {
        let columns = Self.counterColumns
        let counterSQL =
            "INSERT INTO strangler.evidence_counters (route, \(columns.joined(separator: ", ")), first_seen, last_seen) "
            + "VALUES (\((1...(columns.count + 3)).map { "$\($0)" }.joined(separator: ", "))) "
            + "ON CONFLICT (route) DO UPDATE SET "
            + (columns.map { "\($0) = evidence_counters.\($0) + excluded.\($0)" } + ["last_seen = excluded.last_seen"])
            .joined(separator: ", ")
        // In route order, so that two proxies' batches lock the same rows in the same order.
        for (route, counts) in batch.counts.sorted(by: { $0.key < $1.key }) {
            var binds = PostgresBindings()
            binds.append(route)
            for counter in RouteCounts.counters { binds.append(counts[keyPath: counter.keyPath]) }
            binds.append(batch.time)
            binds.append(batch.time)
            try await connection.query(PostgresQuery(unsafeSQL: counterSQL, binds: binds), logger: logger)
        }
        let signatures = batch.signatures.sorted { ($0.key.route, $0.key.id) < ($1.key.route, $1.key.id) }
        for (key, count) in signatures {
            try await connection.query(
                """
                INSERT INTO strangler.evidence_signatures (route, signature, text, count, first_seen, last_seen)
                VALUES (\(key.route), \(key.id), \(key.text), \(count), \(batch.time), \(batch.time))
                ON CONFLICT (route, signature) DO UPDATE SET
                    count = evidence_signatures.count + excluded.count, last_seen = excluded.last_seen
                """, logger: logger)
        }
    }

    public func epochCounts(route: String) async throws(SharedStoreFailure) -> EpochCounts {
        try await self.bounded("reading shadow evidence") { [client, logger] in
            var counts = EpochCounts()
            let totals = try await client.query(
                """
                SELECT c.compared, c.matched, c.mismatched, e.compared, e.matched, e.mismatched, e.started_at, e.stage
                FROM (SELECT \(route)::text AS route) r
                LEFT JOIN strangler.evidence_counters c ON c.route = r.route
                LEFT JOIN strangler.evidence_epochs e ON e.route = r.route
                """, logger: logger)
            for try await row in totals.decode(
                (Int?, Int?, Int?, Int?, Int?, Int?, Double?, String?).self)
            {
                counts.compared = max(0, (row.0 ?? 0) - (row.3 ?? 0))
                counts.matched = max(0, (row.1 ?? 0) - (row.4 ?? 0))
                counts.mismatched = max(0, (row.2 ?? 0) - (row.5 ?? 0))
                counts.since = row.6.map { Date(timeIntervalSince1970: $0) }
                counts.stage = row.7
            }
            let rows = try await client.query(
                """
                SELECT s.signature, s.text, (s.count - COALESCE(e.count, 0))::bigint AS recent,
                    (SELECT NULLIF(t.decision, 'reset') FROM strangler.evidence_triage t
                        WHERE t.route = s.route AND t.signature = s.signature ORDER BY t.id DESC LIMIT 1)
                FROM strangler.evidence_signatures s
                LEFT JOIN strangler.evidence_epoch_signatures e ON e.route = s.route AND e.signature = s.signature
                WHERE s.route = \(route) AND s.count - COALESCE(e.count, 0) > 0
                ORDER BY recent DESC, s.signature
                """, logger: logger)
            for try await (id, text, recent, decision) in rows.decode((String, String, Int, String?).self) {
                counts.signatures.append(.init(id: id, text: text, count: recent, decision: decision))
            }
            return counts
        }
    }

    public func startEpoch(route: String, stage: String, at time: Date) async throws(SharedStoreFailure) {
        let seconds = time.timeIntervalSince1970
        try await self.bounded("starting an evidence epoch") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                try await Self.startEpoch(route: route, stage: stage, at: seconds, on: connection, logger: logger)
            }
        }
    }

    /// The counters and signature counts of `route` as they are now become its epoch's baseline (inside the caller's
    /// transaction: a commit that moves a stage starts the epoch with it).
    static func startEpoch(
        route: String, stage: String, at seconds: Double, on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO strangler.evidence_epochs (route, stage, started_at, compared, matched, mismatched)
            SELECT \(route), \(stage), \(seconds), COALESCE(MAX(c.compared), 0), COALESCE(MAX(c.matched), 0),
                COALESCE(MAX(c.mismatched), 0)
            FROM (SELECT 1) one LEFT JOIN strangler.evidence_counters c ON c.route = \(route)
            ON CONFLICT (route) DO UPDATE SET stage = excluded.stage, started_at = excluded.started_at,
                compared = excluded.compared, matched = excluded.matched, mismatched = excluded.mismatched
            """, logger: logger)
        try await connection.query(
            "DELETE FROM strangler.evidence_epoch_signatures WHERE route = \(route)", logger: logger)
        try await connection.query(
            """
            INSERT INTO strangler.evidence_epoch_signatures (route, signature, count)
            SELECT route, signature, count FROM strangler.evidence_signatures WHERE route = \(route)
            """, logger: logger)
    }

    public func signatureText(route: String, signature: String) async throws(SharedStoreFailure) -> String? {
        try await self.bounded("reading a signature") { [client, logger] in
            let rows = try await client.query(
                """
                SELECT text FROM strangler.evidence_signatures WHERE route = \(route) AND signature = \(signature)
                """, logger: logger)
            for try await text in rows.decode(String.self) { return text }
            return nil
        }
    }

    public func latestDecision(
        route: String, signature: String
    ) async throws(SharedStoreFailure) -> TriageDecision.Decision? {
        let text = try await self.bounded("reading a triage decision") { [client, logger] () -> String? in
            let rows = try await client.query(
                """
                SELECT decision FROM strangler.evidence_triage WHERE route = \(route) AND signature = \(signature)
                ORDER BY id DESC LIMIT 1
                """, logger: logger)
            for try await decision in rows.decode(String.self) { return decision }
            return nil
        }
        return text.flatMap(TriageDecision.Decision.init(rawValue:))
    }

    public func recordTriage(_ decision: TriageDecision) async throws(SharedStoreFailure) {
        let seconds = decision.decidedAt.timeIntervalSince1970
        try await self.bounded("recording a triage decision") { [client, logger] in
            try await client.query(
                """
                INSERT INTO strangler.evidence_triage (route, signature, decision, reason, actor, decided_at)
                VALUES (\(decision.route), \(decision.signature), \(decision.decision.rawValue), \(decision.reason),
                    \(decision.actor), \(seconds))
                """, logger: logger)
        }
    }
}
