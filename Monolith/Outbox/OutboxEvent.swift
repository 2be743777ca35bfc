import GRDB
import HTTPTracing

/// A row of the outbox: one per change, written in the same transaction as the change.
///
/// The columns are Debezium's outbox columns (`id`, `aggregatetype`, `aggregateid`, `type`, `payload`), so
/// that at scale the same table can feed Kafka through Debezium's outbox event router.
struct OutboxEvent: Sendable, Equatable, FetchableRecord {
    /// Monotonic: later commits have larger ids.
    var id: Int64
    /// `account`, `contact`, `lead` or `deal`.
    var aggregateType: String
    var aggregateID: String
    /// `ContactCreated`, `DealStageChanged`, … (see docs/events.md).
    var type: String
    /// The entity's JSON after the change, with its new `version`.
    var payload: String
    var occurredAt: String
    /// Which system made the change: `monolith` here; an extracted service's own feed says its name.
    var origin: String
    /// The W3C `traceparent` of the request whose transaction wrote it (nil: none came), as Debezium carries it in a
    /// header: the consumer's span links to it.
    var traceparent: String?

    init(row: Row) {
        self.id = row["id"]
        self.aggregateType = row["aggregatetype"]
        self.aggregateID = row["aggregateid"]
        self.type = row["type"]
        self.payload = row["payload"]
        self.occurredAt = row["occurredAt"]
        self.origin = row["origin"]
        self.traceparent = row["traceparent"]
    }

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", self.id)
        writer.field("aggregatetype", self.aggregateType)
        writer.field("aggregateid", self.aggregateID)
        writer.field("type", self.type)
        writer.key("payload")
        writer.rawValue(self.payload.utf8)
        writer.field("occurredAt", self.occurredAt)
        writer.field("origin", self.origin)
        writer.field("traceparent", self.traceparent)
        writer.endObject()
    }
}

/// Collects the events of one transaction, so that readers are woken once it commits.
struct Outbox {
    private(set) var lastEventID: Int64?
    private(set) var count = 0
    /// What the events appended next carry as their `traceparent` (the request's, read before the transaction: a
    /// task-local does not reach the database's queue).
    var traceparent: String?

    init(traceparent: String? = nil) {
        self.traceparent = traceparent
    }

    /// Appends one event; `origin` is `monolith` for the monolith's own changes, and the service's name for a
    /// change relayed from a service's feed (reverse sync), so that the service does not take it for a new change.
    mutating func append(
        _ db: Database, aggregateType: String, aggregateID: String, type: String, payload: [UInt8], at time: String,
        origin: String = "monolith"
    ) throws {
        try db.execute(
            sql:
                "INSERT INTO outbox (aggregatetype, aggregateid, type, payload, occurredAt, origin, traceparent) VALUES "
                + "(?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                aggregateType, aggregateID, type, String(decoding: payload, as: UTF8.self), time, origin,
                self.traceparent,
            ]
        )
        self.lastEventID = db.lastInsertedRowID
        self.count += 1
    }

    mutating func record<E: CRMEntity>(_ entity: E, type: String, _ db: Database) throws {
        try self.append(
            db, aggregateType: E.kind.aggregateType, aggregateID: entity.id, type: type, payload: entity.jsonBytes,
            at: entity.updatedAt)
    }
}
