public import Foundation
public import GRDB
public import Hummingbird
public import JSON

/// A record a service owns and serves with the generic endpoints (``RecordRoutes``): its table, its JSON form,
/// how a request body changes it, and the checks that need the database.
///
/// The stored properties are the columns, listed once, in the monolith's JSON order (`id` first; `version`,
/// `createdAt`, `updatedAt` last): GRDB's Codable records derive the row from them, and the JSON form
/// (``write(to:)``) and the reading of an event's payload (``init(payload:)``) follow from the same properties.
public protocol ServiceRecord: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    /// Table and path segment: `contacts`.
    static var table: String { get }
    /// Id prefix: `con`.
    static var idPrefix: String { get }
    /// For messages and the feed's `aggregatetype`: `contact`.
    static var noun: String { get }
    /// The fields a client may write.
    static var writable: Set<String> { get }

    var id: String { get }
    var version: Int64 { get set }
    var updatedAt: String { get set }

    /// A record created now with `id`, before a request's fields are applied.
    static func new(id: String, at time: String) -> Self
    /// A record from an event's payload (the monolith's JSON form); nil when it does not have the record's shape.
    init?(payload: JSONValue)
    /// The JSON form, field for field in the monolith's order.
    func write(to output: inout JSONOutput)
    /// Reads the writable fields of a request body, recording problems in `fields`.
    mutating func apply(_ fields: inout BodyFields)
    /// Checks what needs the database (referenced records exist), recording problems in `fields`.
    func checkReferences(_ db: Database, _ fields: inout BodyFields) throws
    /// Throws a 409 when the record may no longer change.
    func checkChangeable() throws
    /// Throws a 409 when other records still refer to this one.
    func checkDeletable(_ db: Database) throws
    /// The client error a constraint failure stands for (a duplicate e-mail address), if any.
    static func clientError(for error: DatabaseError) -> ServiceError?
    /// The list filters of a query string as SQL conditions, recording problems in `problems`.
    static func filters(_ query: Parameters, problems: inout [String: String]) -> [(sql: String, argument: String)]
    /// The event type of a client's change from `previous` to `self` in the service's own feed: the narrowest
    /// one that fits, as the monolith names it (`DealStageChanged`); `<Noun>Updated` by default.
    func updateEventType(from previous: Self) -> String
}

extension ServiceRecord {
    public static var databaseTableName: String { Self.table }

    /// JSON columns (`tags`) keep `/` as it is (not `\/`), as the records' JSON form does.
    public static func databaseJSONEncoder(for column: String) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }

    /// The columns, in order, with `nil` as `null`.
    public func write(to output: inout JSONOutput) {
        output.object(encoding: self)
    }

    /// The record from an event's payload (the monolith's JSON form); nil when a column is missing or mistyped.
    public init?(payload: JSONValue) {
        guard let record = try? JSONDecoder().decode(Self.self, from: Data(payload.jsonText.utf8)) else { return nil }
        self = record
    }

    public func checkReferences(_ db: Database, _ fields: inout BodyFields) throws {}
    public func checkChangeable() throws {}
    public func checkDeletable(_ db: Database) throws {}
    public static func clientError(for error: DatabaseError) -> ServiceError? { nil }
    public static func filters(
        _ query: Parameters, problems: inout [String: String]
    ) -> [(
        sql: String, argument: String
    )] { [] }
    public func updateEventType(from previous: Self) -> String { Self.eventStem + "Updated" }

    /// The event type stem, as the monolith names its events: `contact` gives `ContactCreated`, `ContactUpdated`,
    /// `ContactDeleted`.
    public static var eventStem: String { Self.noun.prefix(1).uppercased() + Self.noun.dropFirst() }

    public var json: [UInt8] {
        var output = JSONOutput()
        self.write(to: &output)
        return output.bytes
    }

    /// Writes the row: `insert` for a client's create (a UNIQUE conflict fails), `update` for a client's change,
    /// `replace` for the feed (the monolith's state wins over any row with the same id or unique value).
    public func save(_ db: Database, _ mode: SaveMode) throws {
        switch mode {
        case .insert: try self.insert(db)
        case .update: try self.update(db)
        case .replace: try self.insert(db, onConflict: .replace)
        }
    }

    /// The record with this id, through a statement the connection caches.
    public static func find(_ id: String, _ db: Database) throws -> Self? {
        try Self.fetchOne(db.cachedStatement(sql: "SELECT * FROM \(Self.table) WHERE id = ?"), arguments: [id])
    }

    /// Whether any row of `table` has `column` = `value` (and, optionally, a second condition).
    public static func exists(
        in table: String, where condition: String, _ arguments: StatementArguments, _ db: Database
    ) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE \(condition))", arguments: arguments)
            ?? false
    }
}

extension VersionedRecords {
    /// Applies a `…Created`/`…Updated`/`…Deleted` (or any other full-state) event of `Record`'s aggregate:
    /// only when its version is newer than the row's and the record's tombstone.
    public static func apply<Record: ServiceRecord>(_ event: FeedEvent, as type: Record.Type, _ db: Database) throws {
        guard let version = event.version else {
            throw ProjectionError(event: event, problem: "the payload has no version")
        }
        if event.isDeletion {
            try self.delete(event.aggregateID, version: version, from: Record.table, db)
            return
        }
        guard try self.isNewer(version, id: event.aggregateID, in: Record.table, db) else { return }
        guard let record = Record(payload: event.payload) else {
            throw ProjectionError(event: event, problem: "the payload is not a \(Record.noun)")
        }
        try record.save(db, .replace)
    }
}

/// How ``ServiceRecord/save(_:_:)`` writes a row.
public enum SaveMode: Sendable {
    case insert
    case update
    case replace
}

extension VersionedRecords {
    /// Keeps a read model of records another service owns (`accounts(id, version)`, say): on a newer version the
    /// row becomes the payload's `columns` (as text; those in `required` must be present), on a deletion it goes.
    public static func applyReadModel(
        _ event: FeedEvent, table: String, columns: [String] = [], required: Set<String> = [], _ db: Database
    ) throws {
        guard let version = event.version else {
            throw ProjectionError(event: event, problem: "the payload has no version")
        }
        if event.isDeletion {
            try self.delete(event.aggregateID, version: version, from: table, db)
            return
        }
        guard try self.isNewer(version, id: event.aggregateID, in: table, db) else { return }
        let values = columns.map { event.payload[$0]?.stringValue }
        for (column, value) in zip(columns, values) where value == nil && required.contains(column) {
            throw ProjectionError(event: event, problem: "the payload has no \(column)")
        }
        let names = (["id", "version"] + columns).joined(separator: ", ")
        let placeholders = Array(repeating: "?", count: columns.count + 2).joined(separator: ", ")
        let row: [(any DatabaseValueConvertible)?] =
            [event.aggregateID, version] + values.map { $0 as (any DatabaseValueConvertible)? }
        try db.execute(
            sql: "INSERT OR REPLACE INTO \(table) (\(names)) VALUES (\(placeholders))",
            arguments: StatementArguments(row))
    }
}
