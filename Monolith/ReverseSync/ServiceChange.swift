import GRDB
import HTTPTracing

/// One event of a service's own feed, checked for the feed's shape.
struct ServiceEvent: Sendable {
    var id: Int64
    var aggregateType: String
    var aggregateID: String
    var type: String
    var payload: [String: JSONValue]
    var occurredAt: String
    var origin: String
    /// The `traceparent` of the service's request that made the change (nil: none).
    var traceparent: String?

    /// The aggregate's version after the change.
    var version: Int64? {
        if case .integer(let version)? = self.payload["version"], version >= 1 { return version }
        return nil
    }

    var label: String { "event \(self.id) (\(self.type) \(self.aggregateID)) of \(self.origin)'s feed" }
}

/// A page of a service's feed: `{ "items": [...], "next": …, "head": … }`.
struct ServiceFeedPage: Sendable {
    var events: [ServiceEvent]
    var head: Int64

    init(json bytes: [UInt8], service: String) throws(ReverseSyncError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw ReverseSyncError(
                description: "\(service)'s feed answered something that is not JSON: \(error.message)")
        }
        guard case .object(let page) = value, case .array(let items)? = page["items"],
            case .integer(let head)? = page["head"]
        else {
            throw ReverseSyncError(
                description: "\(service)'s feed answer is not a page of events ({\"items\": [...], \"head\": n})")
        }
        var events: [ServiceEvent] = []
        events.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .object(let fields) = item, case .integer(let id)? = fields["id"],
                case .string(let aggregateType)? = fields["aggregatetype"],
                case .string(let aggregateID)? = fields["aggregateid"], case .string(let type)? = fields["type"],
                case .object(let payload)? = fields["payload"], case .string(let occurredAt)? = fields["occurredAt"],
                case .string(let origin)? = fields["origin"]
            else {
                throw ReverseSyncError(
                    description:
                        "item \(index) of \(service)'s feed lacks one of id, aggregatetype, aggregateid, type, payload "
                        + "(object), occurredAt, origin"
                )
            }
            events.append(
                ServiceEvent(
                    id: id, aggregateType: aggregateType, aggregateID: aggregateID, type: type, payload: payload,
                    occurredAt: occurredAt, origin: origin,
                    traceparent: Self.traceparent(fields["traceparent"])))
        }
        self.events = events
        self.head = head
    }

    /// A feed item's `traceparent` when it is a valid one (a malformed one is dropped, never passed on).
    static func traceparent(_ value: JSONValue?) -> String? {
        guard case .string(let text)? = value, RequestTrace.isValid(text) else { return nil }
        return text
    }
}

/// Applies a change a client made to a service to the monolith's own tables.
enum ServiceChange {
    /// Applies `event` (from `service`'s feed, which may change only `aggregateType`) when its version is newer
    /// than the monolith's row, and records it in the outbox with the service as its origin.
    static func apply(
        _ event: ServiceEvent, service: String, aggregateType: String, _ db: Database, _ outbox: inout Outbox
    ) throws {
        guard event.origin == service else {
            throw ReverseSyncError(
                description:
                    "\(event.label) has origin \"\(event.origin)\": a service's feed carries only its own changes")
        }
        guard event.aggregateType == aggregateType else {
            throw ReverseSyncError(
                description:
                    "\(event.label) changes a \(event.aggregateType); \(service) owns only \(aggregateType) records")
        }
        switch aggregateType {
        case Contact.kind.aggregateType: try self.apply(event, as: Contact.self, db, &outbox)
        case Lead.kind.aggregateType: try self.apply(event, as: Lead.self, db, &outbox)
        case Deal.kind.aggregateType: try self.apply(event, as: Deal.self, db, &outbox)
        default:
            throw ReverseSyncError(
                description: "\(event.label): the monolith does not take \(aggregateType) changes from services")
        }
    }

    private static func apply<E: CRMEntity>(
        _ event: ServiceEvent, as type: E.Type, _ db: Database, _ outbox: inout Outbox
    ) throws {
        let kind = E.kind
        guard let version = event.version else {
            throw ReverseSyncError(
                description: "\(event.label): the payload has no version (a whole number, 1 or more)")
        }
        guard case .string(event.aggregateID)? = event.payload["id"] else {
            throw ReverseSyncError(description: "\(event.label): the payload's id is not the event's aggregateid")
        }
        let known: Set<String> = [
            kind.eventStem + "Created", kind.eventStem + "Updated", kind.eventStem + "Deleted", "DealStageChanged",
        ]
        guard known.contains(event.type), event.type != "DealStageChanged" || kind.aggregateType == "deal" else {
            throw ReverseSyncError(
                description: "\(event.label): unknown event type \(event.type) for a \(kind.aggregateType)")
        }
        let current = try Int64.fetchOne(
            db, sql: "SELECT version FROM \(kind.table) WHERE id = ?", arguments: [event.aggregateID])
        if event.type.hasSuffix("Deleted") {
            // Gone already, or the monolith has a newer version: nothing to do.
            guard let current, version > current else { return }
            try self.refusing(event) {
                try db.execute(sql: "DELETE FROM \(kind.table) WHERE id = ?", arguments: [event.aggregateID])
            }
            var writer = JSONWriter(capacity: 96)
            writer.beginObject()
            writer.field("id", event.aggregateID)
            writer.field("version", version)
            writer.field(
                "deletedAt",
                event.payload["deletedAt"].flatMap { if case .string(let text) = $0 { text } else { nil } }
                    ?? event.occurredAt)
            writer.endObject()
            try outbox.append(
                db, aggregateType: kind.aggregateType, aggregateID: event.aggregateID, type: event.type,
                payload: writer.bytes, at: event.occurredAt,
                origin: event.origin)
            return
        }
        if let current, version <= current { return }
        let (columns, values) = try self.row(of: event, table: kind.table, db)
        let assignments = columns.filter { $0 != "id" }.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        let sql = """
            INSERT INTO \(kind.table) (\(columns.joined(separator: ", "))) VALUES \
            (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))
            ON CONFLICT(id) DO UPDATE SET \(assignments)
            """
        try self.refusing(event) { try db.execute(sql: sql, arguments: StatementArguments(values)) }
        guard let entity = try E.find(event.aggregateID, db) else { return }
        // The payload recorded is the monolith's own JSON form of the row, as for its own changes.
        try outbox.append(
            db, aggregateType: kind.aggregateType, aggregateID: entity.id, type: event.type, payload: entity.jsonBytes,
            at: entity.updatedAt,
            origin: event.origin)
    }

    /// The payload as the table's columns, every one present with its column's type: text (or, for a JSON
    /// column such as `tags`, an array of strings), whole numbers for integers, null only where the column allows it.
    private static func row(
        of event: ServiceEvent, table: String, _ db: Database
    ) throws -> ([String], [(any DatabaseValueConvertible)?]) {
        let columns = try db.columns(in: table)
        let names = Set(columns.map(\.name))
        if let unknown = event.payload.keys.sorted().first(where: { !names.contains($0) }) {
            throw ReverseSyncError(
                description: "\(event.label): the payload has a field \"\(unknown)\" that \(table) does not have")
        }
        var values: [(any DatabaseValueConvertible)?] = []
        for column in columns {
            let problem = { (what: String) in
                ReverseSyncError(description: "\(event.label): the payload's \"\(column.name)\" \(what)")
            }
            switch event.payload[column.name] {
            case nil:
                throw problem("is missing")
            case .null?:
                guard !column.isNotNull else { throw problem("may not be null") }
                values.append(nil)
            case .string(let text)? where column.type.uppercased() == "TEXT":
                values.append(text)
            case .integer(let number)? where column.type.uppercased() == "INTEGER":
                values.append(number)
            case .array(let items)? where column.type.uppercased() == "TEXT":
                var strings: [String] = []
                for item in items {
                    guard case .string(let text) = item else { throw problem("must be an array of strings") }
                    strings.append(text)
                }
                var writer = JSONWriter(capacity: 32)
                writer.value(strings)
                values.append(writer.string)
            case let value?:
                throw problem(
                    "is a \(value.typeName); the column holds "
                        + "\(column.type.uppercased() == "INTEGER" ? "whole numbers" : "text")"
                )
            }
        }
        return (columns.map(\.name), values)
    }

    /// Runs a write, turning a constraint the monolith enforces (a foreign key, a unique e-mail address) into an
    /// error that names the event.
    private static func refusing(_ event: ServiceEvent, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ReverseSyncError(
                description:
                    "\(event.label): the monolith refused the change: \(error.message ?? "a constraint failed")")
        }
    }
}
