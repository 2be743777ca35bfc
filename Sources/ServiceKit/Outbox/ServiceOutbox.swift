public import GRDB

/// A service's own outbox: one row per change a client made **to this service** (never for events it
/// applied from the monolith's feed), written in the same transaction as the change. The monolith consumes it
/// through `GET /events` (reverse sync) to keep its own tables current once a write route is eliminated.
///
/// The columns are the monolith's (Debezium's outbox columns plus `occurredAt` and `origin`), and `origin` is
/// the service's name, so that a consumer can always tell where a change was made and nothing echoes back.
public struct ServiceOutbox: Sendable {
    /// The service's name: every row's `origin`.
    public let origin: String
    /// The id of the last row appended in this transaction, if any.
    public private(set) var lastEventID: Int64?
    /// What the rows appended carry as their `traceparent` (the request's, read before the transaction).
    let traceparent: String?

    init(origin: String, traceparent: String? = nil) {
        self.origin = origin
        self.traceparent = traceparent
    }

    /// The request's trace context on each row (W3C traceparent), as Debezium carries it in a header.
    static let traceMigration = SchemaMigration(
        "servicekit v3: outbox traceparent", sql: "ALTER TABLE service_outbox ADD COLUMN traceparent TEXT")

    static let migration = SchemaMigration(
        "servicekit v2: outbox",
        sql: """
            -- The service's own changes, for the monolith (reverse sync). Ids are this service's, not the monolith's.
            CREATE TABLE service_outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                aggregatetype TEXT NOT NULL,
                aggregateid TEXT NOT NULL,
                type TEXT NOT NULL,
                payload TEXT NOT NULL,
                occurredAt TEXT NOT NULL,
                origin TEXT NOT NULL
            );
            """)

    /// Appends one event; `payload` is the record's JSON form after the change (or `{id, version, deletedAt}`).
    public mutating func append(
        _ db: Database, aggregateType: String, aggregateID: String, type: String, payload: [UInt8], at time: String
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO service_outbox (aggregatetype, aggregateid, type, payload, occurredAt, origin, traceparent)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                aggregateType, aggregateID, type, String(decoding: payload, as: UTF8.self), time, self.origin,
                self.traceparent,
            ])
        self.lastEventID = db.lastInsertedRowID
    }

    /// Events after `after`, oldest first, at most `limit`, and the newest id (0 when there is none).
    static func page(after: Int64, limit: Int, _ db: Database) throws -> (events: [ServiceOutboxEvent], head: Int64) {
        let events = try ServiceOutboxEvent.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM service_outbox WHERE id > ? ORDER BY id LIMIT ?"),
            arguments: [after, limit])
        let head = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM service_outbox") ?? 0
        return (events, head)
    }
}

/// A row of a service's outbox.
struct ServiceOutboxEvent: Sendable, Decodable, FetchableRecord {
    var id: Int64
    var aggregateType: String
    var aggregateID: String
    var type: String
    /// JSON text.
    var payload: String
    var occurredAt: String
    var origin: String
    var traceparent: String?

    /// Debezium's column names.
    enum CodingKeys: String, CodingKey {
        case id, type, payload, occurredAt, origin, traceparent
        case aggregateType = "aggregatetype"
        case aggregateID = "aggregateid"
    }
}
