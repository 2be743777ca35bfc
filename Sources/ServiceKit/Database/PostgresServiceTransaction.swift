import Foundation
import Logging
public import PostgresNIO

/// One transaction on a service's PostgreSQL database (``PostgresServiceStore``): what the generic endpoints, the
/// feed's projection and the service's own outbox do there, as ``ServiceRecord``, ``VersionedRecords`` and
/// ``ServiceOutbox`` do it on SQLite. Table and column names come from the service's code, never from a request;
/// every value is a bind.
public final class PostgresServiceTransaction {
    public let connection: PostgresConnection
    let logger: Logger
    /// The id of the last event this transaction appended to the service's outbox, if any.
    private(set) var lastEventID: Int64?
    /// What the outbox rows appended carry as their `traceparent` (set by ``ServiceDatabase/change(postgres:dryRun:_:)``).
    var traceparent: String?

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Runs `sql`, `?` placeholders bound to `values` in order.
    @discardableResult
    func run(_ sql: String, _ values: [PostgresServiceStore.Value] = []) async throws -> PostgresRowSequence {
        try await self.connection.query(
            PostgresQuery(unsafeSQL: Self.numbered(sql), binds: PostgresServiceStore.binds(values)), logger: self.logger
        )
    }

    /// `sql` with its `?` placeholders as PostgreSQL's `$1`, `$2`… (a `?` inside a quoted literal or identifier
    /// stays as it is).
    static func numbered(_ sql: String) -> String {
        var result = ""
        var number = 0
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// The records `sql` selects as `row_to_json(…)::text`, decoded.
    func records<Record: ServiceRecord>(
        _ type: Record.Type, _ sql: String, _ values: [PostgresServiceStore.Value]
    ) async throws -> [Record] {
        var records: [Record] = []
        let decoder = JSONDecoder()
        for try await text in try await self.run(sql, values).decode(String.self) {
            // Straight from the row's JSON text (as Record(payload:) decodes a payload's).
            guard let record = try? decoder.decode(Record.self, from: Data(text.utf8)) else {
                throw PostgresServiceFailure("a row of \(Record.table) does not read as a \(Record.noun): \(text)")
            }
            records.append(record)
        }
        return records
    }

    /// The record with this id; with `locking`, its row is locked until the transaction ends.
    public func find<Record: ServiceRecord>(
        _ type: Record.Type, id: String, locking: Bool = false
    ) async throws -> Record? {
        try await self.records(
            type, "SELECT row_to_json(t)::text FROM \(Record.table) t WHERE id = ?\(locking ? " FOR UPDATE" : "")",
            [.text(id)]
        ).first
    }

    /// Whether `table` has a row with this id.
    public func exists(in table: String, id: String) async throws -> Bool {
        for try await found in try await self.run("SELECT EXISTS (SELECT 1 FROM \(table) WHERE id = ?)", [.text(id)])
            .decode(Bool.self)
        {
            return found
        }
        return false
    }

    /// One page of `Record`s matching `conditions` (SQL with `?` placeholders), in id order, as ``PageQuery`` pages
    /// on SQLite.
    public func page<Record: ServiceRecord>(
        _ type: Record.Type, _ query: PageQuery, where conditions: [(sql: String, argument: String)]
    ) async throws -> Page<Record> {
        var clauses = conditions.map(\.sql)
        var values = conditions.map { PostgresServiceStore.Value.text($0.argument) }
        if let afterID = query.afterID {
            clauses.append("id > ?")
            values.append(.text(afterID))
        }
        values.append(.integer(Int64(query.limit + 1)))
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        var records = try await self.records(
            type, "SELECT row_to_json(t)::text FROM \(Record.table) t\(filter) ORDER BY id LIMIT ?", values)
        guard records.count > query.limit else { return Page(items: records, next: nil) }
        records.removeLast()
        return Page(items: records, next: records.last.map { PageQuery.cursor(for: $0.id) })
    }

    /// Writes `record` as ``ServiceRecord/save(_:_:)`` does: `insert` fails on a conflict, `update` changes the row,
    /// `replace` makes the row the record whatever was there.
    public func save<Record: ServiceRecord>(_ record: Record, _ mode: SaveMode) async throws {
        let json = String(decoding: record.json, as: UTF8.self)
        let insert = "INSERT INTO \(Record.table) SELECT * FROM jsonb_populate_record(NULL::\(Record.table), ?::jsonb)"
        switch mode {
        case .insert:
            try await self.run(insert, [.text(json)])
        case .update, .replace:
            try await self.run("DELETE FROM \(Record.table) WHERE id = ?", [.text(record.id)])
            try await self.run(insert, [.text(json)])
        }
    }

    /// Whether a change to `id` at `version` is newer than what `table` holds (or held before a deletion).
    public func isNewer(_ version: Int64, id: String, in table: String) async throws -> Bool {
        let sql = """
            SELECT MAX(version) FROM (
                SELECT version FROM \(table) WHERE id = ?
                UNION ALL SELECT version FROM sync_tombstones WHERE "tableName" = ? AND id = ?) AS versions
            """
        for try await current in try await self.run(sql, [.text(id), .text(table), .text(id)]).decode(Int64?.self) {
            return version > (current ?? 0)
        }
        return true
    }

    /// Applies a deletion at `version`: removes the row and remembers the version; a stale deletion changes nothing.
    public func delete(_ id: String, version: Int64, from table: String) async throws {
        guard try await self.isNewer(version, id: id, in: table) else { return }
        try await self.run("DELETE FROM \(table) WHERE id = ?", [.text(id)])
        try await self.run(
            """
            INSERT INTO sync_tombstones ("tableName", id, version) VALUES (?, ?, ?)
            ON CONFLICT ("tableName", id) DO UPDATE SET version = EXCLUDED.version
            """, [.text(table), .text(id), .integer(version)])
    }

    /// Keeps a read model's row (``VersionedRecords/applyReadModel(_:table:columns:required:_:)``): `columns` as text.
    func upsertReadModel(table: String, id: String, version: Int64, columns: [String], values: [String?]) async throws {
        let names = (["id", "version"] + columns).map { "\"\($0)\"" }
        let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
        let updates = names.dropFirst().map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        try await self.run(
            "INSERT INTO \(table) (\(names.joined(separator: ", "))) VALUES (\(placeholders)) "
                + "ON CONFLICT (id) DO UPDATE SET \(updates)",
            [.text(id), .integer(version)] + values.map { .text($0) })
    }

    /// Appends one event to the service's own outbox (``ServiceOutbox/append(_:aggregateType:aggregateID:type:payload:at:)``),
    /// numbered after the last: only under the service's write lock (``ServiceDatabase/change(postgres:dryRun:_:)``).
    public func appendOutbox(
        origin: String, aggregateType: String, aggregateID: String, type: String, payload: [UInt8], at time: String
    ) async throws {
        let rows = try await self.run(
            """
            INSERT INTO service_outbox (id, aggregatetype, aggregateid, type, payload, "occurredAt", origin, traceparent)
            SELECT COALESCE(MAX(id), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM service_outbox RETURNING id
            """,
            [
                .text(aggregateType), .text(aggregateID), .text(type), .text(String(decoding: payload, as: UTF8.self)),
                .text(time), .text(origin), .text(self.traceparent),
            ])
        for try await id in rows.decode(Int64.self) { self.lastEventID = id }
    }

    /// Events of the outbox after `after`, oldest first, at most `limit`, and the newest id (0 when there is none).
    func outboxPage(after: Int64, limit: Int) async throws -> (events: [ServiceOutboxEvent], head: Int64) {
        var events: [ServiceOutboxEvent] = []
        let rows = try await self.run(
            """
            SELECT id, aggregatetype, aggregateid, type, payload, "occurredAt", origin, traceparent FROM service_outbox
            WHERE id > ? ORDER BY id LIMIT ?
            """, [.integer(after), .integer(Int64(limit))])
        for try await (id, aggregateType, aggregateID, type, payload, occurredAt, origin, traceparent) in rows.decode(
            (Int64, String, String, String, String, String, String, String?).self)
        {
            events.append(
                ServiceOutboxEvent(
                    id: id, aggregateType: aggregateType, aggregateID: aggregateID, type: type, payload: payload,
                    occurredAt: occurredAt, origin: origin, traceparent: traceparent))
        }
        var head: Int64 = 0
        for try await newest in try await self.run("SELECT MAX(id) FROM service_outbox").decode(Int64?.self) {
            head = newest ?? 0
        }
        return (events, head)
    }

    /// The feed checkpoint.
    func checkpoint() async throws -> SyncCheckpoint {
        let rows = try await self.run(
            #"SELECT "lastEventId", "lastOccurredAt", "consumedEvents" FROM sync_checkpoint WHERE id = 1"#)
        for try await (last, occurred, consumed) in rows.decode((Int64, String?, Int64).self) {
            return SyncCheckpoint(lastEventID: last, lastOccurredAt: occurred, consumedEvents: consumed)
        }
        return SyncCheckpoint(lastEventID: 0, lastOccurredAt: nil, consumedEvents: 0)
    }

    func save(_ checkpoint: SyncCheckpoint) async throws {
        try await self.run(
            #"UPDATE sync_checkpoint SET "lastEventId" = ?, "lastOccurredAt" = ?, "consumedEvents" = ? WHERE id = 1"#,
            [.integer(checkpoint.lastEventID), .text(checkpoint.lastOccurredAt), .integer(checkpoint.consumedEvents)])
    }

    /// Every row of the service's tables but the checkpoint, as JSON text prefixed with its table's name, in table
    /// and id order (tests compare snapshots before and after).
    public func snapshot() async throws -> [String] {
        var tables: [String] = []
        let names = try await self.run(
            """
            SELECT table_name::text FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_name NOT IN ('sync_checkpoint', 'schema_migrations')
            ORDER BY table_name COLLATE "C"
            """)
        for try await name in names.decode(String.self) { tables.append(name) }
        var rows: [String] = []
        for table in tables {
            let sql = "SELECT row_to_json(t)::text FROM \"\(table)\" t ORDER BY id"
            for try await row in try await self.run(sql).decode(String.self) { rows.append("\(table) \(row)") }
        }
        return rows
    }
}
