import HTTPTracing
public import JSON

/// One event of the monolith's feed (`GET /events`), as docs/events.md defines it.
public struct FeedEvent: Sendable {
    /// Monotonic: later commits have larger ids.
    public var id: Int64
    /// `account`, `contact`, `lead` or `deal`.
    public var aggregateType: String
    public var aggregateID: String
    /// `ContactCreated`, `DealStageChanged`, …
    public var type: String
    /// The entity after the change (with its `version`), or `{ id, version, deletedAt }` for a deletion.
    public var payload: JSONValue
    public var occurredAt: String
    public var origin: String
    /// The W3C `traceparent` of the request whose transaction wrote it (nil: none, or not a valid one).
    public var traceparent: String?

    public init(
        id: Int64, aggregateType: String, aggregateID: String, type: String, payload: JSONValue, occurredAt: String,
        origin: String = "monolith", traceparent: String? = nil
    ) {
        self.traceparent = traceparent
        self.id = id
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.type = type
        self.payload = payload
        self.occurredAt = occurredAt
        self.origin = origin
    }

    /// The payload's `version`: the aggregate's version after this event.
    public var version: Int64? { self.payload["version"]?.numberValue.map { Int64($0) } }

    /// Whether this event removes its aggregate (`…Deleted`).
    public var isDeletion: Bool { self.type.hasSuffix("Deleted") }
}

/// One answer of the feed: events oldest first, the `after` to pass next, and the newest event id.
public struct FeedPage: Sendable {
    public var events: [FeedEvent]
    public var next: Int64
    public var head: Int64

    public init(events: [FeedEvent], next: Int64, head: Int64) {
        self.events = events
        self.next = next
        self.head = head
    }

    /// Reads a feed answer; nil when it does not have the feed's shape.
    public init?(json value: JSONValue) {
        guard let items = value["items"]?.arrayValue, let next = value["next"]?.numberValue,
            let head = value["head"]?.numberValue
        else { return nil }
        var events: [FeedEvent] = []
        events.reserveCapacity(items.count)
        for item in items {
            guard let id = item["id"]?.numberValue, let aggregateType = item["aggregatetype"]?.stringValue,
                let aggregateID = item["aggregateid"]?.stringValue, let type = item["type"]?.stringValue,
                let payload = item["payload"],
                let occurredAt = item["occurredAt"]?.stringValue
            else { return nil }
            events.append(
                FeedEvent(
                    id: Int64(id), aggregateType: aggregateType, aggregateID: aggregateID, type: type, payload: payload,
                    occurredAt: occurredAt,
                    origin: item["origin"]?.stringValue ?? "monolith",
                    traceparent: item["traceparent"]?.stringValue.flatMap { RequestTrace.isValid($0) ? $0 : nil }))
        }
        self.init(events: events, next: Int64(next), head: Int64(head))
    }
}

/// Where events come from: the monolith's HTTP feed in production, anything that pages the same way in tests.
public protocol EventFeed: Sendable {
    /// Events with ids after `after`, at most `limit`; when none is newer, waits up to `wait` seconds for one.
    func events(after: Int64, limit: Int, wait: Int) async throws -> FeedPage
}
