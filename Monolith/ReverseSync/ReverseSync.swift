public import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTracing
public import Logging
public import ServiceLifecycle
import Synchronization
public import Tracing

/// Reverse sync: the monolith follows each extracted service's own feed (`GET /events` on the service) and
/// applies the changes clients made there to its own tables, so that the monolith's other features (pipeline,
/// an account's contacts, lead conversion) keep reading current data once a write route is eliminated.
///
/// - Each page is applied in **one transaction that also moves the service's checkpoint** (`reverse_sync`), so
///   a crash loses nothing and applies nothing twice.
/// - A change is applied only when its version is newer than the monolith's row; an older or equal one (the
///   monolith's own change that the service already had) changes nothing.
/// - Every applied change is recorded in the monolith's outbox with `origin` = the service's name: the other
///   services see it in the monolith's feed, and the service that made it recognises it as its own (its version is
///   not newer) and records nothing, so nothing echoes back and forth. Events whose origin is not the service are
/// refused.
/// - A change the monolith cannot take (a payload without the entity's fields, a foreign key it does not have)
///   stops that feed at that event, with the reason in `GET /reverse-sync/status`, and is retried: nothing is skipped.
public final class ReverseSync: Service, Sendable {
    struct FeedState: Sendable {
        var running = false
        var lastEventID: Int64 = 0
        var lastOccurredAt: String?
        var consumedEvents: Int64 = 0
        var head: Int64?
        var lastError: String?
    }

    let store: CRMStore
    public let feeds: [ReverseFeed]
    let pageSize: Int
    let longPollSeconds: Int
    /// How long a feed may fail before it is logged: services that start or stop beside the monolith (`strangler up`)
    /// are unreachable for a moment, and that is not worth a warning. The failure is in the feed's status at once.
    let quietPeriod: Duration
    let httpClient: HTTPClient
    let logger: Logger
    /// A consumer span per event applied, linked to the span of the service's request that made it.
    let tracer: (any Tracer)?
    private let states: Mutex<[String: FeedState]>

    /// Follows `feeds` for `store`, through `httpClient` (which its owner shuts down; the process's own client when
    /// none is given).
    public init(
        store: CRMStore, feeds: [ReverseFeed], pageSize: Int = 500, longPollSeconds: Int = 25,
        quietPeriod: Duration = .seconds(3),
        httpClient: HTTPClient? = nil, logger: Logger, tracer: (any Tracer)? = nil
    ) async throws {
        self.tracer = tracer
        self.store = store
        self.quietPeriod = quietPeriod
        self.feeds = feeds
        self.pageSize = pageSize
        self.longPollSeconds = longPollSeconds
        self.httpClient = httpClient ?? FeedClient.processClient
        self.logger = logger
        let services = feeds.map(\.service)
        let states = try await store.database.read { db in
            var states: [String: FeedState] = [:]
            for service in services {
                let checkpoint = try ReverseCheckpoint.load(service: service, db)
                var state = FeedState()
                state.lastEventID = checkpoint.lastEventID
                state.lastOccurredAt = checkpoint.lastOccurredAt
                state.consumedEvents = checkpoint.consumedEvents
                states[service] = state
            }
            return states
        }
        self.states = Mutex(states)
    }

    /// Follows every feed until the task is cancelled or the process shuts down gracefully. A feed's failures are
    /// recorded in its status and retried with a growing pause (up to 5 s); one failing feed never stops another.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for feed in self.feeds {
                    group.addTask { await self.follow(feed) }
                }
            }
        }
    }

    private func follow(_ feed: ReverseFeed) async {
        self.update(feed) { $0.running = true }
        defer { self.update(feed) { $0.running = false } }
        var pause = Duration.milliseconds(100)
        var failingSince: ContinuousClock.Instant?
        var logged: String?
        while !Task.isCancelled {
            do {
                let state = self.state(of: feed)
                let caughtUp = state.head.map { state.lastEventID >= $0 } ?? false
                try await self.step(feed, wait: caughtUp ? self.longPollSeconds : 0)
                if logged != nil {
                    self.logger.info("reverse sync recovered", metadata: ["service": "\(feed.service)"])
                }
                failingSince = nil
                logged = nil
                pause = .milliseconds(100)
            } catch {
                if Task.isCancelled { return }
                let message = "\(error)"
                self.update(feed) { $0.lastError = message }
                let since = failingSince ?? .now
                failingSince = since
                // Logged once per distinct failure (a service that is down would otherwise log every retry), and only
                // once it has lasted the quiet period.
                if logged != message, ContinuousClock.now - since >= self.quietPeriod {
                    logged = message
                    self.logger.warning(
                        "reverse sync failed; retrying until it succeeds",
                        metadata: ["service": "\(feed.service)", "error": "\(message)"])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }

    /// Fetches one page of `feed` after its checkpoint (long-polling up to `wait` seconds when there is none) and
    /// applies it; returns how many events it applied.
    @discardableResult
    public func step(service: String, wait: Int = 0) async throws -> Int {
        guard let feed = self.feeds.first(where: { $0.service == service }) else {
            throw ReverseSyncError(description: "reverse sync does not follow \"\(service)\"")
        }
        return try await self.step(feed, wait: wait)
    }

    /// Steps every feed until each has applied everything its service had when asked (tests, scripts).
    public func catchUp() async throws {
        for feed in self.feeds {
            repeat {
                try await self.step(feed, wait: 0)
            } while !(self.state(of: feed).head.map { self.state(of: feed).lastEventID >= $0 } ?? false)
        }
    }

    @discardableResult
    private func step(_ feed: ReverseFeed, wait: Int) async throws -> Int {
        let after = self.state(of: feed).lastEventID
        let path = "/events?after=\(after)&limit=\(self.pageSize)&wait=\(wait)"
        let answer = try await feed.client.get(path, wait: wait, client: self.httpClient, logger: self.logger)
        guard answer.status == 200 else {
            throw ReverseSyncError(
                description:
                    "\(feed.service)'s feed at \(feed.url) answered \(answer.status): "
                    + String(decoding: answer.body.prefix(200), as: UTF8.self)
            )
        }
        let page = try ServiceFeedPage(json: answer.body, service: feed.service)
        guard page.head >= after else {
            throw ReverseSyncError(
                description:
                    "\(feed.service)'s newest event (\(page.head)) is older than the monolith's checkpoint (\(after)): "
                    + "was the service's database replaced?"
            )
        }
        let events = page.events
        let service = feed.service
        let aggregateType = feed.aggregateType
        let tracer = self.tracer
        let checkpoint = try await self.store.write { db, outbox in
            var checkpoint = try ReverseCheckpoint.load(service: service, db)
            for event in events where event.id > checkpoint.lastEventID {
                // The relayed event keeps the trace of the service's request.
                outbox.traceparent = event.traceparent
                let span = tracer.map {
                    ConsumerSpan.start(
                        $0, eventType: event.type, eventID: event.id,
                        aggregate: "\(event.aggregateType) \(event.aggregateID)", feed: "\(service) events",
                        traceparent: event.traceparent, consumer: "monolith")
                }
                try ConsumerSpan.around(span) {
                    try ServiceChange.apply(event, service: service, aggregateType: aggregateType, db, &outbox)
                }
                checkpoint.lastEventID = event.id
                checkpoint.lastOccurredAt = event.occurredAt
                checkpoint.consumedEvents += 1
            }
            try checkpoint.save(service: service, db)
            return checkpoint
        }
        self.update(feed) { state in
            state.lastEventID = checkpoint.lastEventID
            state.lastOccurredAt = checkpoint.lastOccurredAt
            state.consumedEvents = checkpoint.consumedEvents
            state.head = max(page.head, checkpoint.lastEventID)
            state.lastError = nil
        }
        return events.count
    }

    /// The last failure of a feed, nil while it works (`GET /reverse-sync/status` shows the same).
    public func lastError(service: String) -> String? {
        self.states.withLock { $0[service]?.lastError }
    }

    private func state(of feed: ReverseFeed) -> FeedState {
        self.states.withLock { $0[feed.service] ?? FeedState() }
    }

    private func update(_ feed: ReverseFeed, _ change: (inout FeedState) -> Void) {
        self.states.withLock { states in change(&states[feed.service, default: FeedState()]) }
    }

    /// `GET /reverse-sync/status`: per followed service, whether its feed is being followed, where the monolith is
    /// in it, the service's newest event as of the last answer, the lag, and the last failure.
    func writeStatus(to writer: inout JSONWriter) {
        let states = self.states.withLock { $0 }
        writer.beginObject()
        writer.key("feeds")
        writer.beginArray()
        for feed in self.feeds {
            let state = states[feed.service] ?? FeedState()
            writer.beginObject()
            writer.field("service", feed.service)
            writer.field("url", feed.url)
            writer.key("running")
            writer.value(state.running)
            writer.field("lastEventId", state.lastEventID)
            writer.field("head", state.head)
            writer.field("lagEvents", state.head.map { max(0, $0 - state.lastEventID) })
            writer.field("consumedEvents", state.consumedEvents)
            writer.field("lastOccurredAt", state.lastOccurredAt)
            writer.field("lastError", state.lastError)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
    }
}

/// Why reverse sync could not take a page; shown as the feed's `lastError`.
public struct ReverseSyncError: Error, CustomStringConvertible {
    public var description: String
}

/// The monolith's place in one service's feed, stored with the changes it covers.
struct ReverseCheckpoint: Sendable {
    var lastEventID: Int64 = 0
    var lastOccurredAt: String?
    var consumedEvents: Int64 = 0

    static func load(service: String, _ db: Database) throws -> ReverseCheckpoint {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT lastEventId, lastOccurredAt, consumedEvents FROM reverse_sync WHERE service = ?",
                arguments: [service])
        else { return ReverseCheckpoint() }
        return ReverseCheckpoint(
            lastEventID: row["lastEventId"], lastOccurredAt: row["lastOccurredAt"],
            consumedEvents: row["consumedEvents"])
    }

    func save(service: String, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO reverse_sync (service, lastEventId, lastOccurredAt, consumedEvents) VALUES (?, ?, ?, ?)
                ON CONFLICT(service) DO UPDATE SET lastEventId = excluded.lastEventId,
                    lastOccurredAt = excluded.lastOccurredAt, consumedEvents = excluded.consumedEvents
                """,
            arguments: [service, self.lastEventID, self.lastOccurredAt, self.consumedEvents])
    }
}
