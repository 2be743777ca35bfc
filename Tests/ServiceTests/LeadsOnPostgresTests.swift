import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Logging
import Monolith
import PostgresSupport
import ProxyTestSupport
import ServiceKit
import StranglerTesting
import Testing

@testable import LeadsService

/// The leads service with its tables on PostgreSQL (`strangler service leads --db postgres://…`), against a real
/// server: what it does on SQLite it does there (LeadsServiceTests runs those cases on both), and what only a shared
/// server brings: a second process on the same database, concurrent writers, and a schema of its own.
@Suite("Leads service on PostgreSQL")
struct LeadsOnPostgresTests {
    /// The service's own feed (`GET /events`), parsed.
    static func ownFeed(_ client: any TestClientProtocol) async throws -> (events: [JSONValue], head: Int) {
        let answer = try await client.answer(.get, "/events?after=0&limit=1000")
        #expect(answer.status == 200, "\(answer)")
        let json = try #require(answer.json)
        return (json["items"]?.arrayValue ?? [], Int(json["head"]?.numberValue ?? -1))
    }

    @Test func clientWritesReachTheMonolithByReverseSyncAndDoNotComeBack() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await withLiveMonolithStore { monolith, feed, store in
            let leads = try await LeadsServiceTests.sampleLeads(on: monolith)
            let service = try await ServiceUnderTest(.leads, feed: feed, postgres: url)
            try await service.consumer.catchUp()
            try await service.test { (leadsService: any TestClientProtocol) async throws -> Void in
                let port = try #require(leadsService.port)
                let reverse = try await ReverseSync(
                    store: store, feeds: [ReverseFeed(service: "leads", url: "http://127.0.0.1:\(port)")],
                    logger: Logger(label: "test.reverse"))
                // Events the service applied from the monolith are not in its own feed.
                #expect(try await Self.ownFeed(leadsService).head == 0)

                let created = try await leadsService.answer(
                    .post, "/leads", json: #"{"name":"Post Gres","email":"pg@lead.example.com","score":12}"#)
                #expect(created.status == 201, "\(created)")
                let id = try #require(created.json?["id"]?.stringValue)
                let changed = try await leadsService.answer(
                    .patch, "/leads/\(leads.working)", json: #"{"status":"qualified"}"#, headers: [.ifMatch: "1"])
                #expect(changed.status == 200 && changed.headers["etag"] == "\"2\"", "\(changed)")
                #expect(try await leadsService.answer(.delete, "/leads/\(leads.fresh)").status == 204)
                // A stale If-Match and a missing lead answer as on SQLite.
                #expect(
                    try await leadsService.answer(
                        .patch, "/leads/\(leads.working)", json: #"{"score":1}"#, headers: [.ifMatch: "1"]
                    ).status == 409)
                #expect(try await leadsService.answer(.get, "/leads/\(leads.fresh)").status == 404)

                let own = try await Self.ownFeed(leadsService)
                #expect(
                    own.events.map { $0["type"]?.stringValue ?? "" } == ["LeadCreated", "LeadUpdated", "LeadDeleted"])
                #expect(own.events.allSatisfy { $0["origin"]?.stringValue == "leads" })
                #expect(own.head == 3)

                #expect(try await reverse.step(service: "leads") == 3)
                for path in ["/leads/\(id)", "/leads/\(leads.working)", "/leads/\(leads.fresh)", "/leads"] {
                    #expect(
                        try await monolith.answer(.get, path) == (try await leadsService.answer(.get, path)), "\(path)")
                }
                // Read back from the monolith's feed, the service's own changes change nothing and echo nothing.
                let before = try await service.snapshot()
                try await service.consumer.catchUp()
                #expect(try await service.snapshot() == before)
                #expect(try await Self.ownFeed(leadsService).head == 3)
                #expect(try await reverse.step(service: "leads") == 0)
            }
        }
    }

    /// A second process on the same database (a restart, or another instance of the service) migrates nothing, resumes
    /// at the stored checkpoint, and sees the first one's writes.
    @Test func aSecondProcessOnTheSameDatabaseResumesAtTheCheckpoint() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await withLiveMonolith { monolith, feed in
            _ = try await LeadsServiceTests.sampleLeads(on: monolith)
            let first = try await ServiceUnderTest(.leads, feed: feed, postgres: url)
            try await first.consumer.catchUp()
            let checkpoint = first.consumer.status.lastEventID
            #expect(checkpoint > 0)
            let second = try await ServiceUnderTest(.leads, feed: feed, postgres: url)
            #expect(second.consumer.status.lastEventID == checkpoint)
            #expect(try await second.snapshot() == (try await first.snapshot()))
            #expect(try await second.consumer.step() == 0)
            first.database.close()
            second.database.close()
        }
    }

    /// Writers in parallel: every change commits with its event, and the own feed's ids come out contiguous and in
    /// commit order (the service's write lock), so a reader paging through it never skips one.
    @Test func concurrentWritesEachCommitWithTheirEventInOrder() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await withLiveMonolith { _, feed in
            let service = try await ServiceUnderTest(.leads, feed: feed, postgres: url)
            try await service.test { (leadsService: any TestClientProtocol) async throws -> Void in
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<24 {
                        group.addTask {
                            let answer = try await leadsService.answer(
                                .post, "/leads",
                                json: #"{"name":"Writer \#(index)","email":"w\#(index)@lead.example.com"}"#)
                            return answer.json?["id"]?.stringValue ?? "status \(answer.status)"
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.insert($1) }
                }
                #expect(ids.count == 24 && ids.allSatisfy { $0.hasPrefix("led_") }, "\(ids)")
                let own = try await Self.ownFeed(leadsService)
                #expect(own.events.compactMap { $0["id"]?.numberValue }.map { Int($0) } == Array(1...24))
                #expect(Set(own.events.compactMap { $0["aggregateid"]?.stringValue }) == ids)
                let listed = try await leadsService.answer(.get, "/leads?limit=200")
                let listedIDs = listed.json?["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
                #expect(listedIDs == ids.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }))
            }
        }
    }

    /// A service that checks other tables as its records change stays on SQLite, and says so.
    @Test func servicesWithoutPostgreSQLTablesAreRefused() async throws {
        let location = try StoreLocation.parse(try await PostgresServer.shared().freshDatabase())
        await #expect {
            _ = try await ExtractedService(
                name: "contacts", migrations: { _ in }, projection: RecordProjection<Lead>(),
                routes: { _, _ in }
            ).openDatabase(postgres: location, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("the contacts service runs on SQLite only")
        }
    }
}
