import GRDB
public import Hummingbird

/// `GET /events?after=<id>&limit=<n>&wait=<seconds>` on a service: its own outbox as a feed, oldest first, in
/// the monolith's format (`{ "items": [...], "next": …, "head": … }`) and with the monolith's parameters:
/// `after` (default 0), `limit` 1–1000 (default 100), `wait` 0–30 seconds (default 0) to long-poll.
///
/// Only changes clients made to this service are in it (each with `origin` = the service's name); events the
/// service applied from the monolith's feed are not, so the monolith consuming it never sees its own changes come back.
public struct ServiceFeedRoutes: Sendable {
    static let maxLimit = 1000
    static let maxWaitSeconds = 30.0

    let database: ServiceDatabase

    public init(database: ServiceDatabase) {
        self.database = database
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/events") { request, _ in try await self.handle(request) }
    }

    func handle(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var problems: [String: String] = [:]
        var after: Int64 = 0
        var limit = 100
        var wait = 0.0
        if let text = query.get("after") {
            if let value = Int64(text), value >= 0 {
                after = value
            } else {
                problems["after"] = "must be a whole number, 0 or more"
            }
        }
        if let text = query.get("limit") {
            if let value = Int(text), (1...Self.maxLimit).contains(value) {
                limit = value
            } else {
                problems["limit"] = "must be a whole number from 1 to \(Self.maxLimit)"
            }
        }
        if let text = query.get("wait") {
            if let value = Double(text), value.isFinite, (0...Self.maxWaitSeconds).contains(value) {
                wait = value
            } else {
                problems["wait"] = "must be a number of seconds from 0 to \(Int(Self.maxWaitSeconds))"
            }
        }
        guard problems.isEmpty else { throw ServiceError.invalidQuery(problems) }

        var page = try await self.page(after: after, limit: limit)
        if page.events.isEmpty, wait > 0 {
            await self.database.feedSignal.wait(after: after, timeout: .milliseconds(Int64(wait * 1000)))
            page = try await self.page(after: after, limit: limit)
        }
        let from = after
        return Response.json { output in
            output.object { object in
                object.key("items")
                object.array { items in
                    for row in page.events {
                        items.object { event in
                            event.field("id", row.id)
                            event.field("aggregatetype", row.aggregateType)
                            event.field("aggregateid", row.aggregateID)
                            event.field("type", row.type)
                            event.key("payload")
                            event.raw(row.payload.utf8)
                            event.field("occurredAt", row.occurredAt)
                            event.field("origin", row.origin)
                            event.field("traceparent", row.traceparent)
                        }
                    }
                }
                object.field("next", page.events.last?.id ?? from)
                object.field("head", page.head)
            }
        }
    }

    private func page(after: Int64, limit: Int) async throws -> (events: [ServiceOutboxEvent], head: Int64) {
        if let store = self.database.postgres {
            return try await store.transaction(writing: false) { try await $0.outboxPage(after: after, limit: limit) }
        }
        return try await self.database.read { db in try ServiceOutbox.page(after: after, limit: limit, db) }
    }
}
