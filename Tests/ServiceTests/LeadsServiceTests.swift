import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import ProxyTestSupport
import ServiceKit
import Testing

@testable import LeadsService

@Suite("Leads service: same answers as the monolith, synced from its feed")
struct LeadsServiceTests {
    /// Leads in every state: new, working with a score, converted (by the monolith), deleted.
    static func sampleLeads(
        on monolith: any TestClientProtocol
    ) async throws -> (
        fresh: String, working: String, converted: String, deleted: String
    ) {
        let fresh = try await monolith.create("/leads", #"{"name":"Fresh Lead","email":"fresh@lead.example.com"}"#)
        let working = try await monolith.create(
            "/leads",
            #"{"name":"Wanda \"W\" Working","email":"wanda@work.example.com","company":"Work Co","#
                + #""source":"fair","status":"working","score":42}"#
        )
        let converted = try await monolith.create(
            "/leads", #"{"name":"Conny Verted","email":"conny@convert.example.com","company":"Convert Ltd"}"#)
        let deleted = try await monolith.create("/leads", #"{"name":"Del Eted","email":"del@lead.example.com"}"#)
        #expect(try await monolith.answer(.patch, "/leads/\(fresh)", json: #"{"score":7,"source":null}"#).status == 200)
        #expect(
            try await monolith.answer(
                .post, "/leads/\(converted)/convert",
                json: #"{"createDeal":{"name":"First","amount":500,"currency":"EUR","stage":"proposal"}}"#
            ).status == 200)
        #expect(try await monolith.answer(.delete, "/leads/\(deleted)").status == 204)
        return (fresh, working, converted, deleted)
    }

    /// Where the service keeps its tables: SQLite (the default), or PostgreSQL (`--db postgres://…`).
    enum Storage: String, CaseIterable, Sendable {
        case sqlite, postgres

        /// A fresh database of this kind: nil for SQLite in memory, a new PostgreSQL database's URL.
        func database() async throws -> String? {
            self == .postgres ? try await PostgresServer.shared().freshDatabase() : nil
        }
    }

    @Test(arguments: Storage.allCases)
    func readsErrorsAndDryRunsAnswerAsTheMonolith(on storage: Storage) async throws {
        try await withLiveMonolith { monolith, feed in
            let leads = try await Self.sampleLeads(on: monolith)
            let service = try await ServiceUnderTest(
                .leads, feed: feed, postgres: try await storage.database(), pageSize: 5)
            try await service.consumer.catchUp()
            let snapshot = try await service.snapshot()
            let cursor = try #require(try await monolith.answer(.get, "/leads?limit=1").json?["next"]?.stringValue)
            let dryRun: HTTPFields = [.stranglerDryRun: "1"]
            typealias Call = (method: HTTPRequest.Method, uri: String, json: String?, headers: HTTPFields)
            let calls: [Call] = [
                (.get, "/leads", nil, [:]),
                (.get, "/leads?limit=1&after=\(cursor)", nil, [:]),
                (.get, "/leads?status=converted", nil, [:]),
                (.get, "/leads?status=working&limit=1", nil, [:]),
                (.get, "/leads?status=won", nil, [:]),
                (.get, "/leads?status=won&limit=900", nil, [:]),
                (.get, "/leads/\(leads.fresh)", nil, [:]),
                (.get, "/leads/\(leads.working)", nil, [:]),
                (.get, "/leads/\(leads.converted)", nil, [:]),
                (.get, "/leads/\(leads.deleted)", nil, [:]),
                (.get, "/leads/x.y", nil, [:]),
                (
                    .post, "/leads",
                    #"{"name":"","email":"no","score":101,"status":"converted","company":5,"convertedAt":"x"}"#, [:]
                ),
                (
                    .post, "/leads",
                    #"{"name":"N","email":"n@lead.example.com","score":2.5,"status":"won","#
                        + #""source":"\#(String(repeating: "s", count: 51))"}"#,
                    [:]
                ),
                (.post, "/leads", #"{"name":"N","email":"n@lead.example.com","score":"high"}"#, [:]),
                (.patch, "/leads/\(leads.converted)", #"{"score":1}"#, [:]),
                (.patch, "/leads/\(leads.working)", #"{"score":1}"#, [.ifMatch: "5"]),
                (.patch, "/leads/\(leads.working)", #"{"score":42,"status":"working"}"#, [:]),
                (.patch, "/leads/\(leads.working)", #"{"name":null}"#, [:]),
                (.delete, "/leads/\(leads.deleted)", nil, [:]),
                (.delete, "/leads/\(leads.fresh)", nil, dryRun),
                (.delete, "/leads/\(leads.fresh)", nil, dryRun.merging([.ifMatch: "1"])),
            ]
            try await service.test { (leadsService: any TestClientProtocol) async throws -> Void in
                for call in calls {
                    let expected = try await monolith.answer(
                        call.method, call.uri, json: call.json, headers: call.headers)
                    #expect(
                        try await leadsService.answer(call.method, call.uri, json: call.json, headers: call.headers)
                            == expected, "\(call.method) \(call.uri)")
                }
                let create = #"{"name":"Dry Run","email":"dry@lead.example.com","score":3.0,"status":"qualified"}"#
                let created = try await leadsService.answer(.post, "/leads", json: create, headers: dryRun)
                let monolithCreated = try await monolith.answer(.post, "/leads", json: create, headers: dryRun)
                #expect(created.status == 201)
                #expect(
                    created.masking(["id", "createdAt", "updatedAt"], location: true)
                        == monolithCreated.masking(["id", "createdAt", "updatedAt"], location: true))
                let change = #"{"status":"disqualified","company":null}"#
                let changed = try await leadsService.answer(
                    .patch, "/leads/\(leads.working)", json: change, headers: dryRun)
                #expect(
                    changed.masking(["updatedAt"])
                        == (try await monolith.answer(.patch, "/leads/\(leads.working)", json: change, headers: dryRun))
                        .masking(["updatedAt"]))
                #expect(changed.headers["etag"] == "\"2\"")
                // Conversion stays in the monolith.
                #expect(try await leadsService.answer(.post, "/leads/\(leads.fresh)/convert", json: "{}").status == 404)
            }
            #expect(try await service.snapshot() == snapshot)
        }
    }

    @Test(arguments: Storage.allCases)
    func followsConversionsAndIgnoresReplays(on storage: Storage) async throws {
        try await withLiveMonolith { monolith, feed in
            let leads = try await Self.sampleLeads(on: monolith)
            let service = try await ServiceUnderTest(
                .leads, feed: feed, postgres: try await storage.database(), pageSize: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.consumer.run() }
                try await service.test { (leadsService: any TestClientProtocol) async throws -> Void in
                    #expect(
                        try await eventually {
                            try await leadsService.answer(.get, "/leads") == (try await monolith.answer(.get, "/leads"))
                        })
                    #expect(
                        try await monolith.answer(.post, "/leads/\(leads.working)/convert", json: "{}").status == 200)
                    #expect(
                        try await eventually {
                            try await leadsService.answer(.get, "/leads/\(leads.working)").json?["status"]?.stringValue
                                == "converted"
                        })
                    #expect(
                        try await leadsService.answer(.get, "/leads/\(leads.working)")
                            == (try await monolith.answer(.get, "/leads/\(leads.working)")))
                }
                group.cancelAll()
            }
            // Every event again, without the checkpoint: nothing changes.
            let before = try await service.snapshot()
            let events = try await HTTPEventFeed(feed).events(after: 0, limit: 1000, wait: 0).events
            try await service.replay(events)
            #expect(try await service.snapshot() == before)
            #expect(service.consumer.status.consumedEvents == service.consumer.status.lastEventID)
        }
    }
}
