import JSON
import NIOCore
import NIOHTTP1

/// An answer the proxy itself gives (502, 504, 400, 413, 431), in the toolkit's error envelope:
/// `{ "error": { "code": "bad_gateway", "message": "…", "route": "contacts.get" } }`.
struct ProxyErrorResponse {
    var status: HTTPResponseStatus
    var code: String
    var message: String
    var route: String?
    /// Seconds for `Retry-After` (503s), if any.
    var retryAfter: Int?

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        var members: [(key: String, value: JSONValue)] = [
            ("code", .string(self.code)), ("message", .string(self.message)),
        ]
        members.append(("route", self.route.map { .string($0) } ?? .null))
        let text = JSONValue.object([("error", .object(members))]).jsonText
        return allocator.buffer(string: text)
    }

    /// The whole answer as bytes: status line, headers, body.
    func bytes(allocator: ByteBufferAllocator, close: Bool, requestID: String?) -> ByteBuffer {
        let body = self.body(allocator: allocator)
        var buffer = allocator.buffer(capacity: body.readableBytes + 256)
        buffer.writeString("HTTP/1.1 \(self.status.code) \(self.status.reasonPhrase)\r\n")
        buffer.writeString(
            "content-type: application/json; charset=utf-8\r\ncontent-length: \(body.readableBytes)\r\nvia: "
                + "\(HeaderRules.viaToken)\r\n"
        )
        if let requestID { buffer.writeString("x-request-id: \(requestID)\r\n") }
        if let retryAfter { buffer.writeString("retry-after: \(retryAfter)\r\n") }
        if close { buffer.writeString("connection: close\r\n") }
        buffer.writeString("\r\n")
        var body2 = body
        buffer.writeBuffer(&body2)
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
