import HTTP1
import HTTPTypes
public import Hummingbird
import JSON
import NIOCore

extension AdminRoutes {
    /// The `Accept` of the request being answered (set by `AdminNegotiationMiddleware`): the admin API's errors are
    /// rendered in the media type it prefers.
    @TaskLocal static var accept: String?
}

/// The admin API's content negotiation: its answers are JSON, and its errors follow `Accept` as the proxy's own answers
/// do (`ProblemAnswer`: problem+json, the JSON envelope, HTML or text); a request whose `Accept` takes no JSON is
/// answered 406, but for `/admin/report` (HTML, JSON, Markdown or JUnit XML by `Accept` when `format` is not given) and
/// `/metrics` (Prometheus text). Every answer says `Vary: Accept`.
struct AdminNegotiationMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let accept = request.headers[.accept]
        let path = request.uri.path
        var response: Response
        if path != "/admin/report", path != "/metrics", !path.hasPrefix("/dashboard"), let accept,
            MediaNegotiation.choose(["application/json", "application/problem+json"], accept: accept) == nil
        {
            response = AdminRoutes.$accept.withValue(accept) {
                AdminRoutes.error(
                    .notAcceptable, "not_acceptable",
                    "the admin API answers application/json, and the request's Accept (\(accept.prefix(200))) "
                        + "excludes it")
            }
        } else {
            do {
                response = try await AdminRoutes.$accept.withValue(accept) { try await next(request, context) }
            } catch let error as any HTTPResponseError
                where error.status == .notFound || error.status == .methodNotAllowed
            {
                let message =
                    error.status == .notFound
                    ? "no such admin endpoint: \(request.method) \(path)"
                    : "\(request.method) is not allowed on \(path)"
                response = AdminRoutes.$accept.withValue(accept) {
                    AdminRoutes.error(
                        error.status, error.status == .notFound ? "not_found" : "method_not_allowed", message)
                }
            }
        }
        response.headers[.vary] = "Accept"
        return response
    }
}

extension AdminRoutes {
    /// An error envelope (`{"error": {...}}`) as the answer `accept` prefers; other bodies as JSON.
    static func negotiated(_ value: JSONValue, status: HTTPResponse.Status, headers: HTTPFields) -> Response {
        var headers = headers
        guard status.code >= 400, let error = value["error"], let code = error["code"]?.stringValue else {
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(
                status: status, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: value.prettyJSONText)))
        }
        let problem = ProblemAnswer(
            status: status.code, reason: status.reasonPhrase, code: code,
            message: error["message"]?.stringValue ?? status.reasonPhrase, route: error["route"]?.stringValue,
            error: error)
        let format = ProblemAnswer.format(accept: Self.accept)
        headers[.contentType] = format.contentType
        let body = format == .json ? value.prettyJSONText : problem.body(format)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
