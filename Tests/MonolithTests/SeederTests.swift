import Foundation
import GRDB
import Testing

@testable import Monolith

@Suite("Deterministic seed")
struct SeederTests {
    @Test func sameCountGivesSameRowsAndEvents() async throws {
        let first = try await CRMStore.open(path: nil)
        let second = try await CRMStore.open(path: nil)
        let report = try await Seeder(contacts: 200).seed(first)
        _ = try await Seeder(contacts: 200).seed(second)
        #expect(report == Seeder.Report(accounts: 40, contacts: 200, leads: 100, deals: 50))
        let dump = { (store: CRMStore) in
            try await store.database.read { db in
                try String.fetchAll(
                    db, sql: "SELECT aggregateid || type || payload || occurredAt FROM outbox ORDER BY id")
            }
        }
        let events = try await dump(first)
        #expect(events.count == 390)
        #expect(try await dump(second) == events)
        #expect(try await first.count("contacts") == 200)
        // Seeded contacts respect the same rules as written ones: unique e-mail addresses, existing accounts.
        let orphans = try await first.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM contacts WHERE accountId NOT IN (SELECT id FROM accounts)")
        }
        #expect(orphans == 0)
    }

    @Test func aDatabaseWithDataIsNotSeededAgain() async throws {
        let store = try await CRMStore.open(path: nil)
        _ = try await Seeder(contacts: 10).seed(store)
        let events = try await store.eventCount()
        #expect(try await Seeder(contacts: 10).seed(store) == nil)
        #expect(try await store.eventCount() == events)
    }
}
