import Foundation
import GRDB
import JSON
import Logging
import ServiceKit
import Synchronization
import Testing

/// A feed held in memory: pages its events as the monolith's `GET /events` does, with a head that can be set apart.
final class MemoryFeed: EventFeed {
    let events: Mutex<[FeedEvent]>
    let head: Mutex<Int64?>

    init(_ events: [FeedEvent], head: Int64? = nil) {
        self.events = Mutex(events)
        self.head = Mutex(head)
    }

    func events(after: Int64, limit: Int, wait: Int) async throws -> FeedPage {
        let all = self.events.withLock { $0 }
        let page = Array(all.filter { $0.id > after }.prefix(limit))
        let head = self.head.withLock { $0 } ?? all.last?.id ?? 0
        return FeedPage(events: page, next: page.last?.id ?? after, head: head)
    }
}

/// Projects `note` events into a `notes` table, versioned as the services' projections are.
struct NoteProjection: EventProjection {
    func apply(_ event: FeedEvent, _ db: Database) throws {
        guard event.aggregateType == "note" else { return }
        guard let version = event.version else { throw ProjectionError(event: event, problem: "no version") }
        if event.isDeletion {
            try VersionedRecords.delete(event.aggregateID, version: version, from: "notes", db)
            return
        }
        guard try VersionedRecords.isNewer(version, id: event.aggregateID, in: "notes", db) else { return }
        guard let text = event.payload["text"]?.stringValue else {
            throw ProjectionError(event: event, problem: "no text")
        }
        try db.execute(
            sql: "INSERT OR REPLACE INTO notes (id, version, text) VALUES (?, ?, ?)",
            arguments: [event.aggregateID, version, text])
    }
}

@Suite("ServiceKit: the feed consumer, its checkpoint and versioned records")
struct FeedConsumerTests {
    static func note(
        _ id: Int64, _ note: String, version: Int64, text: String? = "t", type: String = "NoteChanged"
    )
        -> FeedEvent
    {
        var payload: [(key: String, value: JSONValue)] = [("id", .string(note)), ("version", .number(Double(version)))]
        if let text { payload.append(("text", .string(text))) }
        return FeedEvent(
            id: id, aggregateType: "note", aggregateID: note, type: type, payload: .object(payload),
            occurredAt: "2026-01-01T00:00:0\(id % 10).000Z")
    }

    static func database() async throws -> ServiceDatabase {
        try await ServiceDatabase.open(path: nil, origin: "notes") { migrator in
            migrator.registerMigration("notes v1") { db in
                try db.execute(sql: "CREATE TABLE notes (id TEXT PRIMARY KEY, version INTEGER NOT NULL, text TEXT)")
            }
        }
    }

    static func notes(_ database: ServiceDatabase) async throws -> [String] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, version, text FROM notes ORDER BY id").map {
                "\($0["id"] as String) v\($0["version"] as Int64) \($0["text"] as String)"
            }
        }
    }

    @Test func pagesAreAppliedWithTheCheckpointAndOlderVersionsChangeNothing() async throws {
        let feed = MemoryFeed([
            Self.note(1, "a", version: 1, text: "first"), Self.note(2, "b", version: 1),
            FeedEvent(
                id: 3, aggregateType: "other", aggregateID: "x", type: "OtherChanged", payload: .object([]),
                occurredAt: "2026-01-01T00:00:03.000Z"),
            Self.note(4, "a", version: 3, text: "third"), Self.note(5, "a", version: 2, text: "stale"),
            Self.note(6, "b", version: 2, type: "NoteDeleted"), Self.note(7, "b", version: 1, text: "back?"),
        ])
        let database = try await Self.database()
        let consumer = try await FeedConsumer(
            database: database, feed: feed, projection: NoteProjection(), pageSize: 2, logger: Logger(label: "test"))
        #expect(consumer.status.lastEventID == 0 && consumer.status.head == nil && !consumer.status.isCaughtUp)
        #expect(try await consumer.step() == 2)
        #expect(consumer.status.lastEventID == 2 && consumer.status.head == 7 && consumer.status.lagEvents == 5)
        try await consumer.catchUp()
        // The stale version 2 of `a` and the older `b` after its deletion (the tombstone) are passed over.
        #expect(try await Self.notes(database) == ["a v3 third"])
        let status = consumer.status
        #expect(status.isCaughtUp && status.lagEvents == 0 && status.lagSeconds() == 0)
        #expect(status.consumedEvents == 7 && status.lastOccurredAt == "2026-01-01T00:00:07.000Z")
        let stored = try await database.read { db in try SyncCheckpoint.load(db) }
        #expect(stored.lastEventID == 7 && stored.consumedEvents == 7 && stored.lastOccurredAt == status.lastOccurredAt)

        // The same events again (a page delivered twice) change nothing, and the count does not move.
        let again = try await consumer.apply(feed.events.withLock { $0 })
        #expect(again.consumedEvents == 7 && again.lastEventID == 7)
        // A new consumer on the same database starts from the stored checkpoint.
        let restarted = try await FeedConsumer(
            database: database, feed: feed, projection: NoteProjection(), logger: Logger(label: "test"))
        #expect(restarted.status.lastEventID == 7 && restarted.status.consumedEvents == 7)
    }

    @Test func aPageThatCannotBeAppliedLeavesNothingAndTheCheckpointInPlace() async throws {
        let feed = MemoryFeed([Self.note(1, "a", version: 1), Self.note(2, "b", version: 1, text: nil)])
        let database = try await Self.database()
        let consumer = try await FeedConsumer(
            database: database, feed: feed, projection: NoteProjection(), logger: Logger(label: "test"))
        await #expect(throws: ProjectionError.self) { try await consumer.step() }
        #expect(try await Self.notes(database).isEmpty)
        #expect(try await database.read { db in try SyncCheckpoint.load(db) }.lastEventID == 0)
        #expect(consumer.status.lastEventID == 0)
    }

    @Test func aFeedWhoseHeadIsBehindTheCheckpointIsRefused() async throws {
        let feed = MemoryFeed([Self.note(1, "a", version: 1), Self.note(2, "a", version: 2)])
        let database = try await Self.database()
        let consumer = try await FeedConsumer(
            database: database, feed: feed, projection: NoteProjection(), logger: Logger(label: "test"))
        try await consumer.catchUp()
        feed.events.withLock { $0 = [] }
        feed.head.withLock { $0 = 1 }
        let error = await #expect(throws: FeedBehindCheckpoint.self) { try await consumer.step() }
        #expect(error?.head == 1 && error?.checkpoint == 2)
        #expect(error.map { "\($0)" }?.contains("was the monolith's database replaced?") == true)
    }

    @Test func lagInSecondsIsTheAgeOfTheLastAppliedEvent() async throws {
        let feed = MemoryFeed([Self.note(1, "a", version: 1)], head: 3)
        let database = try await Self.database()
        let consumer = try await FeedConsumer(
            database: database, feed: feed, projection: NoteProjection(), logger: Logger(label: "test"))
        try await consumer.step()
        let status = consumer.status
        #expect(status.lagEvents == 2 && !status.isCaughtUp)
        let now = try #require(ServiceTime.parse("2026-01-01T00:00:11.500Z"))
        #expect(status.lagSeconds(now: now) == 10.5)
        var output = JSONOutput()
        status.write(to: &output, now: now)
        let json = try JSONParser.parse(output.bytes)
        #expect(
            json.objectValue?.map(\.key) == [
                "lastEventId", "head", "lagEvents", "lagSeconds", "consumedEvents", "lastOccurredAt", "lastError",
            ])
        #expect(json["lagSeconds"] == .number(10.5) && json["lastError"] == .null)
    }
}

@Suite("ServiceKit: configuration, feed pages, cursors")
struct ServiceKitValueTests {
    @Test func configurationDefaultsArePerService() {
        let contacts = ServiceConfiguration(name: "contacts")
        #expect(contacts.port == 8082 && contacts.host == "127.0.0.1" && contacts.databasePath == nil)
        #expect(contacts.feedPageSize == 500 && contacts.longPollSeconds == 25 && contacts.feed == nil)
        #expect(ServiceConfiguration(name: "deals").port == 8084)
        #expect(ServiceConfiguration(name: "other").port == 0 && ServiceConfiguration(name: "leads", port: 1).port == 1)
        #expect(ServiceConfiguration.defaultDatabasePath(for: "leads") == ".strangler/leads.sqlite")
    }

    @Test func feedEndpointsAreHTTPOriginsOnly() {
        #expect(FeedEndpoint(url: "http://127.0.0.1:8081") == FeedEndpoint(host: "127.0.0.1", port: 8081))
        #expect(FeedEndpoint(url: "http://monolith/") == FeedEndpoint(host: "monolith", port: 80))
        #expect(FeedEndpoint(host: "localhost", port: 9).description == "http://localhost:9")
        for text in ["https://x:1", "ftp://x:1", "http://x:1/events", "http://x:1?a=b", "http://:1", "x:1", ""] {
            #expect(FeedEndpoint(url: text) == nil, "\(text)")
        }
    }

    @Test func feedPagesAreReadFromTheFeedsJSON() throws {
        let page = try #require(
            FeedPage(
                json: try JSONParser.parse(
                    #"{"items":[{"id":4,"aggregatetype":"contact","aggregateid":"con_1","type":"ContactDeleted","#
                        + #""payload":{"id":"con_1","version":3,"deletedAt":"t"},"occurredAt":"t"}],"next":4,"head":9}"#
                )))
        #expect(page.next == 4 && page.head == 9 && page.events.count == 1)
        let event = try #require(page.events.first)
        #expect(event.id == 4 && event.aggregateID == "con_1" && event.origin == "monolith")
        #expect(event.version == 3 && event.isDeletion)
        #expect(FeedPage(json: try JSONParser.parse(#"{"items":[],"next":0}"#)) == nil)
        #expect(FeedPage(json: try JSONParser.parse(#"{"items":[{"id":1}],"next":1,"head":1}"#)) == nil)
    }

    @Test func cursorsAreBase64URLOfWellFormedIDs() {
        let id = "con_01JD8X7Q2M4B9T5KZ3WQ"
        let cursor = PageQuery.cursor(for: id)
        #expect(!cursor.contains("=") && !cursor.contains("+") && !cursor.contains("/"))
        #expect(PageQuery.id(fromCursor: cursor) == id)
        #expect(PageQuery.cursor(for: "a") == "YQ")
        #expect(PageQuery.cursor(for: "??>") == "Pz8-")
        // Only ids the API could have made come back out of a cursor.
        #expect(PageQuery.id(fromCursor: PageQuery.cursor(for: "a b")) == nil)
        #expect(PageQuery.id(fromCursor: "!!!") == nil)
        #expect(PageQuery.id(fromCursor: String(repeating: "Q", count: 200)) == nil)
        let made = RecordID.make(prefix: "con")
        #expect(made.hasPrefix("con_") && made.count == 24 && RecordID.isWellFormed(made))
        #expect(!RecordID.isWellFormed("") && !RecordID.isWellFormed("con-1") && RecordID.isWellFormed("A_z9"))
    }
}
