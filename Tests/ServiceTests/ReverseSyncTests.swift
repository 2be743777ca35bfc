import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Logging
import Monolith
import NIOCore
import NIOHTTP1
import ProxyTestSupport
import ServiceKit
import StranglerTesting
import Synchronization
import Testing

@testable import ContactsService

/// A live monolith whose store the test also holds (to run reverse sync on it).
func withLiveMonolithStore<T: Sendable>(
    _ body: @Sendable (_ monolith: any TestClientProtocol, _ feed: FeedEndpoint, _ store: CRMStore) async throws -> T
) async throws -> T {
    let store = try await CRMStore.open(path: nil)
    let app = Application(
        router: Monolith.HeadAsGet(buildMonolithRouter(store: store)),
        configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    return try await app.test(.live) { client in
        try await body(client, FeedEndpoint(host: "127.0.0.1", port: try #require(client.port)), store)
    }
}

/// A service's own feed (`GET /events`), parsed.
private func ownFeed(_ client: any TestClientProtocol, after: Int = 0) async throws -> (events: [JSONValue], head: Int)
{
    let answer = try await client.answer(.get, "/events?after=\(after)&limit=1000")
    #expect(answer.status == 200, "\(answer)")
    let json = try #require(answer.json)
    return (json["items"]?.arrayValue ?? [], Int(json["head"]?.numberValue ?? -1))
}

@Suite("Reverse sync: services' own feeds, followed by the monolith")
struct ReverseSyncTests {
    @Test func aServiceFeedsOnlyItsClientsChangesWithItsNameAsOrigin() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed)
            try await service.consumer.catchUp()
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                // Everything applied from the monolith's feed stays out of the service's own feed.
                #expect(try await ownFeed(contacts).head == 0)

                let created = try await contacts.answer(
                    .post, "/contacts",
                    json:
                        #"{"accountId":"\#(crm.acme)","firstName":"Edsger","lastName":"Dijkstra","#
                        + #""email":"ewd@acme.example.com"}"#
                )
                #expect(created.status == 201, "\(created)")
                let id = try #require(created.json?["id"]?.stringValue)
                #expect(
                    try await contacts.answer(.patch, "/contacts/\(id)", json: #"{"title":"Professor"}"#).status == 200)
                // A change that changes nothing, and a dry run, record nothing.
                #expect(
                    try await contacts.answer(.patch, "/contacts/\(id)", json: #"{"title":"Professor"}"#).status == 200)
                #expect(
                    try await contacts.answer(.delete, "/contacts/\(crm.linus)", headers: [.stranglerDryRun: "1"])
                        .status == 204)
                #expect(try await contacts.answer(.delete, "/contacts/\(id)").status == 204)

                let (events, head) = try await ownFeed(contacts)
                #expect(head == 3)
                #expect(
                    events.map { $0["type"]?.stringValue ?? "" } == [
                        "ContactCreated", "ContactUpdated", "ContactDeleted",
                    ])
                #expect(
                    events.allSatisfy {
                        $0["origin"]?.stringValue == "contacts" && $0["aggregatetype"]?.stringValue == "contact"
                            && $0["aggregateid"]?.stringValue == id
                    })
                #expect(events.map { $0["payload"]?["version"]?.numberValue ?? 0 } == [1, 2, 3])
                // The payload of a change is the record's JSON form, as the service answers it.
                #expect(events[0]["payload"]?["email"]?.stringValue == "ewd@acme.example.com")
                #expect(events[1]["payload"]?["title"]?.stringValue == "Professor")

                // Paging and validation as the monolith's feed.
                #expect(try await ownFeed(contacts, after: 2).events.count == 1)
                let bad = try await contacts.answer(.get, "/events?after=-1&limit=5000&wait=99")
                #expect(bad.status == 422 && bad.errorCode == "validation_failed", "\(bad)")
                #expect(
                    Set(bad.json?["error"]?["fields"]?.objectValue?.map(\.key) ?? []) == ["after", "limit", "wait"])
            }
        }
    }

    @Test func aLongPollOnTheServiceFeedWakesWhenAChangeCommits() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed)
            try await service.consumer.catchUp()
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                let started = ContinuousClock.now
                async let polled = contacts.answer(.get, "/events?after=0&wait=20")
                // The write happens while the poll waits (or before it starts: either way it must see it). It goes on
                // a connection of its own: the test client's one connection may be held by the poll.
                let writer = OneShotHTTPClient(host: "127.0.0.1", port: try #require(contacts.port))
                let patched = try await writer.send(
                    .PATCH, "/contacts/\(crm.ada)", headers: ["Content-Type": "application/json"],
                    body: ByteBuffer(string: #"{"title":"Analyst"}"#))
                #expect(patched.status == 200)
                let answer = try await polled
                #expect(answer.json?["items"]?.arrayValue?.count == 1, "\(answer)")
                #expect(ContinuousClock.now - started < .seconds(15))
            }
        }
    }

    @Test func aWriteToTheServiceShowsInTheMonolithAndDoesNotComeBack() async throws {
        try await withLiveMonolithStore { monolith, feed, store in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed)
            try await service.consumer.catchUp()
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                let port = try #require(contacts.port)
                let reverse = try await ReverseSync(
                    store: store, feeds: [ReverseFeed(service: "contacts", url: "http://127.0.0.1:\(port)")],
                    logger: Logger(label: "test.reverse"))
                let monolithHead = Int(
                    try await monolith.answer(.get, "/events?after=0&limit=1").json?["head"]?.numberValue ?? 0)

                // Writes made to the service (as after eliminate).
                let created = try await contacts.answer(
                    .post, "/contacts",
                    json:
                        #"{"accountId":"\#(crm.acme)","firstName":"Barbara","lastName":"Liskov","#
                        + #""email":"liskov@acme.example.com","tags":["clu"]}"#
                )
                let id = try #require(created.json?["id"]?.stringValue)
                #expect(
                    try await contacts.answer(.patch, "/contacts/\(crm.grace)", json: #"{"title":"Commodore"}"#).status
                        == 200)
                #expect(try await contacts.answer(.delete, "/contacts/\(crm.linus)").status == 204)

                #expect(try await reverse.step(service: "contacts") == 3)

                // The monolith's own read endpoints show them, byte for byte as the service answers.
                for path in [
                    "/contacts/\(id)", "/contacts/\(crm.grace)", "/contacts/\(crm.linus)",
                    "/accounts/\(crm.acme)/contacts", "/contacts",
                ] {
                    #expect(try await monolith.answer(.get, path) == (try await contacts.answer(.get, path)), "\(path)")
                }
                #expect(try await monolith.answer(.get, "/contacts/\(crm.grace)").headers["etag"] == "\"3\"")

                // The monolith records them in its feed for the other services, with the service as the origin…
                let relayed =
                    try await monolith.answer(.get, "/events?after=\(monolithHead)&limit=100").json?["items"]?
                    .arrayValue ?? []
                #expect(
                    relayed.map { $0["type"]?.stringValue ?? "" } == [
                        "ContactCreated", "ContactUpdated", "ContactDeleted",
                    ])
                #expect(relayed.allSatisfy { $0["origin"]?.stringValue == "contacts" })

                // …and the service, reading them back from the monolith, changes nothing and records nothing new.
                let before = try await service.snapshot()
                try await service.consumer.catchUp()
                #expect(try await service.snapshot() == before)
                #expect(try await ownFeed(contacts).head == 3)
                // Nothing more to apply: no echo in either direction.
                #expect(try await reverse.step(service: "contacts") == 0)
                let head = Int(
                    try await monolith.answer(.get, "/events?after=0&limit=1").json?["head"]?.numberValue ?? 0)
                #expect(head == monolithHead + 3)

                // The checkpoint is stored with the changes: a restarted reverse sync resumes after them.
                let restarted = try await ReverseSync(
                    store: store, feeds: [ReverseFeed(service: "contacts", url: "http://127.0.0.1:\(port)")],
                    logger: Logger(label: "test.reverse"))
                #expect(try await restarted.step(service: "contacts") == 0)

                // GET /reverse-sync/status says where it is.
                let status = try await Application(router: buildMonolithRouter(store: store, reverseSync: restarted))
                    .test(.router) { client in
                        try await client.answer(.get, "/reverse-sync/status")
                    }
                let entry = try #require(status.json?["feeds"]?.arrayValue?.first)
                #expect(
                    entry["service"]?.stringValue == "contacts" && entry["lastEventId"]?.numberValue == 3
                        && entry["lagEvents"]?.numberValue == 0)
                #expect(entry["lastError"] == .null && entry["running"] == .bool(false))
            }
        }
    }

    @Test func aFeedWithAChangeTheMonolithCannotTakeStopsThereWithTheReason() async throws {
        let cases: [(item: String, fragment: String)] = [
            (
                #"{"id":1,"aggregatetype":"account","aggregateid":"acc_1","type":"AccountCreated","#
                    + #""payload":{"id":"acc_1","version":1},"occurredAt":"t","origin":"contacts"}"#,
                "owns only contact"
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactCreated","#
                    + #""payload":{"id":"con_1","version":1},"occurredAt":"t","origin":"monolith"}"#,
                "origin \"monolith\""
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactCreated","#
                    + #""payload":{"id":"con_1","version":1},"occurredAt":"t","origin":"contacts"}"#,
                "is missing"
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactCreated","#
                    + #""payload":{"id":"con_2","version":1},"occurredAt":"t","origin":"contacts"}"#,
                "not the event's aggregateid"
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactRenamed","#
                    + #""payload":{"id":"con_1","version":1},"occurredAt":"t","origin":"contacts"}"#,
                "unknown event type"
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactCreated","#
                    + #""payload":{"id":"con_1","version":1,"accountId":"acc_nope","firstName":"A","lastName":"B","#
                    + #""email":"a@b.example","phone":null,"title":null,"tags":[],"#
                    + #""createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"},"#
                    + #""occurredAt":"t","origin":"contacts"}"#,
                "FOREIGN KEY"
            ),
            (
                #"{"id":1,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactCreated","#
                    + #""payload":{"id":"con_1","version":1,"accountId":"acc_1","firstName":7,"lastName":"B","#
                    + #""email":"a@b.example","phone":null,"title":null,"tags":[],"createdAt":"x","updatedAt":"x"},"#
                    + #""occurredAt":"t","origin":"contacts"}"#,
                "\"firstName\" is a number"
            ),
            (#"{"id":1,"aggregatetype":"contact"}"#, "lacks one of"),
        ]
        for (item, fragment) in cases {
            let router = Router()
            router.get("/events") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"items":[\#(item)],"next":1,"head":1}"#)))
            }
            try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(
                .live
            ) { fake in
                let store = try await CRMStore.open(path: nil)
                let reverse = try await ReverseSync(
                    store: store,
                    feeds: [ReverseFeed(service: "contacts", url: "http://127.0.0.1:\(try #require(fake.port))")],
                    logger: Logger(label: "test.reverse"))
                do {
                    try await reverse.step(service: "contacts")
                    Issue.record("accepted \(item)")
                } catch {
                    #expect("\(error)".contains(fragment), "\(item): \(error)")
                }
                // Nothing was applied and the checkpoint did not move: the next attempt meets the same event.
                let state = try await store.database.read { db in
                    (
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? -1,
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reverse_sync") ?? -1
                    )
                }
                #expect(state.0 == 0 && state.1 == 0)
            }
        }
    }

}

/// Keeps every log record with the time it was made.
final class RecordingLogHandler: LogHandler, Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var at: ContinuousClock.Instant
    }

    let records = Mutex<[Record]>([])
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        self.records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", at: .now)) }
    }
}

@Suite("Reverse sync: quiet while a service starts or stops beside the monolith")
struct ReverseSyncQuietTests {
    @Test func aFailingFeedIsLoggedOnceAndOnlyAfterTheQuietPeriod() async throws {
        // Bound and never listening: refused for the whole test (a port closed again could be taken meanwhile).
        let closed = try ClosedPort()
        defer { closed.release() }
        let port = closed.port
        let handler = RecordingLogHandler()
        let store = try await CRMStore.open(path: nil)
        let quiet = Duration.milliseconds(700)
        let reverse = try await ReverseSync(
            store: store, feeds: [ReverseFeed(service: "contacts", url: "http://127.0.0.1:\(port)")],
            quietPeriod: quiet,
            logger: Logger(label: "test.reverse") { _ in handler })
        let started = ContinuousClock.now
        let run = Task { try await reverse.run() }
        defer { run.cancel() }
        // The failure is in the status at once; the warning comes once the feed has failed for the quiet period.
        let deadline = ContinuousClock.now + .seconds(20)
        while reverse.lastError(service: "contacts") == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(reverse.lastError(service: "contacts") != nil)
        func warnings() -> [RecordingLogHandler.Record] {
            handler.records.withLock { $0 }.filter { $0.level == .warning }
        }
        while warnings().isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let first = try #require(warnings().first)
        #expect(first.message == "reverse sync failed; retrying until it succeeds")
        #expect(first.at - started >= quiet)
        // Retries go on (100 ms, then doubling), and the same failure is not logged again.
        let retriesUntil = first.at + .seconds(1)
        while ContinuousClock.now < retriesUntil { try await Task.sleep(for: .milliseconds(50)) }
        #expect(warnings().count == 1)
    }
}
