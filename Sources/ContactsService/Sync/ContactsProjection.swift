import GRDB
import ServiceKit

/// Applies the monolith's events to the contacts service's tables: `Contact*` events to `contacts`,
/// `Account*` and `Deal*` events to the read models; other aggregates (leads) are not this service's.
///
/// Every change is applied only when its version is newer than what the table holds or last deleted, so
/// replaying an event changes nothing.
struct ContactsProjection: EventProjection {
    func apply(_ event: FeedEvent, _ db: Database) throws {
        switch event.aggregateType {
        case Contact.noun: try VersionedRecords.apply(event, as: Contact.self, db)
        case "account": try VersionedRecords.applyReadModel(event, table: "accounts", db)
        case "deal":
            try VersionedRecords.applyReadModel(
                event, table: "deals", columns: ["accountId", "contactId"], required: ["accountId"], db)
        default: return
        }
    }
}
