import Foundation
public import GRDB
import HTTPTracing

/// The monolith's database: its entities, its outbox, and the signal that wakes the event feed.
///
/// On disk it is a `DatabasePool` (WAL: readers never wait for the writer); in tests an in-memory
/// `DatabaseQueue`. The same code runs on both.
public final class CRMStore: Sendable {
    public let database: any DatabaseWriter
    let events: EventSignal

    /// Opens (and migrates) the database at `path`, or an in-memory one when `path` is nil.
    public static func open(path: String?) async throws -> CRMStore {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        if let path {
            try OwnerOnlyFiles.prepare(database: path)
            return try await CRMStore(database: DatabasePool(path: path, configuration: configuration))
        }
        return try await CRMStore(database: DatabaseQueue(configuration: configuration))
    }

    /// Migrates `database` and reads where its outbox is.
    public init(database: any DatabaseWriter) async throws {
        try await Schema.migrate(database)
        self.database = database
        let head = try await database.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM outbox") ?? 0 }
        self.events = EventSignal(head: head)
    }

    /// Runs `body` in one write transaction together with the events it records.
    ///
    /// With `dryRun`, the whole transaction runs and is then rolled back: the answer is what the real write
    /// would have answered, and nothing is kept (no row, no event).
    func write<T: Sendable>(
        dryRun: Bool = false, _ body: @escaping @Sendable (Database, inout Outbox) throws -> T
    )
        async throws -> T
    {
        let traceparent = RequestTrace.traceparent
        if dryRun {
            return try await self.database.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction {
                    var outbox = Outbox(traceparent: traceparent)
                    result = try body(db, &outbox)
                    return .rollback
                }
                return result!
            }
        }
        let (result, lastEventID) = try await self.database.write { db in
            var outbox = Outbox(traceparent: traceparent)
            let result = try body(db, &outbox)
            return (result, outbox.lastEventID)
        }
        if let lastEventID { self.events.published(head: lastEventID) }
        return result
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await self.database.read(body)
    }

    // MARK: Generic changes

    /// Inserts a new entity and its `…Created` event.
    static func insert<E: CRMEntity>(_ entity: E, _ db: Database, _ outbox: inout Outbox) throws {
        try entity.insert(db)
        try outbox.record(entity, type: E.kind.eventStem + "Created", db)
    }

    /// Saves `changed` over `previous` as a new version with its event; a change that changes nothing is
    /// not a change (no new version, no event).
    static func update<E: CRMEntity & Equatable>(
        _ changed: E, previous: E, _ db: Database, _ outbox: inout Outbox, at time: String = Timestamp.now()
    ) throws -> E {
        guard changed != previous else { return previous }
        var next = changed
        next.version = previous.version + 1
        next.updatedAt = max(time, previous.updatedAt)
        try next.update(db)
        try outbox.record(next, type: next.updateEventType(from: previous), db)
        return next
    }

    /// Deletes an entity and records its `…Deleted` event, whose payload is `{ id, version, deletedAt }`.
    static func delete<E: CRMEntity>(_ entity: E, _ db: Database, _ outbox: inout Outbox) throws {
        _ = try entity.delete(db)
        let time = Timestamp.now()
        var writer = JSONWriter(capacity: 96)
        writer.beginObject()
        writer.field("id", entity.id)
        writer.field("version", entity.version + 1)
        writer.field("deletedAt", time)
        writer.endObject()
        try outbox.append(
            db, aggregateType: E.kind.aggregateType, aggregateID: entity.id, type: E.kind.eventStem + "Deleted",
            payload: writer.bytes, at: time)
    }

    // MARK: Event feed

    /// Events with ids after `after`, oldest first; waits up to `wait` for one when there is none yet.
    func events(after: Int64, limit: Int, wait: Duration) async throws -> (events: [OutboxEvent], head: Int64) {
        let first = try await self.fetchEvents(after: after, limit: limit)
        if !first.events.isEmpty || wait <= .zero { return first }
        await self.events.wait(after: after, timeout: wait)
        return try await self.fetchEvents(after: after, limit: limit)
    }

    private func fetchEvents(after: Int64, limit: Int) async throws -> (events: [OutboxEvent], head: Int64) {
        try await self.read { db in
            let events = try OutboxEvent.fetchAll(
                db, sql: "SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
            let head = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM outbox") ?? 0
            return (events, head)
        }
    }
}

extension DatabaseError {
    /// A UNIQUE constraint failed on `table.column`.
    func isUniqueViolation(_ column: String) -> Bool {
        self.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && (self.message ?? "").contains(column)
    }
}
