import Foundation
public import Logging
import PostgresNIO
public import PostgresSupport

/// A service's database on PostgreSQL (`strangler service leads --db postgres://USER@HOST:PORT/DB`): the same tables
/// as on SQLite (the service's records, the feed checkpoint, the tombstones, its own outbox), in a schema named
/// after the service, so that several services (and the proxies' shared store, in `strangler`) can share one
/// database.
///
/// Records go in and out as their JSON form (`jsonb_populate_record`, `row_to_json`), so a service's PostgreSQL
/// migrations only declare typed columns named as its record's fields. Ids sort byte for byte (`COLLATE "C"`), as
/// on SQLite and in the monolith, so cursors stay interchangeable. Writes take a transaction-scoped lock of the
/// service and number the outbox's events under it (the last id + 1), so ids commit in order and without gaps, as
/// on SQLite: a reader of `GET /events` never skips an id that commits later.
///
/// ```swift
/// let store = try await PostgresServiceStore.open(
///     try StoreLocation.parse("postgres://leads@127.0.0.1/crm"), schema: "leads", migrations: LeadsSchema.postgres,
///     logger: logger)
/// ```
public final class PostgresServiceStore: Sendable {
    public let location: StoreLocation
    /// The schema the service's tables are in: the service's name.
    public let schema: String
    let running: RunningClient
    var client: PostgresClient { self.running.client }
    let logger: Logger

    private init(location: StoreLocation, schema: String, logger: Logger) {
        self.location = location
        self.schema = schema
        self.logger = logger
        self.running = RunningClient(
            location.clientConfiguration(
                connectTimeout: .seconds(10), maximumConnections: 16, startupParameters: [("search_path", schema)]),
            logger: logger)
    }

    /// Whether `name` can be a schema: lower-case letters, digits and `_`, not starting with a digit.
    static func isSchemaName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.count <= 63
            && name.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || $0 == UInt8(ascii: "_")
            }
    }

    /// Connects, and creates or migrates the schema `schema` (the kit's tables first, then `migrations`, each once, in
    /// a transaction of its own, under an advisory lock so that two processes starting together migrate once).
    public static func open(
        _ location: StoreLocation, schema: String, migrations: [SchemaMigration], logger: Logger
    ) async throws -> PostgresServiceStore {
        guard Self.isSchemaName(schema) else {
            throw PostgresServiceFailure("\(schema) cannot name a schema (lower-case letters, digits and _ only)")
        }
        let store = PostgresServiceStore(location: location, schema: schema, logger: logger)
        do {
            try await store.migrate(Self.kitMigrations(before: true) + migrations + Self.kitMigrations(before: false))
        } catch {
            store.close()
            throw PostgresServiceFailure(
                "the database at \(location) could not be opened for \(schema): \(describePostgresError(error))")
        }
        return store
    }

    /// Closes every connection; operations after it fail.
    public func close() {
        self.running.close()
    }

    /// The kit's own tables (``SyncTables``, ``ServiceOutbox``), as on SQLite: the sync tables before the service's
    /// migrations, the outbox after.
    static func kitMigrations(before: Bool) -> [SchemaMigration] {
        if before {
            return [
                SchemaMigration(
                    "servicekit v1: sync checkpoint, tombstones",
                    sql: """
                        CREATE TABLE sync_checkpoint (
                            id integer PRIMARY KEY CHECK (id = 1),
                            "lastEventId" bigint NOT NULL,
                            "lastOccurredAt" text,
                            "consumedEvents" bigint NOT NULL);
                        INSERT INTO sync_checkpoint (id, "lastEventId", "lastOccurredAt", "consumedEvents")
                            VALUES (1, 0, NULL, 0);
                        CREATE TABLE sync_tombstones (
                            "tableName" text NOT NULL,
                            id text COLLATE "C" NOT NULL,
                            version bigint NOT NULL,
                            PRIMARY KEY ("tableName", id));
                        """)
            ]
        }
        return [
            SchemaMigration(
                "servicekit v2: outbox",
                sql: """
                    CREATE TABLE service_outbox (
                        id bigint PRIMARY KEY,
                        aggregatetype text NOT NULL,
                        aggregateid text NOT NULL,
                        type text NOT NULL,
                        payload text NOT NULL,
                        "occurredAt" text NOT NULL,
                        origin text NOT NULL);
                    """),
            SchemaMigration(
                "servicekit v3: outbox traceparent", sql: "ALTER TABLE service_outbox ADD COLUMN traceparent text"),
        ]
    }

    private func migrate(_ migrations: [SchemaMigration]) async throws {
        let (logger, schema) = (self.logger, self.schema)
        try await self.client.withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                // One process at a time per schema: hashtext() of the schema's name is the lock's key.
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(schema)))", logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                                identifier text PRIMARY KEY,
                                applied_at timestamptz NOT NULL DEFAULT now())
                            """), logger: logger)
                var applied: Set<String> = []
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT identifier FROM \(schema).schema_migrations"), logger: logger)
                for try await identifier in rows.decode(String.self) { applied.insert(identifier) }
                let known = Set(migrations.map(\.identifier))
                if let unknown = applied.subtracting(known).sorted().first {
                    throw PostgresServiceFailure(
                        "the schema \(schema) holds migration \"\(unknown)\", which this strangler does not know: "
                            + "upgrade strangler before pointing it at this database")
                }
                for migration in migrations where !applied.contains(migration.identifier) {
                    // The tables go into the service's schema whatever the connection's search_path says.
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(schema)"), logger: logger)
                    for statement in Self.statements(of: migration.sql) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "INSERT INTO \(schema).schema_migrations (identifier) VALUES ($1)",
                            binds: Self.binds([.text(migration.identifier)])), logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// A migration's statements: PostgreSQL prepares one statement at a time, so a migration's SQL is split where a
    /// line ends with `;`.
    static func statements(of sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            current += line + "\n"
            if line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
                statements.append(current)
                current = ""
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { statements.append(current) }
        return statements
    }

    /// Runs `body` in one transaction: committed when it returns (rolled back with `dryRun`, or when it throws, with
    /// its error thrown as it is). With `writing`, the service's write lock is taken first.
    package func transaction<T: Sendable>(
        writing: Bool, dryRun: Bool = false, _ body: (PostgresServiceTransaction) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        let schema = self.schema
        return try await self.client.withConnection { connection in
            try await connection.query(
                writing ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let transaction = PostgresServiceTransaction(connection: connection, logger: logger)
            do {
                if writing {
                    try await connection.query(
                        "SELECT pg_advisory_xact_lock(hashtext(\(schema + " writes")))", logger: logger)
                }
                let result = try await body(transaction)
                try await connection.query(dryRun ? "ROLLBACK" : "COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs `body`'s statements each on its own (autocommit, no transaction): for a read of one statement, one round
    /// trip instead of three.
    package func autocommit<T: Sendable>(_ body: (PostgresServiceTransaction) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await self.client.withConnection { connection in
            try await body(PostgresServiceTransaction(connection: connection, logger: logger))
        }
    }

    /// One bind value.
    enum Value {
        case text(String?)
        case integer(Int64)
    }

    static func binds(_ values: [Value]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .text(let text?): binds.append(text)
            case .text(nil): binds.appendNull()
            case .integer(let number): binds.append(number)
            }
        }
        return binds
    }
}

/// A failure of a service's PostgreSQL database, in words.
public struct PostgresServiceFailure: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
