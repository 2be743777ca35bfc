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

    /// The answer as the toolkit renders its own answers (the media type `accept` prefers).
    var problem: ProblemAnswer {
        ProblemAnswer(
            status: Int(self.status.code), reason: self.status.reasonPhrase, code: self.code, message: self.message,
            route: self.route, retryAfter: self.retryAfter)
    }

    static let offered = ProblemAnswer.offered

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: self.problem.body(ProblemAnswer.format(accept: self.accept)))
    }

    /// The whole answer as bytes: status line, headers, body.
    func bytes(allocator: ByteBufferAllocator, close: Bool, requestID: String?, isHEAD: Bool = false) -> ByteBuffer {
        let format = ProblemAnswer.format(accept: self.accept)
        let body = self.problem.body(format)
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
