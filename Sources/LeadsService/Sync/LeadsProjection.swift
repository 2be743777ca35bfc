import GRDB
import ServiceKit

/// Applies the monolith's `Lead*` events (`LeadConverted` included: its payload is the whole converted lead) to
/// the `leads` table; other aggregates are not this service's.
struct LeadsProjection: EventProjection {
    func apply(_ event: FeedEvent, _ db: Database) throws {
        guard event.aggregateType == Lead.noun else { return }
        try VersionedRecords.apply(event, as: Lead.self, db)
    }
}
