public import GRDB
import JSON

/// The usual projection of an extracted service: the events of its own ``ServiceRecord`` to its table, and those of
/// other aggregates to the read models it keeps of them; events of any other aggregate are not this service's.
/// Every change goes through ``VersionedRecords``, so replaying an event changes nothing.
///
/// ```swift
/// RecordProjection<Contact>(readModels: [
///     .init(of: "account", table: "accounts"),
///     .init(of: "deal", table: "deals", columns: ["accountId", "contactId"], required: ["accountId"]),
/// ])
/// ```
public struct RecordProjection<Record: ServiceRecord>: EventProjection {
    /// A read model: the events of `aggregate` kept in `table` (its id and version, and `columns` of the payload;
    /// an event without one of `required` is refused).
    public struct ReadModel: Sendable {
        public var aggregate: String
        public var table: String
        public var columns: [String]
        public var required: Set<String>

        public init(of aggregate: String, table: String, columns: [String] = [], required: Set<String> = []) {
            self.aggregate = aggregate
            self.table = table
            self.columns = columns
            self.required = required
        }
    }

    public var readModels: [ReadModel]

    public init(readModels: [ReadModel] = []) {
        self.readModels = readModels
    }

    public func apply(_ event: FeedEvent, _ db: Database) throws {
        if event.aggregateType == Record.noun {
            try VersionedRecords.apply(event, as: Record.self, db)
        } else if let model = self.readModels.first(where: { $0.aggregate == event.aggregateType }) {
            try VersionedRecords.applyReadModel(
                event, table: model.table, columns: model.columns, required: model.required, db)
        }
    }
}

extension RecordProjection: PostgresEventProjection {
    public func apply(_ event: FeedEvent, _ transaction: PostgresServiceTransaction) async throws {
        guard
            event.aggregateType == Record.noun
                || self.readModels.contains(where: { $0.aggregate == event.aggregateType })
        else { return }
        guard let version = event.version else {
            throw ProjectionError(event: event, problem: "the payload has no version")
        }
        let model = self.readModels.first { $0.aggregate == event.aggregateType }
        let table = model?.table ?? Record.table
        if event.isDeletion {
            try await transaction.delete(event.aggregateID, version: version, from: table)
            return
        }
        guard try await transaction.isNewer(version, id: event.aggregateID, in: table) else { return }
        guard let model else {
            guard let record = Record(payload: event.payload) else {
                throw ProjectionError(event: event, problem: "the payload is not a \(Record.noun)")
            }
            try await transaction.save(record, .replace)
            return
        }
        let values = model.columns.map { event.payload[$0]?.stringValue }
        for (column, value) in zip(model.columns, values) where value == nil && model.required.contains(column) {
            throw ProjectionError(event: event, problem: "the payload has no \(column)")
        }
        try await transaction.upsertReadModel(
            table: table, id: event.aggregateID, version: version, columns: model.columns, values: values)
    }
}
