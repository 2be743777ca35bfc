import JSON
import NIOCore
import ServiceKit

/// Reads a list endpoint page by page, as the monolith and the services page their lists: `?limit=200`, then
/// `&after=` the `next` cursor of each page, until a page has none.
enum ListPages {
    /// Hands each page's `items` to `visit`, for at most `pages` pages. An answer that is not a 200 with a JSON
    /// `items` array is `refused(uri, answer)`.
    static func read<Failure: Error>(
        _ path: String, pages: Int = .max,
        send: (String) async throws(Failure) -> OneShotHTTPClient.Answer,
        refused: (String, OneShotHTTPClient.Answer) -> Failure,
        visit: ([JSONValue]) -> Void
    ) async throws(Failure) {
        var after: String?
        for _ in 0..<pages {
            let uri = "\(path)?limit=200" + (after.map { "&after=\($0)" } ?? "")
            let answer = try await send(uri)
            guard answer.status == 200, let page = try? JSONParser.parse(Array(answer.body.readableBytesView)),
                let items = page["items"]?.arrayValue
            else { throw refused(uri, answer) }
            visit(items)
            after = page["next"]?.stringValue
            if after == nil { return }
        }
    }
}
