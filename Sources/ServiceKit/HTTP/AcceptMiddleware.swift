import HTTP1
public import Hummingbird

/// Answers 406 to a request whose `Accept` gives JSON, a service's only representation, no weight (RFC 9110
/// §12.5.1, `q` honoured), before its handler runs; as the monolith does.
public struct AcceptMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let accept = request.headers[.accept],
            MediaNegotiation.choose(["application/json"], accept: accept) == nil
        {
            throw ServiceError(
                status: .notAcceptable, code: "not_acceptable",
                message: "this server answers application/json only, and the request's Accept (\(accept.prefix(200))) "
                    + "excludes it")
        }
        return try await next(request, context)
    }
}
