public import Hummingbird

/// Answers `HEAD` as `GET` without the body, as the monolith does (same status and headers, `Content-Length` included),
/// as HTTP asks of every GET resource. It wraps the whole responder because a router middleware runs after the route is
/// resolved, when a HEAD request has already found no route.
///
/// ```swift
/// let app = Application(router: HeadAsGet(service.router(database: database, sync: consumer)))
/// ```
public struct HeadAsGet<Builder: HTTPResponderBuilder>: HTTPResponderBuilder {
    let builder: Builder

    public init(_ builder: Builder) {
        self.builder = builder
    }

    public func buildResponder() -> HeadResponder<Builder.Responder> {
        HeadResponder(wrapped: self.builder.buildResponder())
    }

    public struct HeadResponder<Wrapped: HTTPResponder>: HTTPResponder {
        let wrapped: Wrapped

        public func respond(to request: Request, context: Wrapped.Context) async throws -> Response {
            guard request.method == .head else { return try await self.wrapped.respond(to: request, context: context) }
            var head = request.head
            head.method = .get
            var response = try await self.wrapped.respond(to: Request(head: head, body: request.body), context: context)
            // No byte of the body is sent, but its length is declared, as the GET answer's would be.
            let length = response.headers[.contentLength].flatMap { Int($0) } ?? response.body.contentLength
            response.body = ResponseBody(contentLength: length) { writer in try await writer.finish(nil) }
            return response
        }
    }
}
