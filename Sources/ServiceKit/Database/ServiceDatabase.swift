import Foundation
public import GRDB
import HTTPTracing
public import Logging
public import PostgresSupport

/// One service's own database: on SQLite, a WAL `DatabasePool` on disk or an in-memory `DatabaseQueue` in tests; or,
/// for a service that declares PostgreSQL migrations, a schema on PostgreSQL (``PostgresServiceStore``). Either is
/// migrated at open with the kit's sync tables first and then the service's own migrations.
///
/// ```swift
/// let database = try await ServiceDatabase.open(path: ".strangler/contacts.sqlite", origin: "contacts") { migrator in
///     migrator.registerMigration("contacts v1") { db in try db.execute(sql: "CREATE TABLE contacts (…)") }
/// }
/// ```
public final class ServiceDatabase: Sendable {
    /// Where the tables are.
    public enum Storage: Sendable {
        /// SQLite: the connection (pool or queue) every read and write goes through.
        case sqlite(any DatabaseWriter)
        /// PostgreSQL.
        case postgres(PostgresServiceStore)
    }

    public let storage: Storage
    /// The service's name, the `origin` of every event in its own outbox.
    public let origin: String
    /// Wakes long polls of the service's own feed.
    let feedSignal: FeedSignal

    /// Opens (and migrates) the database at `path`, or an in-memory one when `path` is nil; `origin` is the
    /// service's name, which its own outbox events carry.
    public static func open(
        path: String?, origin: String, migrations: (inout DatabaseMigrator) -> Void
    ) async throws -> ServiceDatabase {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let writer: any DatabaseWriter
        if let path {
            try OwnerOnlyFiles.prepare(database: path)
            writer = try DatabasePool(path: path, configuration: configuration)
        } else {
            writer = try DatabaseQueue(configuration: configuration)
        }
        var migrator = DatabaseMigrator()
        SchemaMigration.register([SyncTables.migration], in: &migrator)
        migrations(&migrator)
        // Registered after the service's own migrations, so that databases created before it migrate in order.
        SchemaMigration.register([ServiceOutbox.migration, ServiceOutbox.traceMigration], in: &migrator)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            migrator.asyncMigrate(writer) { result in continuation.resume(with: result.map { _ in }) }
        }
        let head = try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM service_outbox") ?? 0
        }
        return ServiceDatabase(storage: .sqlite(writer), origin: origin, head: head)
    }

    /// Opens (and migrates) the service's schema on PostgreSQL at `location`: the schema is named `origin`, its
    /// tables are the kit's and those `migrations` create (PostgreSQL's dialect).
    public static func open(
        postgres location: StoreLocation, origin: String, migrations: [SchemaMigration], logger: Logger
    ) async throws -> ServiceDatabase {
        let store = try await PostgresServiceStore.open(
            location, schema: origin, migrations: migrations, logger: logger)
        do {
            let head = try await store.transaction(writing: false) { transaction in
                try await transaction.outboxPage(after: Int64.max, limit: 1).head
            }
            return ServiceDatabase(storage: .postgres(store), origin: origin, head: head)
        } catch {
            store.close()
            throw PostgresServiceFailure(
                "the database at \(location) could not be read for \(origin): \(describePostgresError(error))")
        }
    }

    private init(storage: Storage, origin: String, head: Int64) {
        self.storage = storage
        self.origin = origin
        self.feedSignal = FeedSignal(head: head)
    }

    /// The SQLite connection; nil on PostgreSQL.
    public var writer: (any DatabaseWriter)? {
        guard case .sqlite(let writer) = self.storage else { return nil }
        return writer
    }

    /// The PostgreSQL store; nil on SQLite.
    public var postgres: PostgresServiceStore? {
        guard case .postgres(let store) = self.storage else { return nil }
        return store
    }

    /// Closes the database's connections (PostgreSQL; SQLite's close with the process).
    public func close() {
        self.postgres?.close()
    }

    /// The SQLite connection, or a failure naming what needed it.
    private func sqlite(for what: String) throws -> any DatabaseWriter {
        guard let writer = self.writer else {
            throw PostgresServiceFailure("\(self.origin) runs on PostgreSQL: \(what) needs a SQLite database")
        }
        return writer
    }

    /// Runs a client's change on PostgreSQL in one transaction together with the events it appends to the service's
    /// own outbox (``PostgresServiceTransaction/appendOutbox(origin:aggregateType:aggregateID:type:payload:at:)``);
    /// readers of `GET /events` are woken once it commits. With `dryRun` everything is rolled back.
    public func change<T: Sendable>(
        postgres store: PostgresServiceStore, dryRun: Bool = false,
        _ body: (PostgresServiceTransaction) async throws -> T
    ) async throws -> T {
        let traceparent = RequestTrace.traceparent
        let (result, lastEventID) = try await store.transaction(writing: true, dryRun: dryRun) { transaction in
            transaction.traceparent = traceparent
            let result = try await body(transaction)
            return (result, transaction.lastEventID)
        }
        if !dryRun, let lastEventID { self.feedSignal.published(head: lastEventID) }
        return result
    }

    /// Runs a client's change in one write transaction together with the events it records in the service's
    /// own outbox; readers of `GET /events` are woken once it commits. With `dryRun` everything is rolled back
    /// (no row, no event).
    public func change<T: Sendable>(
        dryRun: Bool = false, _ body: @escaping @Sendable (Database, inout ServiceOutbox) throws -> T
    ) async throws -> T {
        let origin = self.origin
        let traceparent = RequestTrace.traceparent
        let (result, lastEventID) = try await self.write(dryRun: dryRun) { db in
            var outbox = ServiceOutbox(origin: origin, traceparent: traceparent)
            let result = try body(db, &outbox)
            return (result, outbox.lastEventID)
        }
        if !dryRun, let lastEventID { self.feedSignal.published(head: lastEventID) }
        return result
    }

    /// Runs `body` in one write transaction. With `dryRun` the transaction is rolled back after `body`
    /// returns (or throws): the caller gets what the real write would have answered, and nothing is kept.
    public func write<T: Sendable>(
        dryRun: Bool = false, _ body: @escaping @Sendable (Database) throws -> T
    )
        async throws -> T
    {
        let writer = try self.sqlite(for: "a write")
        guard dryRun else { return try await writer.write(body) }
        return try await writer.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE TRANSACTION")
            defer { try? db.execute(sql: "ROLLBACK TRANSACTION") }
            return try body(db)
        }
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await self.sqlite(for: "a read").read(body)
    }
}

extension DatabaseError {
    /// Whether this is a UNIQUE constraint failure on `column` (`contacts.email`).
    public func isUniqueViolation(on column: String) -> Bool {
        self.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && (self.message ?? "").contains(column)
    }
}
