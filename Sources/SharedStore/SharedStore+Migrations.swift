import ControlPlane
import Logging
import PostgresNIO

extension SharedStore {
    /// One step of the store's schema. Steps are applied in order, each once, in a transaction of its own, and
    /// recorded in `strangler.migrations`; a step is never edited once released (a change is a new step).
    struct Migration: Sendable {
        var version: Int
        var name: String
        var statements: [String]
    }

    /// The schema, step by step.
    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "route-table",
            statements: [
                // The head: the one row every proxy routes by, the target of the compare-and-set.
                """
                CREATE TABLE strangler.route_head (
                    id smallint PRIMARY KEY CHECK (id = 1),
                    version bigint NOT NULL,
                    content_hash text NOT NULL)
                """,
                // Every version ever written, as written.
                """
                CREATE TABLE strangler.route_versions (
                    version bigint PRIMARY KEY,
                    text text NOT NULL,
                    content_hash text NOT NULL,
                    actor text NOT NULL,
                    reason text,
                    written_at timestamptz NOT NULL DEFAULT now())
                """,
                // The audit log: one JSON object per entry, in the order written.
                """
                CREATE TABLE strangler.audit (
                    id bigserial PRIMARY KEY,
                    written_at timestamptz NOT NULL DEFAULT now(),
                    entry text NOT NULL)
                """,
                // The proxies that route by the store, as each last reported itself.
                """
                CREATE TABLE strangler.instances (
                    id text PRIMARY KEY,
                    proxy text NOT NULL,
                    admin text NOT NULL,
                    host text NOT NULL,
                    pid integer NOT NULL,
                    version bigint NOT NULL,
                    content_hash text NOT NULL,
                    started_at timestamptz NOT NULL,
                    last_seen timestamptz NOT NULL)
                """,
            ]),
        // Every proxy's shadow counters and mismatch signatures, the routes' epochs and the triage decisions: the
        // evidence the gates read (SharedStore+Evidence.swift).
        Migration(version: 2, name: "evidence", statements: SharedStore.evidenceStatements),
        // The rest of the diff store: pointers, noise, minute buckets, samples and their subjects; reconcile records;
        // the redaction key (SharedStore+Diffs.swift).
        Migration(version: 3, name: "diffs", statements: SharedStore.diffStatements),
        // A sample's trace id (the request's traceparent), for following a mismatch to its spans.
        Migration(
            version: 4, name: "sample traces",
            statements: ["ALTER TABLE strangler.evidence_samples ADD COLUMN trace_id text"]),
    ]

    /// The newest schema version this build knows.
    static var schemaVersion: Int { Self.migrations.last?.version ?? 0 }

    /// Creates the schema or brings it up to ``schemaVersion``, under a transaction-scoped advisory lock so that
    /// proxies starting together migrate once. A store migrated by a newer build is refused: this one would not
    /// know its tables.
    func migrate(within limit: Duration) async throws(SharedStoreFailure) {
        let logger = self.logger
        let applied = try await self.bounded("migrating the store", within: limit) { [client] in
            try await client.withTransaction(logger: logger) { connection in
                // The key is arbitrary but fixed: "strangler" in ASCII, truncated to 63 bits.
                try await connection.query("SELECT pg_advisory_xact_lock(8319104482106728050)", logger: logger)
                try await connection.query("CREATE SCHEMA IF NOT EXISTS strangler", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS strangler.migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                var versions: Set<Int> = []
                for try await version in try await connection.query(
                    "SELECT version FROM strangler.migrations", logger: logger
                ).decode(Int.self) {
                    versions.insert(version)
                }
                if let newest = versions.max(), newest > Self.schemaVersion {
                    throw SharedStoreFailure(
                        "the store's schema is at version \(newest), newer than this strangler knows "
                            + "(\(Self.schemaVersion)): upgrade strangler before pointing it at this store")
                }
                var applied: [String] = []
                for migration in Self.migrations where !versions.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO strangler.migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger)
                    applied.append("\(migration.version) \(migration.name)")
                }
                return applied
            }
        }
        if !applied.isEmpty {
            self.logger.info(
                "shared store migrated", metadata: ["store": "\(self.location)", "applied": "\(applied)"])
        }
    }
}
