import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Monolith

@Suite("Lead conversion")
struct LeadConversionTests {
    @Test func convertsIntoAccountContactAndDealInOneTransaction() async throws {
        try await withMonolith { client, store in
            let lead = try await client.create(
                "/leads", #"{"name":"Grace Brewster Hopper","email":"grace@navy.example.mil","company":"US Navy"}"#)
            let id = lead["id"] as! String
            let answer = try await client.send(
                .post, "/leads/\(id)/convert",
                json: #"{"createDeal":{"name":"COBOL compiler","amount":990000,"currency":"USD","stage":"proposal"}}"#)
            #expect(answer.status == .ok, "\(answer.text)")
            let converted = answer["lead"] as? [String: Any] ?? [:]
            let account = answer["account"] as? [String: Any] ?? [:]
            let contact = answer["contact"] as? [String: Any] ?? [:]
            let deal = answer["deal"] as? [String: Any] ?? [:]
            #expect(converted["status"] as? String == "converted")
            #expect(converted["version"] as? Int == 2)
            #expect(converted["convertedAccountId"] as? String == account["id"] as? String)
            #expect(converted["convertedContactId"] as? String == contact["id"] as? String)
            #expect(converted["convertedDealId"] as? String == deal["id"] as? String)
            #expect(account["name"] as? String == "US Navy")
            #expect(account["domain"] as? String == "navy.example.mil")
            #expect(contact["firstName"] as? String == "Grace Brewster")
            #expect(contact["lastName"] as? String == "Hopper")
            #expect(contact["accountId"] as? String == account["id"] as? String)
            #expect(deal["contactId"] as? String == contact["id"] as? String)
            #expect(deal["probability"] as? Int == 50)
            #expect(
                try await store.eventTypes() == [
                    "LeadCreated", "AccountCreated", "ContactCreated", "DealCreated", "LeadConverted",
                ])

            let again = try await client.send(.post, "/leads/\(id)/convert")
            #expect(again.status == .conflict)
            #expect(again.errorCode == "already_converted")
            let patch = try await client.send(.patch, "/leads/\(id)", json: #"{"score":5}"#)
            #expect(patch.status == .conflict)
        }
    }

    @Test func withoutABodyNoDealIsCreated() async throws {
        try await withMonolith { client, store in
            let lead = try await client.create("/leads", #"{"name":"Cher","email":"cher@music.example.com"}"#)
            let answer = try await client.send(.post, "/leads/\(lead["id"] as! String)/convert")
            #expect(answer.status == .ok)
            #expect(answer["deal"] is NSNull)
            let contact = answer["contact"] as? [String: Any] ?? [:]
            #expect(contact["firstName"] as? String == "Cher")
            #expect(contact["lastName"] as? String == "")
            #expect((answer["account"] as? [String: Any])?["name"] as? String == "Cher")
            #expect(try await store.count("deals") == 0)
        }
    }

    /// The account is inserted before the contact; the contact's e-mail address is taken, so the insert fails
    /// half-way and the whole conversion must roll back: no account, no event, the lead untouched.
    @Test func aFailureHalfWayLeavesNothing() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            _ = try await client.createContact(account: account, email: "grace@navy.example.mil")
            let lead = try await client.create(
                "/leads", #"{"name":"Grace Hopper","email":"GRACE@navy.example.mil","company":"Navy"}"#)
            let accountsBefore = try await store.count("accounts")
            let eventsBefore = try await store.eventCount()

            let answer = try await client.send(
                .post, "/leads/\(lead["id"] as! String)/convert",
                json: #"{"createDeal":{"name":"D","amount":1,"currency":"EUR"}}"#)
            #expect(answer.status == .conflict)
            #expect(answer.errorCode == "duplicate")
            #expect(try await store.count("accounts") == accountsBefore)
            #expect(try await store.count("deals") == 0)
            #expect(try await store.eventCount() == eventsBefore)
            let unchanged = try await client.json("/leads/\(lead["id"] as! String)")
            #expect(unchanged.string("status") == "new")
            #expect(unchanged.int("version") == 1)
        }
    }

    @Test func anInvalidDealWritesNothing() async throws {
        try await withMonolith { client, store in
            let lead = try await client.create("/leads", #"{"name":"Ada Lovelace","email":"ada@engine.example.com"}"#)
            let eventsBefore = try await store.eventCount()
            let answer = try await client.send(
                .post, "/leads/\(lead["id"] as! String)/convert",
                json: #"{"createDeal":{"name":"","amount":-1,"currency":"euro","accountId":"acc_x"}}"#)
            #expect(answer.status == .unprocessableContent)
            #expect(answer.errorFields["createDeal.name"] == "must not be empty")
            #expect(answer.errorFields["createDeal.amount"] != nil)
            #expect(answer.errorFields["createDeal.currency"] != nil)
            #expect(answer.errorFields["createDeal.accountId"] == "is set by the conversion")
            #expect(try await store.eventCount() == eventsBefore)
            #expect(try await store.count("accounts") == 0)
        }
    }

    @Test func aLeadWhoseDataMakesNoValidContactIsRefused() async throws {
        try await withMonolith { client, store in
            let longName = String(repeating: "n", count: 150) + " Smith"
            let lead = try await client.create(
                "/leads", #"{"name":"\#(longName)","email":"long@name.example.com","company":"  "}"#)
            let answer = try await client.send(.post, "/leads/\(lead["id"] as! String)/convert")
            #expect(answer.status == .unprocessableContent)
            #expect(answer.errorFields["contact.firstName"] == "must be at most 100 characters")
            #expect(try await store.count("accounts") == 0)
        }
    }

    @Test func disqualifiedLeadsAndUnknownLeadsAreRefused() async throws {
        try await withMonolith { client, _ in
            let lead = try await client.create(
                "/leads", #"{"name":"X Y","email":"x@y.example.com","status":"disqualified"}"#)
            let answer = try await client.send(.post, "/leads/\(lead["id"] as! String)/convert")
            #expect(answer.status == .conflict)
            #expect(answer.errorCode == "lead_disqualified")
            #expect(try await client.send(.post, "/leads/led_missing/convert").status == .notFound)
        }
    }
}
