import GRDB
import ServiceKit

/// Applies the monolith's events to the deals service's tables: `Deal*` events (`DealStageChanged` included)
/// to `deals`, `Account*` and `Contact*` events to the read models; leads are not this service's.
struct DealsProjection: EventProjection {
    func apply(_ event: FeedEvent, _ db: Database) throws {
        switch event.aggregateType {
        case Deal.noun: try VersionedRecords.apply(event, as: Deal.self, db)
        case "account": try VersionedRecords.applyReadModel(event, table: "accounts", db)
        case "contact":
            try VersionedRecords.applyReadModel(
                event, table: "contacts", columns: ["accountId"], required: ["accountId"], db)
        default: return
        }
    }
}
