import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import JSON
import Logging
import Monolith
import ProxyTestSupport
import ServiceKit
import StranglerTesting
import Testing

@testable import ContactsService

@Suite("Contacts service: kill -9 and resume", .loadsTheMachine)
struct KillNineTests {
    /// The checkpoint in the service's database file, read from this process while the service writes it.
    static func checkpoint(_ path: String) -> SyncCheckpoint? {
        var configuration = Configuration()
        configuration.readonly = true
        guard let database = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        return try? database.read { db in try SyncCheckpoint.load(db) }
    }

    static func launch(database path: String, feed: FeedEndpoint) throws -> ChildProcess {
        try ChildProcess(
            executable: try #require(StranglerExecutable.url).path,
            arguments: [
                "service", "contacts", "--port", "0", "--db", path, "--feed", feed.description, "--feed-page-size",
                "10",
            ])
    }

    static func killNine(_ process: ChildProcess) {
        process.kill()
    }

    @Test(.enabled(if: StranglerExecutable.url != nil, "needs .build/debug/strangler"))
    func killedMidBackfillAndMidTailItResumesWithNothingLostOrAppliedTwice() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("contacts.sqlite").path
        let app = try await buildMonolithApplication(
            configuration: .init(port: 0, databasePath: nil, seedContacts: 1000), logger: Logger(label: "test.monolith")
        )

        try await app.test(.live) { monolith in
            let feed = FeedEndpoint(host: "127.0.0.1", port: try #require(monolith.port))
            let seeded = try await HTTPEventFeed(feed).events(after: 0, limit: 1, wait: 0).head

            // Mid-backfill: killed once some pages are committed, long before the seed's last event.
            let backfilling = try Self.launch(database: path, feed: feed)
            defer { if backfilling.isRunning { Self.killNine(backfilling) } }
            #expect(await eventually { (Self.checkpoint(path)?.lastEventID ?? 0) > 0 })
            Self.killNine(backfilling)
            let killedAt = try #require(Self.checkpoint(path))
            #expect(killedAt.lastEventID > 0 && killedAt.lastEventID < seeded)
            #expect(killedAt.consumedEvents == killedAt.lastEventID)

            // Mid-tail: restarted, caught up, then killed while the monolith keeps writing.
            let tailing = try Self.launch(database: path, feed: feed)
            defer { if tailing.isRunning { Self.killNine(tailing) } }
            #expect(await eventually(within: .seconds(60)) { (Self.checkpoint(path)?.lastEventID ?? 0) >= seeded })
            let contacts = try #require(
                try await monolith.answer(.get, "/contacts?limit=40").json?["items"]?.arrayValue
            ).compactMap { $0["id"]?.stringValue }
            for (index, id) in contacts.enumerated() {
                if index == contacts.count / 2 { Self.killNine(tailing) }
                #expect(
                    try await monolith.answer(.patch, "/contacts/\(id)", json: #"{"title":"Tail \#(index)"}"#).status
                        == 200)
            }
            if tailing.isRunning { Self.killNine(tailing) }

            // Resumed in process on the same file: every event once, and the same data as the monolith.
            let service = try await ServiceUnderTest(feed: feed, path: path)
            let resumedFrom = service.consumer.status.lastEventID
            #expect(resumedFrom >= seeded)
            try await service.consumer.catchUp()
            let status = service.consumer.status
            #expect(status.lastEventID == status.head && status.consumedEvents == status.lastEventID)
            try await service.test { (client: any TestClientProtocol) async throws -> Void in
                var uri = "/contacts?limit=200"
                while true {
                    let expected = try await monolith.answer(.get, uri)
                    // The seed's empty titles come back as null from the service (the demo's deliberate difference).
                    #expect(
                        try await client.answer(.get, uri).withEmptyTitlesAsNull == expected.withEmptyTitlesAsNull,
                        "\(uri)")
                    guard let next = expected.json?["next"]?.stringValue else { break }
                    uri = "/contacts?limit=200&after=\(next)"
                }
            }
        }
    }
}
