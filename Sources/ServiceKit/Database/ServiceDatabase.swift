import Foundation
public import GRDB

/// One service's own SQLite database: a WAL `DatabasePool` on disk, an in-memory `DatabaseQueue` in tests,
/// migrated at open with the kit's sync tables first and then the service's own migrations.
///
/// ```swift
/// let database = try ServiceDatabase.open(path: ".strangler/contacts.sqlite") { migrator in
///     migrator.registerMigration("contacts v1") { db in try db.execute(sql: "CREATE TABLE contacts (…)") }
/// }
/// ```
public final class ServiceDatabase: Sendable {
    /// The connection (pool or queue) every read and write goes through.
    public let writer: any DatabaseWriter

    /// Opens (and migrates) the database at `path`, or an in-memory one when `path` is nil.
    public static func open(path: String?, migrations: (inout DatabaseMigrator) -> Void) throws -> ServiceDatabase {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let writer: any DatabaseWriter
        if let path {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            writer = try DatabasePool(path: path, configuration: configuration)
        } else {
            writer = try DatabaseQueue(configuration: configuration)
        }
        var migrator = DatabaseMigrator()
        SyncTables.register(in: &migrator)
        migrations(&migrator)
        try migrator.migrate(writer)
        return ServiceDatabase(writer: writer)
    }

    private init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// Runs `body` in one write transaction. With `dryRun` the transaction is rolled back after `body`
    /// returns (or throws): the caller gets what the real write would have answered, and nothing is kept.
    public func write<T: Sendable>(dryRun: Bool = false, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
