import Foundation
import JSON
import NIOCore
import NIOHTTP1
import ServiceKit

/// Reads a list endpoint page by page, as applications page their lists. The first page is `PATH?limit=200`; the
/// next one is, in this order:
/// - the RFC 8288 `Link` header's `rel="next"` target;
/// - the page's `next` field: a URL or path, or else a cursor sent back as `&after=`;
/// - the page's `nextCursor` field, sent back as `&cursor=`;
/// - none: the list is one page.
///
/// A page is a JSON array of records, or an object holding one under `items`, `data`, `results` or `records`.
enum ListPages {
    static let listKeys = ["items", "data", "results", "records"]

    /// Hands each page's records to `visit`, for at most `pages` pages. A page that cannot be read is
    /// `refused(uri, why)`: `answered 404: …`, `answered 200 without a list of records …`.
    static func read<Failure: Error>(
        _ path: String, pages: Int = .max, origin: FeedEndpoint? = nil,
        send: (String) async throws(Failure) -> OneShotHTTPClient.Answer,
        refused: (String, String) -> Failure,
        visit: ([JSONValue]) -> Void
    ) async throws(Failure) {
        let (base, query) = Self.split(path)
        func first(_ extra: String) -> String { base + "?" + (query.map { $0 + "&" } ?? "") + "limit=200" + extra }
        var uri = first("")
        var seen: Set<String> = []
        for _ in 0..<pages {
            seen.insert(uri)
            let answer = try await send(uri)
            guard answer.status == 200 else {
                throw refused(uri, "answered \(answer.status): \(String(buffer: answer.body).prefix(200))")
            }
            guard let page = try? JSONParser.parse(Array(answer.body.readableBytesView)),
                let items = page.arrayValue ?? Self.listKeys.lazy.compactMap({ page[$0]?.arrayValue }).first
            else {
                throw refused(
                    uri,
                    "answered 200 without a list of records (a JSON array, or one under "
                        + "\(Self.listKeys.joined(separator: ", ")))")
            }
            visit(items)
            let next: String
            if let link = Self.nextLink(answer.headers["Link"]) {
                guard let target = Self.sameOrigin(link, base: base, origin: origin) else {
                    throw refused(uri, "its Link rel=\"next\" (\(link)) points at another host")
                }
                next = target
            } else if let value = page["next"],
                let text = value.stringValue ?? value.numberValue.map({ String(Int($0)) })
            {
                if text.hasPrefix("/") || text.hasPrefix("http://") || text.hasPrefix("https://") || text.hasPrefix("?")
                {
                    guard let target = Self.sameOrigin(text, base: base, origin: origin) else {
                        throw refused(uri, "its next page (\(text)) is on another host")
                    }
                    next = target
                } else {
                    next = first("&after=" + Self.encode(text))
                }
            } else if let cursor = page["nextCursor"]?.stringValue, !cursor.isEmpty {
                next = first("&cursor=" + Self.encode(cursor))
            } else {
                return
            }
            guard !seen.contains(next) else {
                throw refused(uri, "its next page is one already read (\(next)): the paging loops")
            }
            uri = next
        }
    }

    static func split(_ path: String) -> (path: String, query: String?) {
        guard let mark = path.firstIndex(of: "?") else { return (path, nil) }
        let query = String(path[path.index(after: mark)...])
        return (String(path[..<mark]), query.isEmpty ? nil : query)
    }

    /// The target of the `rel="next"` link of a `Link` header (`<…>; rel="next", <…>; rel="prev"`).
    static func nextLink(_ values: [String]) -> String? {
        for value in values {
            for part in value.split(separator: ",") {
                let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let target = fields.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
                let relations = fields.dropFirst().compactMap { field -> [Substring]? in
                    let pair = field.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "rel" else {
                        return nil
                    }
                    return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\" ")).lowercased().split(
                        separator: " ")
                }
                if relations.contains(where: { $0.contains("next") }) {
                    return String(target.dropFirst().dropLast())
                }
            }
        }
        return nil
    }

    /// A link as a request target on the host being read: a path is kept, `?query` applies to `base`, a relative
    /// path to `base`'s directory, and an absolute `http` URL keeps its path and query when it names `origin`'s host
    /// and port; nil for any other host (the reader asks one host only).
    static func sameOrigin(_ link: String, base: String, origin: FeedEndpoint?) -> String? {
        if link.hasPrefix("/") { return link }
        if link.hasPrefix("?") { return base + link }
        guard let components = URLComponents(string: link), let scheme = components.scheme else {
            let directory = base.lastIndex(of: "/").map { String(base[...$0]) } ?? "/"
            return directory + link
        }
        guard scheme == "http", let origin, let host = components.host,
            host.lowercased() == origin.host.lowercased() || (Self.isLoopback(host) && Self.isLoopback(origin.host)),
            (components.port ?? 80) == origin.port
        else { return nil }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
    }

    static func isLoopback(_ host: String) -> Bool { ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
