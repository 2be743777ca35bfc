import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Monolith

@Suite("CRUD endpoints")
struct EntityEndpointTests {
    @Test func healthz() async throws {
        try await withMonolith { client, _ in
            let answer = try await client.json("/healthz")
            #expect(answer.status == .ok)
            #expect(answer.string("status") == "ok")
        }
    }

    @Test func accountLifecycle() async throws {
        try await withMonolith { client, store in
            let created = try await client.send(
                .post, "/accounts",
                json: #"{"name":"Acme","domain":"ACME.example.com","ownerEmail":"sam@crm.example.com"}"#)
            #expect(created.status == .created)
            let id = created.string("id")
            #expect(id.hasPrefix("acc_"))
            #expect(created.headers[.location] == "/accounts/\(id)")
            #expect(created.headers[.eTag] == "\"1\"")
            #expect(created.string("domain") == "acme.example.com")
            #expect(created.int("version") == 1)
            #expect(created.object.keys.contains("industry") && created["industry"] is NSNull)
            #expect(created.string("createdAt").hasSuffix("Z"))

            let read = try await client.json("/accounts/\(id)")
            #expect(read.status == .ok)
            #expect(read.text == created.text)

            let patched = try await client.send(
                .patch, "/accounts/\(id)", json: #"{"industry":"software"}"#, headers: [.ifMatch: "1"])
            #expect(patched.status == .ok)
            #expect(patched.int("version") == 2)
            #expect(patched.string("industry") == "software")
            #expect(patched.string("name") == "Acme")
            #expect(patched.headers[.eTag] == "\"2\"")

            let stale = try await client.send(
                .patch, "/accounts/\(id)", json: #"{"industry":"retail"}"#, headers: [.ifMatch: "\"1\""])
            #expect(stale.status == .conflict)
            #expect(stale.errorCode == "version_conflict")

            let cleared = try await client.send(.patch, "/accounts/\(id)", json: #"{"industry":null}"#)
            #expect(cleared["industry"] is NSNull)
            #expect(cleared.int("version") == 3)

            let list = try await client.json("/accounts")
            #expect(list.items.count == 1)
            #expect(list["next"] is NSNull)

            let deleted = try await client.send(.delete, "/accounts/\(id)")
            #expect(deleted.status == .noContent)
            #expect(try await client.json("/accounts/\(id)").status == .notFound)
            #expect(
                try await store.eventTypes() == [
                    "AccountCreated", "AccountUpdated", "AccountUpdated", "AccountDeleted",
                ])
        }
    }

    @Test func contactsValidateTheirAccountAndUniqueEmail() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            let missingAccount = try await client.send(
                .post, "/contacts",
                json: #"{"accountId":"acc_nope","firstName":"A","lastName":"B","email":"a@b.example.com"}"#)
            #expect(missingAccount.status == .unprocessableContent)
            #expect(missingAccount.errorFields["accountId"] == "no account has this id")

            let contact = try await client.create(
                "/contacts",
                #"{"accountId":"\#(account)","firstName":"Ada","lastName":"Lovelace","email":"ada@acme.example.com","#
                    + #""phone":"+44 20 7946 0000","tags":["vip","emea","vip"]}"#
            )
            #expect(contact["tags"] as? [String] == ["vip", "emea"])
            #expect(contact["title"] is NSNull)

            let duplicate = try await client.send(
                .post, "/contacts",
                json:
                    #"{"accountId":"\#(account)","firstName":"Other","lastName":"Ada","email":"ADA@acme.example.com"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "duplicate")
            #expect(duplicate.errorFields["email"] != nil)

            let byEmail = try await client.json("/contacts?email=ada@acme.example.com")
            #expect(byEmail.items.count == 1)
            #expect(try await client.json("/contacts?email=nobody@acme.example.com").items.isEmpty)

            let ofAccount = try await client.json("/accounts/\(account)/contacts")
            #expect(ofAccount.items.map { $0["id"] as? String } == [contact["id"] as? String])
            #expect(try await client.json("/accounts/acc_missing/contacts").status == .notFound)

            let hasDependents = try await client.send(.delete, "/accounts/\(account)")
            #expect(hasDependents.status == .conflict)
            #expect(hasDependents.errorCode == "has_dependents")
            #expect(try await store.count("accounts") == 1)
        }
    }

    @Test func leadsRefuseConvertedStatusAndOutOfRangeScore() async throws {
        try await withMonolith { client, _ in
            let lead = try await client.create(
                "/leads", #"{"name":"Grace Hopper","email":"grace@navy.example.mil","company":"Navy","source":"event"}"#
            )
            #expect(lead["status"] as? String == "new")
            #expect(lead["score"] as? Int == 0)
            let id = lead["id"] as! String
            let converted = try await client.send(.patch, "/leads/\(id)", json: #"{"status":"converted"}"#)
            #expect(converted.status == .unprocessableContent)
            #expect(converted.errorFields["status"] == "is set only by POST /leads/{id}/convert")
            let score = try await client.send(.patch, "/leads/\(id)", json: #"{"score":101}"#)
            #expect(score.errorFields["score"] == "must be from 0 to 100")
            let working = try await client.send(.patch, "/leads/\(id)", json: #"{"status":"working","score":80}"#)
            #expect(working.string("status") == "working")
            #expect(try await client.json("/leads?status=working").items.count == 1)
            #expect(try await client.json("/leads?status=new").items.isEmpty)
            #expect(try await client.json("/leads?status=bogus").status == .unprocessableContent)
        }
    }

    @Test func dealsTrackStagesAndFilter() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            let other = try await client.createAccount("Globex")
            let contact = try await client.createContact(account: account, email: "ada@acme.example.com")
            let deal = try await client.create(
                "/deals",
                #"{"accountId":"\#(account)","contactId":"\#(contact)","name":"Renewal","amount":120000,"#
                    + #""currency":"EUR"}"#
            )
            #expect(deal["stage"] as? String == "prospecting")
            #expect(deal["probability"] as? Int == 10)
            #expect(deal["expectedCloseDate"] is NSNull)
            let id = deal["id"] as! String

            let wrongContact = try await client.send(
                .post, "/deals",
                json: #"{"accountId":"\#(other)","contactId":"\#(contact)","name":"X","amount":1,"currency":"EUR"}"#)
            #expect(wrongContact.errorFields["contactId"] == "must be a contact of the deal's account")

            let staged = try await client.send(.patch, "/deals/\(id)", json: #"{"stage":"proposal"}"#)
            #expect(staged.string("stage") == "proposal")
            #expect(staged.int("probability") == 50)
            let renamed = try await client.send(
                .patch, "/deals/\(id)", json: #"{"name":"Renewal 2027","expectedCloseDate":"2027-02-28"}"#)
            #expect(renamed.int("version") == 3)
            #expect(renamed.int("probability") == 50)
            let badDate = try await client.send(.patch, "/deals/\(id)", json: #"{"expectedCloseDate":"2027-02-29"}"#)
            #expect(badDate.errorFields["expectedCloseDate"] == "must be a date as YYYY-MM-DD")

            #expect(try await store.eventTypes().suffix(3) == ["DealCreated", "DealStageChanged", "DealUpdated"])

            // Moving the deal's contact to another account would leave the deal with a foreign contact.
            let move = try await client.send(.patch, "/contacts/\(contact)", json: #"{"accountId":"\#(other)"}"#)
            #expect(move.status == .unprocessableContent)
            #expect(
                move.errorFields["accountId"]
                    == "the contact has deals at its current account; move or delete them first")
            #expect(try await client.json("/deals?stage=proposal").items.count == 1)
            #expect(try await client.json("/deals?stage=won").items.isEmpty)
            #expect(try await client.json("/deals?stage=proposal&accountId=\(other)").items.isEmpty)
            #expect(try await client.json("/accounts/\(account)/deals").items.count == 1)
            let badStage = try await client.json("/deals?stage=closed")
            #expect(badStage.status == .unprocessableContent)
            #expect(badStage.errorFields["stage"] != nil)
        }
    }

    @Test func pipelineSumsOpenDealsPerStageAndCurrency() async throws {
        try await withMonolith { client, _ in
            let account = try await client.createAccount()
            for (stage, amount, currency) in [
                ("prospecting", 100, "EUR"), ("prospecting", 50, "USD"), ("proposal", 25, "EUR"), ("won", 1000, "EUR"),
                ("lost", 7, "EUR"),
            ] {
                try await client.create(
                    "/deals",
                    #"{"accountId":"\#(account)","name":"D","amount":\#(amount),"currency":"\#(currency)","#
                        + #""stage":"\#(stage)"}"#
                )
            }
            let pipeline = try await client.json("/pipeline")
            let stages = pipeline["stages"] as? [[String: Any]] ?? []
            #expect(
                stages.map { $0["stage"] as? String } == ["prospecting", "qualification", "proposal", "negotiation"])
            #expect(stages.map { $0["count"] as? Int } == [2, 0, 1, 0])
            let prospecting = stages[0]["currencies"] as? [[String: Any]] ?? []
            #expect(prospecting.map { $0["currency"] as? String } == ["EUR", "USD"])
            #expect(prospecting.map { $0["amount"] as? Int } == [100, 50])
            let totals = pipeline["totals"] as? [[String: Any]] ?? []
            #expect(totals.map { $0["amount"] as? Int } == [125, 50])
            #expect(totals.map { $0["count"] as? Int } == [2, 1])
        }
    }

    @Test func dryRunAnswersLikeTheRealWriteAndKeepsNothing() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            let eventsBefore = try await store.eventCount()
            let dryRun = try await client.send(
                .post, "/contacts",
                json: #"{"accountId":"\#(account)","firstName":"Ada","lastName":"L","email":"ada@acme.example.com"}"#,
                headers: [.stranglerDryRun: "1"])
            #expect(dryRun.status == .created)
            #expect(dryRun.string("email") == "ada@acme.example.com")
            #expect(try await store.count("contacts") == 0)
            #expect(try await store.eventCount() == eventsBefore)
            let invalid = try await client.send(
                .post, "/contacts", json: #"{"accountId":"\#(account)"}"#, headers: [.stranglerDryRun: "1"])
            #expect(invalid.status == .unprocessableContent)
        }
    }

    @Test func aPatchThatChangesNothingIsNotAChange() async throws {
        try await withMonolith { client, store in
            let account = try await client.createAccount()
            let same = try await client.send(.patch, "/accounts/\(account)", json: #"{"name":"Acme"}"#)
            #expect(same.int("version") == 1)
            let empty = try await client.send(.patch, "/accounts/\(account)", json: "{}")
            #expect(empty.int("version") == 1)
            #expect(try await store.eventCount() == 1)
        }
    }
}
