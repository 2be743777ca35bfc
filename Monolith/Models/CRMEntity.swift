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
protocol CRMEntity: Sendable, FetchableRecord, PersistableRecord {
    static var kind: EntityKind { get }
    var id: String { get }
    /// Starts at 1 and grows by one with every change.
    var version: Int64 { get set }
    var createdAt: String { get }
    var updatedAt: String { get set }
    /// Writes the entity's JSON form (the HTTP answer and the outbox payload alike).
    func writeJSON(to writer: inout JSONWriter)
    /// The event type of an update from `previous` to `self`; the narrowest one that fits.
    func updateEventType(from previous: Self) -> String
}

extension CRMEntity {
    static var databaseTableName: String { Self.kind.table }

    func updateEventType(from previous: Self) -> String { Self.kind.eventStem + "Updated" }

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

/// The fields every entity carries, written first and last in its JSON form.
struct EntityMetadata: Sendable, Equatable {
    var id: String
    var version: Int64
    var createdAt: String
    var updatedAt: String

    init(id: String, version: Int64, createdAt: String, updatedAt: String) {
        self.id = id
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    init(row: Row) {
        self.id = row["id"]
        self.version = row["version"]
        self.createdAt = row["createdAt"]
        self.updatedAt = row["updatedAt"]
    }

    /// New metadata for an entity created now (or at a given time, for seeding).
    static func new(prefix: String, at time: String = Timestamp.now(), id: String? = nil) -> EntityMetadata {
        EntityMetadata(id: id ?? EntityID.make(prefix: prefix), version: 1, createdAt: time, updatedAt: time)
    }

    func encode(to container: inout PersistenceContainer) {
        container["id"] = self.id
        container["version"] = self.version
        container["createdAt"] = self.createdAt
        container["updatedAt"] = self.updatedAt
    }
}
