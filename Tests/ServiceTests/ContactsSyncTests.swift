import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import JSON
import ProxyTestSupport
import ServiceKit
import Testing

@testable import ContactsService

@Suite("Contacts service: sync from the monolith's feed")
struct ContactsSyncTests {
    @Test func convergesAfterCreatesUpdatesAndDeletesWhileTailing() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed, pageSize: 4)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.consumer.run() }
                try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                    // Backfill.
                    #expect(
                        try await eventually {
                            try await contacts.answer(.get, "/contacts")
                                == (try await monolith.answer(.get, "/contacts"))
                        })

                    // Tail: a create, an update and a delete made now reach the service.
                    let new = try await monolith.create(
                        "/contacts",
                        #"{"accountId":"\#(crm.globex)","firstName":"Tim","lastName":"Berners-Lee","#
                            + #""email":"tim@globex.example.com"}"#
                    )
                    #expect(
                        try await eventually {
                            try await contacts.answer(.get, "/contacts/\(new)")
                                == (try await monolith.answer(.get, "/contacts/\(new)"))
                        })
                    #expect(
                        try await monolith.answer(.patch, "/contacts/\(new)", json: #"{"title":"Sir"}"#).status == 200)
                    #expect(
                        try await eventually {
                            try await contacts.answer(.get, "/contacts/\(new)").headers["etag"] == "\"2\""
                        })
                    #expect(
                        try await contacts.answer(.get, "/contacts/\(new)")
                            == (try await monolith.answer(.get, "/contacts/\(new)")))
                    #expect(try await monolith.answer(.delete, "/contacts/\(new)").status == 204)
                    #expect(try await eventually { try await contacts.answer(.get, "/contacts/\(new)").status == 404 })

                    // A deal moving away from Ada lets her be deleted, on both sides alike.
                    #expect(try await monolith.answer(.delete, "/deals/\(crm.deal)").status == 204)
                    // (A dry run changes nothing, so polling with it is safe.)
                    #expect(
                        try await eventually {
                            try await contacts.answer(.delete, "/contacts/\(crm.ada)", headers: [.stranglerDryRun: "1"])
                                .status == 204
                        })
                    #expect(
                        try await monolith.answer(.delete, "/contacts/\(crm.ada)", headers: [.stranglerDryRun: "1"])
                            .status == 204)

                    #expect(
                        try await contacts.answer(.get, "/contacts") == (try await monolith.answer(.get, "/contacts")))
                    #expect(
                        try await contacts.answer(.get, "/accounts/\(crm.acme)/contacts")
                            == (try await monolith.answer(.get, "/accounts/\(crm.acme)/contacts")))
                }
                group.cancelAll()
            }
        }
    }

    /// The demo's one deliberate difference (docs/services.md): the contacts service answers an empty title as null.
    /// Everything else of such a contact is the monolith's.
    @Test func anEmptyTitleIsAnsweredAsNullTheServicesOneDeliberateDifference() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let id = try await monolith.create(
                "/contacts",
                #"{"accountId":"\#(crm.globex)","firstName":"Ann","lastName":"Empty","#
                    + #""email":"ann@globex.example.com","title":""}"#
            )
            let service = try await ServiceUnderTest(feed: feed)
            try await service.consumer.catchUp()
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                let fromMonolith = try #require(try await monolith.answer(.get, "/contacts/\(id)").json)
                let fromService = try #require(try await contacts.answer(.get, "/contacts/\(id)").json)
                #expect(fromMonolith["title"] == .string(""))
                #expect(fromService["title"] == .null)
                func withoutTitle(_ value: JSONValue) -> JSONValue {
                    .object((value.objectValue ?? []).filter { $0.key != "title" })
                }
                #expect(withoutTitle(fromMonolith) == withoutTitle(fromService))
            }
        }
    }

    @Test func applyingTheSameEventsTwiceChangesNothing() async throws {
        try await withLiveMonolith { monolith, endpoint in
            let crm = try await SampleCRM.create(on: monolith)
            let feed = HTTPEventFeed(endpoint)
            let events = try await feed.events(after: 0, limit: 1000, wait: 0).events
            let service = try await ServiceUnderTest(feed: feed)
            let projection = ExtractedService.contacts.projection

            let first = try await service.consumer.apply(events)
            let afterFirst = try await service.snapshot()
            // The checkpoint skips a page delivered again…
            #expect(try await service.consumer.apply(events) == first)
            // …and without the checkpoint, versions make every event a no-op the second time, in any order.
            try await service.database.write { db in
                for event in events { try projection.apply(event, db) }
                for event in events.reversed() { try projection.apply(event, db) }
            }
            #expect(try await service.snapshot() == afterFirst)
            #expect(first.lastEventID == Int64(events.count) && first.consumedEvents == Int64(events.count))

            // Versions prove it: each contact is at the monolith's version; the deleted one stays deleted.
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                for id in [crm.ada, crm.grace, crm.linus, crm.deleted] {
                    #expect(
                        try await contacts.answer(.get, "/contacts/\(id)")
                            == (try await monolith.answer(.get, "/contacts/\(id)")))
                }
                #expect(try await contacts.answer(.get, "/contacts/\(crm.grace)").headers["etag"] == "\"2\"")
                #expect(try await contacts.answer(.get, "/contacts/\(crm.deleted)").status == 404)
            }
        }
    }

    @Test func resumesFromTheCheckpointAfterACrash() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-contacts-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("contacts.sqlite").path

        try await withLiveMonolith { monolith, feed in
            _ = try await SampleCRM.create(on: monolith)
            let head = try await HTTPEventFeed(feed).events(after: 0, limit: 1, wait: 0).head

            do {
                let first = try await ServiceUnderTest(feed: feed, path: path, pageSize: 3)
                try await first.consumer.step()
                try await first.consumer.step()
                #expect(first.consumer.status.lastEventID == 6)
                // The process dies half-way through the next page: its transaction never commits.
                let dying = try await ServiceUnderTest(
                    feed: feed, path: path, pageSize: 3, projection: FailingProjection(failAtEventID: 8))
                await #expect(throws: FailingProjection.Crash.self) { try await dying.consumer.step() }
                // No graceful shutdown: the objects are simply dropped.
            }

            let second = try await ServiceUnderTest(feed: feed, path: path, pageSize: 3)
            #expect(second.consumer.status.lastEventID == 6)
            #expect(
                try await second.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deals") } == 0)
            try await second.consumer.catchUp()
            let status = second.consumer.status
            #expect(status.lastEventID == head)
            // Ids are contiguous, so one consumption per id means none was lost and none applied twice.
            #expect(status.consumedEvents == head)
            try await second.test { (contacts: any TestClientProtocol) async throws -> Void in
                #expect(try await contacts.answer(.get, "/contacts") == (try await monolith.answer(.get, "/contacts")))
            }
        }
    }

    @Test func syncStatusReportsLagInEventsAndSeconds() async throws {
        try await withLiveMonolith { monolith, feed in
            _ = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed, pageSize: 4)
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                let before = try #require(try await contacts.answer(.get, "/sync/status").json)
                #expect(before["lastEventId"]?.numberValue == 0)
                #expect(before["head"] == .null && before["lagEvents"] == .null && before["lagSeconds"] == .null)

                try await service.consumer.step()
                let behind = try #require(try await contacts.answer(.get, "/sync/status").json)
                let head = try #require(behind["head"]?.numberValue)
                #expect(head == 9)
                #expect(behind["lastEventId"]?.numberValue == 4)
                #expect(behind["lagEvents"]?.numberValue == head - 4)
                #expect((behind["lagSeconds"]?.numberValue ?? -1) >= 0)
                #expect(behind["lastOccurredAt"]?.stringValue != nil)

                try await service.consumer.catchUp()
                let synced = try #require(try await contacts.answer(.get, "/sync/status").json)
                #expect(
                    synced["lastEventId"]?.numberValue == head && synced["lagEvents"]?.numberValue == 0
                        && synced["lagSeconds"]?.numberValue == 0)
                #expect(synced["consumedEvents"]?.numberValue == head && synced["lastError"] == .null)

                // A new write is lag again once the service has seen the new head.
                let accounts = try await monolith.answer(.get, "/accounts")
                let account = try #require(accounts.json?["items"]?.arrayValue?.first?["id"]?.stringValue)
                let patched = try await monolith.answer(.patch, "/accounts/\(account)", json: #"{"industry":"tools"}"#)
                #expect(patched.status == 200)
                #expect(try await service.consumer.step() == 1)
                #expect(try await contacts.answer(.get, "/sync/status").json?["lastEventId"]?.numberValue == head + 1)
            }
        }
    }
}

extension ContactsSyncTests {
    @Test func refusesAFeedWhoseHeadIsBehindItsCheckpoint() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-reset-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("contacts.sqlite").path
        try await withLiveMonolith { monolith, feed in
            _ = try await SampleCRM.create(on: monolith)
            try await ServiceUnderTest(feed: feed, path: path).consumer.catchUp()
        }
        // Another (new, empty) monolith: its head is 0, the service's checkpoint 9.
        try await withLiveMonolith { _, feed in
            let service = try await ServiceUnderTest(feed: feed, path: path)
            await #expect(throws: FeedBehindCheckpoint.self) { try await service.consumer.step() }
            #expect(service.consumer.status.lastEventID == 9)
        }
    }
}

/// A projection that fails at one event, as a process killed mid-page would never commit it.
struct FailingProjection: EventProjection {
    struct Crash: Error {}
    let failAtEventID: Int64

    func apply(_ event: FeedEvent, _ db: Database) throws {
        if event.id == self.failAtEventID { throw Crash() }
        try ExtractedService.contacts.projection.apply(event, db)
    }
}
