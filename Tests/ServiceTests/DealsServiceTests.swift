import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import ProxyTestSupport
import ServiceKit
import Testing

@testable import DealsService

@Suite("Deals service: same answers as the monolith, synced from its feed")
struct DealsServiceTests {
    @Test func readsPipelineErrorsAndDryRunsAnswerAsTheMonolith() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let linusDeal = try await monolith.create(
                "/deals",
                #"{"accountId":"\#(crm.globex)","contactId":"\#(crm.linus)","name":"Kernel","amount":250,"#
                    + #""currency":"EUR","stage":"prospecting","expectedCloseDate":"2028-02-29"}"#
            )
            let won = try await monolith.create(
                "/deals", #"{"accountId":"\#(crm.acme)","name":"Done","amount":99,"currency":"USD","stage":"won"}"#)
            #expect(
                try await monolith.answer(.patch, "/deals/\(linusDeal)", json: #"{"stage":"negotiation"}"#).status
                    == 200)
            let service = try await ServiceUnderTest(.deals, feed: feed, pageSize: 4)
            try await service.consumer.catchUp()
            let snapshot = try await service.snapshot()
            let dryRun: HTTPFields = [.stranglerDryRun: "1"]
            typealias Call = (method: HTTPRequest.Method, uri: String, json: String?, headers: HTTPFields)
            let calls: [Call] = [
                (.get, "/deals", nil, [:]),
                (.get, "/deals?limit=1", nil, [:]),
                (.get, "/deals?stage=negotiation", nil, [:]),
                (.get, "/deals?stage=closed&limit=0", nil, [:]),
                (.get, "/deals?accountId=\(crm.acme)&contactId=\(crm.ada)", nil, [:]),
                (.get, "/deals/\(crm.deal)", nil, [:]),
                (.get, "/deals/\(linusDeal)", nil, [:]),
                (.get, "/deals/\(won)", nil, [:]),
                (.get, "/deals/deal_00000000000000000000", nil, [:]),
                (.get, "/accounts/\(crm.acme)/deals", nil, [:]),
                (.get, "/accounts/\(crm.globex)/deals?stage=won", nil, [:]),
                (.get, "/accounts/acc_00000000000000000000/deals", nil, [:]),
                (.get, "/pipeline", nil, [:]),
                (
                    .post, "/deals",
                    #"{"accountId":"\#(crm.acme)","contactId":"\#(crm.linus)","name":"X","amount":1,"currency":"EUR"}"#,
                    [:]
                ),
                (
                    .post, "/deals",
                    #"{"accountId":"acc_00000000000000000000","contactId":"con_00000000000000000000","#
                        + #""name":"X","amount":1,"currency":"EUR"}"#,
                    [:]
                ),
                (
                    .post, "/deals",
                    #"{"accountId":"\#(crm.acme)","name":"","amount":1.5,"currency":"eur","stage":"closed","#
                        + #""expectedCloseDate":"2027-02-29","probability":101}"#,
                    [:]
                ),
                (
                    .post, "/deals",
                    #"{"accountId":"\#(crm.acme)","name":"N","amount":-1,"currency":"EURO","#
                        + #""expectedCloseDate":"27-01-01","contactId":null}"#,
                    [:]
                ),
                (.patch, "/deals/\(crm.deal)", #"{"stage":"won"}"#, [.ifMatch: "3"]),
                (.patch, "/deals/\(crm.deal)", #"{"contactId":"\#(crm.linus)"}"#, [:]),
                (.patch, "/deals/\(crm.deal)", #"{"name":"Engine","stage":"proposal"}"#, [:]),
                (.delete, "/deals/\(won)", nil, dryRun),
                (.delete, "/deals/deal_00000000000000000000", nil, [:]),
            ]
            try await service.test { (deals: any TestClientProtocol) async throws -> Void in
                for call in calls {
                    let expected = try await monolith.answer(
                        call.method, call.uri, json: call.json, headers: call.headers)
                    #expect(
                        try await deals.answer(call.method, call.uri, json: call.json, headers: call.headers)
                            == expected, "\(call.method) \(call.uri)")
                }
                let create =
                    #"{"accountId":"\#(crm.acme)","contactId":"\#(crm.grace)","name":"Dry","amount":1000,"#
                    + #""currency":"GBP","stage":"qualification"}"#
                let created = try await deals.answer(.post, "/deals", json: create, headers: dryRun)
                #expect(created.status == 201 && created.json?["probability"]?.numberValue == 25)
                #expect(
                    created.masking(["id", "createdAt", "updatedAt"], location: true)
                        == (try await monolith.answer(.post, "/deals", json: create, headers: dryRun)).masking(
                            ["id", "createdAt", "updatedAt"], location: true))
                let change = #"{"stage":"won","expectedCloseDate":null}"#
                let changed = try await deals.answer(.patch, "/deals/\(linusDeal)", json: change, headers: dryRun)
                #expect(changed.json?["probability"]?.numberValue == 100)
                #expect(
                    changed.masking(["updatedAt"])
                        == (try await monolith.answer(.patch, "/deals/\(linusDeal)", json: change, headers: dryRun))
                        .masking(["updatedAt"]))
            }
            #expect(try await service.snapshot() == snapshot)
        }
    }

    @Test func followsStageChangesAndMovedContacts() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(.deals, feed: feed, pageSize: 3)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.consumer.run() }
                try await service.test { (deals: any TestClientProtocol) async throws -> Void in
                    #expect(
                        try await monolith.answer(
                            .patch, "/deals/\(crm.deal)", json: #"{"stage":"negotiation","amount":120000}"#
                        ).status == 200)
                    #expect(
                        try await eventually {
                            try await deals.answer(.get, "/deals/\(crm.deal)").headers["etag"] == "\"2\""
                        })
                    #expect(
                        try await deals.answer(.get, "/deals/\(crm.deal)")
                            == (try await monolith.answer(.get, "/deals/\(crm.deal)")))
                    #expect(try await deals.answer(.get, "/pipeline") == (try await monolith.answer(.get, "/pipeline")))
                    // Linus moves to Acme in the monolith; the read model follows, so he may now be a contact of Acme's
                    // deal.
                    #expect(
                        try await monolith.answer(
                            .patch, "/contacts/\(crm.linus)", json: #"{"accountId":"\#(crm.acme)"}"#
                        ).status == 200)
                    let move = #"{"contactId":"\#(crm.linus)"}"#
                    #expect(
                        try await eventually {
                            try await deals.answer(
                                .patch, "/deals/\(crm.deal)", json: move, headers: [.stranglerDryRun: "1"]
                            ).status == 200
                        })
                }
                group.cancelAll()
            }
            let before = try await service.snapshot()
            let events = try await HTTPEventFeed(feed).events(after: 0, limit: 1000, wait: 0).events
            try await service.database.write { db in
                for event in events.reversed() { try ExtractedService.deals.projection.apply(event, db) }
            }
            #expect(try await service.snapshot() == before)
        }
    }
}
