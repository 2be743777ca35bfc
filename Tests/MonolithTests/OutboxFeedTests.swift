import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Monolith

@Suite("Outbox and event feed")
struct OutboxFeedTests {
    @Test func exactlyOneOutboxRowPerChange() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()  // 1
            let contact = try await client.createContact(account: account, email: "ada@acme.example.com")  // 2
            _ = try await client.send(.patch, "/contacts/\(contact)", json: #"{"title":"CTO"}"#)  // 3
            _ = try await client.send(.patch, "/contacts/\(contact)", json: #"{"title":"CTO"}"#)  // no change
            _ = try await client.send(.patch, "/contacts/\(contact)", json: #"{"title":7}"#)  // refused
            // A duplicate:
            _ = try await client.send(
                .post, "/contacts",
                json: #"{"accountId":"\#(account)","firstName":"A","lastName":"B","email":"ADA@acme.example.com"}"#)
            #expect(try await client.send(.delete, "/contacts/\(contact)").status == .noContent)  // 4

            let feed = try await client.json("/events")
            #expect(feed.items.count == 4)
            #expect(try await store.eventCount() == 4)
            #expect(
                feed.items.map { $0["type"] as? String } == [
                    "AccountCreated", "ContactCreated", "ContactUpdated", "ContactDeleted",
                ])
            #expect(feed.items.map { $0["aggregatetype"] as? String } == ["account", "contact", "contact", "contact"])
            let payloads = feed.items.map { $0["payload"] as? [String: Any] ?? [:] }
            #expect(payloads.map { $0["version"] as? Int } == [1, 1, 2, 3])
            #expect(payloads[2]["title"] as? String == "CTO")
            #expect(payloads[3]["deletedAt"] is String)
            #expect(feed.items.allSatisfy { $0["origin"] as? String == "monolith" })
            #expect(feed.items[1]["aggregateid"] as? String == contact)
            let ids = feed.items.compactMap { $0["id"] as? Int }
            #expect(ids == ids.sorted() && Set(ids).count == 4)
        }
    }

    @Test func feedPagesWithAfterAndLimit() async throws {
        try await withMonolith { client, store in
            _ = try await Seeder(contacts: 10).seed(store)
            let total = try await store.eventCount()
            var after = 0
            var seen = 0
            var pages = 0
            while pages < 20 {
                let page = try await client.json("/events?after=\(after)&limit=4")
                #expect(page.int("head") == total)
                if page.items.isEmpty {
                    #expect(page.int("next") == after)
                    break
                }
                #expect(page.items.first?["id"] as? Int == after + 1)
                seen += page.items.count
                after = page.int("next")
                pages += 1
            }
            #expect(seen == total)
            for query in ["after=-1", "limit=0", "limit=1001", "wait=31", "wait=soon"] {
                #expect(try await client.json("/events?\(query)").status == .unprocessableContent, "\(query)")
            }
        }
    }

    @Test func longPollWakesWhenAnEventCommits() async throws {
        try await withMonolith { client, store in
            let head = try await store.eventCount()
            let started = ContinuousClock.now
            async let waiting = client.json("/events?after=\(head)&wait=30")
            // Wait (with a deadline) until the request is parked, so that the write below must wake it.
            let deadline = ContinuousClock.now + .seconds(10)
            while store.events.waiterCount == 0, ContinuousClock.now < deadline { await Task.yield() }
            #expect(store.events.waiterCount == 1)
            _ = try await client.createAccount()
            let answer = try await waiting
            #expect(answer.items.count == 1)
            #expect(answer.items.first?["type"] as? String == "AccountCreated")
            #expect(
                ContinuousClock.now - started < .seconds(25),
                "the poll should return when the event commits, not at its timeout")
            #expect(store.events.waiterCount == 0)
        }
    }

    @Test func longPollWithNothingNewAnswersEmptyAtItsTimeout() async throws {
        try await withMonolith { client, store in
            _ = try await client.createAccount()
            let answer = try await client.json("/events?after=1&wait=0.2")
            #expect(answer.status == .ok)
            #expect(answer.items.isEmpty)
            #expect(answer.int("next") == 1)
            #expect(answer.int("head") == 1)
            #expect(store.events.waiterCount == 0)
        }
    }
}
