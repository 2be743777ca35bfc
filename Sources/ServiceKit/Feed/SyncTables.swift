public import GRDB

/// The kit's own tables in every service's database: the feed checkpoint, and tombstones of deleted records.
enum SyncTables {
    static let migration = SchemaMigration(
        "servicekit v1: sync checkpoint, tombstones",
        sql: """
            -- One row: the last feed event applied, moved in the same transaction as the changes it covers.
            CREATE TABLE sync_checkpoint (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                lastEventId INTEGER NOT NULL,
                lastOccurredAt TEXT,
                consumedEvents INTEGER NOT NULL
            );
            INSERT INTO sync_checkpoint (id, lastEventId, lastOccurredAt, consumedEvents) VALUES (1, 0, NULL, 0);

            -- The last version of each deleted record, so that an older event never brings it back.
            CREATE TABLE sync_tombstones (
                tableName TEXT NOT NULL,
                id TEXT NOT NULL,
                version INTEGER NOT NULL,
                PRIMARY KEY (tableName, id)
            ) WITHOUT ROWID;
            """)
}

/// Where a service is in the feed: stored in its database, moved only together with the changes it covers.
public struct SyncCheckpoint: Sendable, Equatable {
    /// The id of the last event applied (0: none yet).
    public var lastEventID: Int64
    /// When that event happened in the monolith.
    public var lastOccurredAt: String?
    /// How many events were consumed in all (applied or, for other aggregates, passed over): with
    /// contiguous feed ids it equals `lastEventID` exactly when no event was consumed twice.
    public var consumedEvents: Int64

    public static func load(_ db: Database) throws -> SyncCheckpoint {
        let row = try Row.fetchOne(
            db, sql: "SELECT lastEventId, lastOccurredAt, consumedEvents FROM sync_checkpoint WHERE id = 1")
        guard let row else { return SyncCheckpoint(lastEventID: 0, lastOccurredAt: nil, consumedEvents: 0) }
        return SyncCheckpoint(
            lastEventID: row["lastEventId"], lastOccurredAt: row["lastOccurredAt"],
            consumedEvents: row["consumedEvents"])
    }

    func save(_ db: Database) throws {
        try db.execute(
            sql: "UPDATE sync_checkpoint SET lastEventId = ?, lastOccurredAt = ?, consumedEvents = ? WHERE id = 1",
            arguments: [self.lastEventID, self.lastOccurredAt, self.consumedEvents])
    }
}

/// Applies the feed's events to a service's tables, inside the transaction that also moves the checkpoint.
///
/// Implementations must be idempotent: use ``VersionedRecords`` so that an event older than, or as old as,
/// what a table holds changes nothing.
public protocol EventProjection: Sendable {
    func apply(_ event: FeedEvent, _ db: Database) throws
}

/// A projection that can also apply events to a service's tables on PostgreSQL, inside the transaction that moves
/// the checkpoint there (``PostgresServiceTransaction``), as idempotently as on SQLite.
public protocol PostgresEventProjection: EventProjection {
    func apply(_ event: FeedEvent, _ transaction: PostgresServiceTransaction) async throws
}

/// Version bookkeeping for projected records: an event is applied only when its version is newer than both
/// the row's and the record's tombstone.
public enum VersionedRecords {
    /// Whether a change to `id` at `version` is newer than what `table` holds (or held before a deletion).
    public static func isNewer(_ version: Int64, id: String, in table: String, _ db: Database) throws -> Bool {
        let current = try Int64.fetchOne(
            db,
            sql: """
                SELECT MAX(version) FROM (
                    SELECT version FROM \(table) WHERE id = ?1
                    UNION ALL SELECT version FROM sync_tombstones WHERE tableName = ?2 AND id = ?1)
                """,
            arguments: [id, table])
        return version > (current ?? 0)
    }

    /// Applies a deletion at `version`: removes the row and remembers the version; a stale deletion changes nothing.
    public static func delete(_ id: String, version: Int64, from table: String, _ db: Database) throws {
        guard try self.isNewer(version, id: id, in: table, db) else { return }
        try db.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [id])
        try db.execute(
            sql: "INSERT OR REPLACE INTO sync_tombstones (tableName, id, version) VALUES (?, ?, ?)",
            arguments: [table, id, version])
    }
}

/// An event a projection cannot apply (its payload lacks what the event type promises). The page is not
/// applied and the consumer retries, so that nothing is skipped silently.
public struct ProjectionError: Error, CustomStringConvertible {
    public var event: FeedEvent
    public var problem: String

    public init(event: FeedEvent, problem: String) {
        self.event = event
        self.problem = problem
    }

    public var description: String {
        "event \(self.event.id) (\(self.event.type) \(self.event.aggregateID)): \(self.problem)"
    }
}
