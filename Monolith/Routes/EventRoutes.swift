import Hummingbird

/// `GET /events?after=<id>&limit=<n>&wait=<seconds>`: the outbox as a feed, oldest first.
///
/// `after` (default 0) is the last event id the reader has; `limit` is 1–1000 (default 100); `wait`
/// (0–30 seconds, default 0) long-polls: when no event is newer than `after`, the answer waits until one
/// commits or the time is up. The answer is `{ "items": [...], "next": <id to pass as after>, "head": <newest id> }`.
struct EventRoutes {
    static let maxLimit = 1000
    static let maxWaitSeconds = 30.0

    let store: CRMStore

    func handle(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var errors: [String: String] = [:]
        var after: Int64 = 0
        var limit = 100
        var wait = 0.0
        if let text = query.get("after") {
            if let value = Int64(text), value >= 0 {
                after = value
            } else {
                errors["after"] = "must be a whole number, 0 or more"
            }
        }
        if let text = query.get("limit") {
            if let value = Int(text), (1...Self.maxLimit).contains(value) {
                limit = value
            } else {
                errors["limit"] = "must be a whole number from 1 to \(Self.maxLimit)"
            }
        }
        if let text = query.get("wait") {
            if let value = Double(text), value.isFinite, (0...Self.maxWaitSeconds).contains(value) {
                wait = value
            } else {
                errors["wait"] = "must be a number of seconds from 0 to \(Int(Self.maxWaitSeconds))"
            }
        }
        if !errors.isEmpty { throw APIError.validation(errors, message: "the query has invalid parameters") }

        let (events, head) = try await self.store.events(
            after: after, limit: limit, wait: .milliseconds(Int64(wait * 1000)))
        return JSONResponse.make { writer in
            writer.beginObject()
            writer.key("items")
            writer.beginArray()
            for event in events { event.writeJSON(to: &writer) }
            writer.endArray()
            writer.field("next", events.last?.id ?? after)
            writer.field("head", head)
            writer.endObject()
        }
    }
}
