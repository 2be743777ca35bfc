import NIOCore
import NIOHTTP1
import JSON

/// An answer the proxy itself gives (502, 504, 400, 413, 431), in the toolkit's error envelope:
/// `{ "error": { "code": "bad_gateway", "message": "…", "route": "contacts.get" } }`.
struct ProxyErrorResponse {
    var status: HTTPResponseStatus
    var code: String
    var message: String
    var route: String?

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        var members: [(key: String, value: JSONValue)] = [("code", .string(self.code)), ("message", .string(self.message))]
        members.append(("route", self.route.map { .string($0) } ?? .null))
        let text = JSONValue.object([("error", .object(members))]).jsonText
        return allocator.buffer(string: text)
    }

    func head(bodyLength: Int, close: Bool, requestID: String?) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "content-length", value: String(bodyLength))
        headers.add(name: "via", value: HeaderRules.viaToken)
        if let requestID { headers.add(name: "x-request-id", value: requestID) }
        if close { headers.add(name: "connection", value: "close") }
        return HTTPResponseHead(version: .http1_1, status: self.status, headers: headers)
    }

    static func badGateway(_ reason: String, upstream: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(status: .badGateway, code: "bad_gateway", message: "upstream \(upstream) \(reason)", route: route)
    }

    static func gatewayTimeout(_ upstream: String, after timeout: String, route: String?) -> ProxyErrorResponse {
        ProxyErrorResponse(status: .gatewayTimeout, code: "gateway_timeout", message: "upstream \(upstream) did not answer within \(timeout)", route: route)
    }

    static func badRequest(_ message: String) -> ProxyErrorResponse {
        ProxyErrorResponse(status: .badRequest, code: "bad_request", message: message, route: nil)
    }
}
