public import Foundation
import GRDB
import HTTPTracing
public import Logging
public import ServiceLifecycle
import Synchronization
public import Tracing

/// Keeps a service's database in step with the monolith: a backfill from the start of the feed (or from the
/// stored checkpoint), then a tail with long polls.
///
/// Each page of events is applied in **one transaction that also moves the checkpoint**, so a crash at any
/// moment (`kill -9`) leaves either the whole page with its checkpoint or neither: on restart the consumer
/// continues after the last committed page, and no event is lost or applied twice. Events at or before the
/// checkpoint are skipped, and the projection ignores versions it already has, so a page delivered twice
/// changes nothing.
///
/// ```swift
/// let client = HTTPClient.makeToolkitClient()
/// let feed = HTTPEventFeed(endpoint, client: client, logger: logger)
/// let consumer = try await FeedConsumer(
///     database: database, feed: feed, projection: RecordProjection<Contact>(), logger: logger)
/// try await ServiceGroup(services: [HTTPClientService(client), consumer, app], logger: logger).run()
/// ```
public final class FeedConsumer: Service, Sendable {
    private let database: ServiceDatabase
    private let feed: any EventFeed
    private let projection: any EventProjection
    private let pageSize: Int
    private let longPollSeconds: Int
    private let logger: Logger
    private let state: Mutex<SyncStatus>
    /// A consumer span per event applied, linked to the span of the request that wrote it; nil: none.
    private let tracer: (any Tracer)?

    public init(
        database: ServiceDatabase, feed: any EventFeed, projection: any EventProjection, pageSize: Int = 500,
        longPollSeconds: Int = 25,
        logger: Logger, tracer: (any Tracer)? = nil
    ) async throws {
        self.tracer = tracer
        self.database = database
        self.feed = feed
        self.projection = projection
        self.pageSize = pageSize
        self.longPollSeconds = longPollSeconds
        self.logger = logger
        let checkpoint: SyncCheckpoint
        if let store = database.postgres {
            guard projection is any PostgresEventProjection else {
                throw PostgresServiceFailure(
                    "\(database.origin) runs on PostgreSQL, but its projection (\(type(of: projection))) applies events "
                        + "to SQLite only")
            }
            checkpoint = try await store.transaction(writing: false) { try await $0.checkpoint() }
        } else {
            checkpoint = try await database.read { db in try SyncCheckpoint.load(db) }
        }
        self.state = Mutex(SyncStatus(checkpoint: checkpoint))
    }

    /// Where the consumer is, for `GET /sync/status`.
    public var status: SyncStatus { self.state.withLock { $0 } }

    /// Backfills, then tails until the task is cancelled or the process shuts down gracefully. Feed failures
    /// are logged and retried with a growing pause (up to 5 s).
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var pause = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    let caughtUp = self.status.isCaughtUp
                    try await self.step(wait: caughtUp ? self.longPollSeconds : 0)
                    pause = .milliseconds(100)
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    self.state.withLock { $0.lastError = "\(error)" }
                    self.logger.warning(
                        "event feed failed; retrying", metadata: ["error": "\(error)", "pause": "\(pause)"])
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(5))
                }
            }
        }
    }

    /// Fetches one page after the checkpoint (long-polling up to `wait` seconds when there is none) and applies
    /// it; returns how many events it applied.
    @discardableResult
    public func step(wait: Int = 0) async throws -> Int {
        let after = self.status.lastEventID
        let page = try await self.feed.events(after: after, limit: self.pageSize, wait: wait)
        guard page.head >= after else { throw FeedBehindCheckpoint(head: page.head, checkpoint: after) }
        let checkpoint = try await self.apply(page.events)
        self.state.withLock { state in
            state.lastEventID = checkpoint.lastEventID
            state.lastOccurredAt = checkpoint.lastOccurredAt
            state.consumedEvents = checkpoint.consumedEvents
            state.head = max(page.head, checkpoint.lastEventID)
            state.lastError = nil
        }
        return page.events.count
    }

    /// Steps until the checkpoint reaches the head the feed reports (tests, and `reconcile` later).
    public func catchUp() async throws {
        repeat { try await self.step() } while !self.status.isCaughtUp
    }

    /// The consumer span of applying `event` (nil without a tracer).
    static func span(_ tracer: (any Tracer)?, _ event: FeedEvent, _ service: String) -> (any Span)? {
        tracer.map {
            ConsumerSpan.start(
                $0, eventType: event.type, eventID: event.id, aggregate: "\(event.aggregateType) \(event.aggregateID)",
                feed: "\(event.origin) events", traceparent: event.traceparent, consumer: service)
        }
    }

    /// Applies `events` and moves the checkpoint past them, in one transaction; events at or before the
    /// stored checkpoint are skipped.
    public func apply(_ events: [FeedEvent]) async throws -> SyncCheckpoint {
        let (tracer, service) = (self.tracer, self.database.origin)
        if let store = self.database.postgres, let projection = self.projection as? any PostgresEventProjection {
            // The service's write lock too: the projection's rows and a client's change never interleave.
            return try await store.transaction(writing: true) { transaction in
                var checkpoint = try await transaction.checkpoint()
                for event in events where event.id > checkpoint.lastEventID {
                    try await ConsumerSpan.around(Self.span(tracer, event, service)) {
                        try await projection.apply(event, transaction)
                    }
                    checkpoint.lastEventID = event.id
                    checkpoint.lastOccurredAt = event.occurredAt
                    checkpoint.consumedEvents += 1
                }
                try await transaction.save(checkpoint)
                return checkpoint
            }
        }
        return try await self.database.write { [projection] db in
            var checkpoint = try SyncCheckpoint.load(db)
            for event in events where event.id > checkpoint.lastEventID {
                try ConsumerSpan.around(Self.span(tracer, event, service)) {
                    try projection.apply(event, db)
                }
                checkpoint.lastEventID = event.id
                checkpoint.lastOccurredAt = event.occurredAt
                checkpoint.consumedEvents += 1
            }
            try checkpoint.save(db)
            return checkpoint
        }
    }
}

/// The feed's newest event is older than the service's checkpoint: the monolith's database was replaced (or the
/// service points at another monolith). The consumer refuses to guess; `/sync/status` shows this as `lastError`.
public struct FeedBehindCheckpoint: Error, CustomStringConvertible {
    public var head: Int64
    public var checkpoint: Int64

    public var description: String {
        "the feed's newest event (\(self.head)) is older than this service's checkpoint (\(self.checkpoint)): "
            + "was the monolith's database replaced?"
    }
}

/// What `GET /sync/status` answers.
public struct SyncStatus: Sendable, Equatable {
    /// The last event applied (0: none).
    public var lastEventID: Int64
    /// When the last applied event happened in the monolith.
    public var lastOccurredAt: String?
    /// Events consumed since the database was created.
    public var consumedEvents: Int64
    /// The monolith's newest event id, as of the last feed answer (nil before the first).
    public var head: Int64?
    /// The last feed failure, cleared by the next success.
    public var lastError: String?

    init(checkpoint: SyncCheckpoint) {
        self.lastEventID = checkpoint.lastEventID
        self.lastOccurredAt = checkpoint.lastOccurredAt
        self.consumedEvents = checkpoint.consumedEvents
    }

    /// Whether every event up to the known head is applied.
    public var isCaughtUp: Bool { self.head.map { self.lastEventID >= $0 } ?? false }

    /// Events the monolith has that the service has not applied yet.
    public var lagEvents: Int64? { self.head.map { max(0, $0 - self.lastEventID) } }

    /// How far behind the service is in time: 0 when caught up; otherwise the age of the last applied event
    /// (an upper bound of the oldest unapplied event's age, which the service cannot see); nil when unknown.
    public func lagSeconds(now: Date = Date()) -> Double? {
        guard let lagEvents = self.lagEvents else { return nil }
        if lagEvents == 0 { return 0 }
        guard let text = self.lastOccurredAt, let last = ServiceTime.parse(text) else { return nil }
        return max(0, (now.timeIntervalSince(last) * 1000).rounded() / 1000)
    }

    /// The status as a JSON object with, in order, `lastEventId`, `head`, `lagEvents`, `lagSeconds`, `consumedEvents`,
    /// `lastOccurredAt` and `lastError`.
    public func write(to output: inout JSONOutput, now: Date = Date()) {
        output.object { object in
            object.field("lastEventId", self.lastEventID)
            object.field("head", self.head)
            object.field("lagEvents", self.lagEvents)
            object.key("lagSeconds")
            object.number(self.lagSeconds(now: now))
            object.field("consumedEvents", self.consumedEvents)
            object.field("lastOccurredAt", self.lastOccurredAt)
            object.field("lastError", self.lastError)
        }
    }
}
