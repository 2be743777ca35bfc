import GRDB

/// What the generic store needs to know about an entity type: its table, id prefix, path and event names.
struct EntityKind: Sendable {
    /// Table and path segment: `contacts`.
    let table: String
    /// Id prefix: `con`.
    let idPrefix: String
    /// The outbox's `aggregatetype`: `contact`.
    let aggregateType: String
    /// The event type stem: `Contact` gives `ContactCreated`, `ContactUpdated`, `ContactDeleted`.
    let eventStem: String
    /// For messages: "contact".
    var noun: String { self.aggregateType }
}

/// An entity of the CRM: a row with an id, a version, timestamps, and one JSON form.
///
/// The stored properties are the columns, listed once, in the JSON form's order (`id` first; `version`, `createdAt`,
/// `updatedAt` last): GRDB's Codable records derive the row from them, and ``writeJSON(to:)`` the JSON form.
protocol CRMEntity: Sendable, Codable, FetchableRecord, PersistableRecord {
    static var kind: EntityKind { get }
    var id: String { get }
    /// Starts at 1 and grows by one with every change.
    var version: Int64 { get set }
    var createdAt: String { get }
    var updatedAt: String { get set }
    /// The event type of an update from `previous` to `self`; the narrowest one that fits.
    func updateEventType(from previous: Self) -> String
}

extension CRMEntity {
    static var databaseTableName: String { Self.kind.table }

    func updateEventType(from previous: Self) -> String { Self.kind.eventStem + "Updated" }

    /// Writes the entity's JSON form (the HTTP answer and the outbox payload alike): its columns, in order.
    func writeJSON(to writer: inout JSONWriter) {
        writer.object(encoding: self)
    }

    /// The entity with this id, through a prepared statement cached by the connection (the hot path of
    /// every `GET /things/{id}`).
    static func find(_ id: String, _ db: Database) throws -> Self? {
        try Self.fetchOne(db.cachedStatement(sql: "SELECT * FROM \(Self.kind.table) WHERE id = ?"), arguments: [id])
    }

    var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        self.writeJSON(to: &writer)
        return writer.bytes
    }
}
