import HTTP1
import JSON
import NIOCore
import NIOHTTP1

/// An answer the proxy itself gives (502, 503, 504, 400, 401, 403, 413, 429, 431), in the media type the client's
/// `Accept` prefers (`Vary: Accept`):
///
/// - `application/problem+json` (RFC 9457; the default, for no `Accept` or `*/*`): `type`, `title`, `status`,
///   `detail`, and the toolkit's `code`, `route` and `error` envelope as extension members;
/// - `application/json`: the toolkit's error envelope,
///   `{ "error": { "code": "bad_gateway", "message": "…", "route": "contacts.get" } }`;
/// - `text/html`: a small page; `text/plain`: the status line and the message.
///
/// A client that accepts none of them still gets the problem document: an error is not turned into a 406.
struct ProxyErrorResponse {
    var status: HTTPResponseStatus
    var code: String
    var message: String
    var route: String?
    /// Seconds for `Retry-After` (503s, 429s), if any.
    var retryAfter: Int?
    /// The request's `Accept` value, if it sent one.
    var accept: String?
    /// Whole header lines the answer carries too (`ratelimit: …\r\n`, `www-authenticate: …\r\n`).
    var extraFields: String = ""

    init(
        status: HTTPResponseStatus, code: String, message: String, route: String?, retryAfter: Int? = nil,
        accept: String? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.route = route
        self.retryAfter = retryAfter
        self.accept = accept
    }

    /// The media types the proxy's answers come in, in its order of preference.
    static let offered = ["application/problem+json", "application/json", "text/html", "text/plain"]

    enum Format {
        case problem, json, html, text

        var contentType: String {
            switch self {
            case .problem: "application/problem+json"
            case .json: "application/json; charset=utf-8"
            case .html: "text/html; charset=utf-8"
            case .text: "text/plain; charset=utf-8"
            }
        }
    }

    /// The format `accept` prefers.
    static func format(accept: String?) -> Format {
        switch MediaNegotiation.choose(Self.offered, accept: accept) {
        case "application/json": .json
        case "text/html": .html
        case "text/plain": .text
        default: .problem
        }
    }

    var envelope: JSONValue {
        .object([
            (
                "error",
                .object([
                    ("code", .string(self.code)), ("message", .string(self.message)),
                    ("route", self.route.map { .string($0) } ?? .null),
                ])
            )
        ])
    }

    var title: String { "\(self.status.code) \(self.status.reasonPhrase)" }

    func body(_ format: Format) -> String {
        switch format {
        case .json:
            return self.envelope.jsonText
        case .problem:
            var members: [(key: String, value: JSONValue)] = [
                ("type", .string("about:blank")), ("title", .string(self.status.reasonPhrase)),
                ("status", .number(Double(self.status.code))), ("detail", .string(self.message)),
                ("code", .string(self.code)), ("route", self.route.map { .string($0) } ?? .null),
            ]
            if let retryAfter { members.append(("retryAfter", .number(Double(retryAfter)))) }
            members.append(("error", self.envelope["error"]!))
            return JSONValue.object(members).jsonText
        case .html:
            let route = self.route.map { " · route \(HTMLText.escape($0))" } ?? ""
            return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>\(HTMLText.escape(self.title))</title>"
                + "</head>\n<body><h1>\(HTMLText.escape(self.title))</h1>\n<p>\(HTMLText.escape(self.message))</p>\n"
                + "<p><code>\(HTMLText.escape(self.code))</code>\(route) · strangler</p></body></html>\n"
        case .text:
            return "\(self.title)\n\(self.message)\n" + (self.route.map { "route: \($0)\n" } ?? "")
        }
    }

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: self.body(Self.format(accept: self.accept)))
    }

    /// The whole answer as bytes: status line, headers, body.
    func bytes(allocator: ByteBufferAllocator, close: Bool, requestID: String?, isHEAD: Bool = false) -> ByteBuffer {
        let format = Self.format(accept: self.accept)
        let body = self.body(format)
        var buffer = allocator.buffer(capacity: body.utf8.count + 320 + self.extraFields.utf8.count)
        buffer.writeString("HTTP/1.1 \(self.status.code) \(self.status.reasonPhrase)\r\n")
        buffer.writeString(
            "content-type: \(format.contentType)\r\ncontent-length: \(body.utf8.count)\r\nvary: accept\r\n"
                + "via: \(HeaderRules.viaToken)\r\n"
        )
        if let requestID { buffer.writeString("x-request-id: \(requestID)\r\n") }
        if let retryAfter { buffer.writeString("retry-after: \(retryAfter)\r\n") }
        buffer.writeString(self.extraFields)
        if close { buffer.writeString("connection: close\r\n") }
        buffer.writeString("\r\n")
        if !isHEAD { buffer.writeString(body) }
        return buffer
    }

    static func badGateway(_ reason: String, upstream: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .badGateway, code: "bad_gateway", message: "upstream \(upstream) \(reason)", route: route)
    }

    /// 503 `upstream_unavailable`: no instance of the group can take the request now (all unhealthy or ejected, or a
    /// full circuit), with `Retry-After`.
    static func unavailable(_ reason: String, group: String, retryAfter: Int, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .serviceUnavailable, code: "upstream_unavailable", message: "\(group) \(reason)", route: route,
            retryAfter: retryAfter)
    }

    static func gatewayTimeout(_ upstream: String, after timeout: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .gatewayTimeout, code: "gateway_timeout",
            message: "upstream \(upstream) did not answer within \(timeout)", route: route)
    }

    /// 400 `non_canonical_path`: the table serves canonical paths only, and `sent` reads as `canonical`.
    static func nonCanonicalPath(_ sent: String, canonical: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .badRequest, code: "non_canonical_path",
            message:
                "the path \(sent) is not canonical (it reads as \(canonical)); the route table serves canonical paths "
                + "only (\"paths\": \"strict\")",
            route: route)
    }

    /// 408 `request_timeout`: fewer than `least` bytes/s of the body arrived (`received` bytes in `window`).
    static func bodyTooSlow(least: Int, received: Int, window: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(
            status: .requestTimeout, code: "request_timeout",
            message: "the request body came slower than \(least) bytes/s (\(received) bytes in \(window))",
            route: route)
    }

    static func badRequest(_ message: String) -> ProxyErrorResponse {
        ProxyErrorResponse(status: .badRequest, code: "bad_request", message: message, route: nil)
    }
}

/// Text for an HTML page: `&`, `<`, `>`, `"` and `'` escaped.
enum HTMLText {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
