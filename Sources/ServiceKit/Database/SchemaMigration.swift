public import GRDB

/// One change of a database's schema: an identifier that never changes once released, and the SQL that makes the
/// change. A service lists its own in order; ServiceKit registers them after its sync tables.
///
/// ```swift
/// static let migrations = [SchemaMigration("contacts v1: contacts", sql: "CREATE TABLE contacts (…)")]
/// ```
public struct SchemaMigration: Sendable {
    public var identifier: String
    public var sql: String

    public init(_ identifier: String, sql: String) {
        self.identifier = identifier
        self.sql = sql
    }

    /// Registers `migrations`, in order.
    public static func register(_ migrations: [SchemaMigration], in migrator: inout DatabaseMigrator) {
        for migration in migrations {
            migrator.registerMigration(migration.identifier) { db in try db.execute(sql: migration.sql) }
        }
    }
}
