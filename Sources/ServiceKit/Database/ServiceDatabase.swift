import Foundation
public import GRDB

/// One service's own SQLite database: a WAL `DatabasePool` on disk, an in-memory `DatabaseQueue` in tests,
/// migrated at open with the kit's sync tables first and then the service's own migrations.
///
/// ```swift
/// let database = try await ServiceDatabase.open(path: ".strangler/contacts.sqlite", origin: "contacts") { migrator in
///     migrator.registerMigration("contacts v1") { db in try db.execute(sql: "CREATE TABLE contacts (…)") }
/// }
/// ```
public final class ServiceDatabase: Sendable {
    /// The connection (pool or queue) every read and write goes through.
    public let writer: any DatabaseWriter
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
        SchemaMigration.register([ServiceOutbox.migration], in: &migrator)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            migrator.asyncMigrate(writer) { result in continuation.resume(with: result.map { _ in }) }
        }
        let head = try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM service_outbox") ?? 0
        }
        return ServiceDatabase(writer: writer, origin: origin, head: head)
    }

    private init(writer: any DatabaseWriter, origin: String, head: Int64) {
        self.writer = writer
        self.origin = origin
        self.feedSignal = FeedSignal(head: head)
    }

    /// Runs a client's change in one write transaction together with the events it records in the service's
    /// own outbox; readers of `GET /events` are woken once it commits. With `dryRun` everything is rolled back
    /// (no row, no event).
    public func change<T: Sendable>(
        dryRun: Bool = false, _ body: @escaping @Sendable (Database, inout ServiceOutbox) throws -> T
    ) async throws -> T {
        let origin = self.origin
        let (result, lastEventID) = try await self.write(dryRun: dryRun) { db in
            var outbox = ServiceOutbox(origin: origin)
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
        guard dryRun else { return try await self.writer.write(body) }
        return try await self.writer.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE TRANSACTION")
            defer { try? db.execute(sql: "ROLLBACK TRANSACTION") }
            return try body(db)
        }
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await self.writer.read(body)
    }
}

extension DatabaseError {
    /// Whether this is a UNIQUE constraint failure on `column` (`contacts.email`).
    public func isUniqueViolation(on column: String) -> Bool {
        self.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && (self.message ?? "").contains(column)
    }
}
