public import Hummingbird
import Logging
import NIOCore

/// Turns every error a handler throws into the monolith's JSON error envelope.
///
/// Hummingbird's own errors (an unknown path, a body over the limit) keep their status; anything that is
/// not an HTTP error is a fault of the monolith: logged with the request id, answered as a bare 500 that
/// leaks nothing.
public struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return JSONResponse.make(status: error.status, bytes: error.body)
        } catch let error as any HTTPResponseError {
            let apiError: APIError
            switch error.status {
            case .notFound:
                apiError = APIError(
                    status: .notFound, code: "not_found",
                    message: "no such endpoint: \(request.method) \(request.uri.path)")
            case .methodNotAllowed:
                apiError = APIError(
                    status: .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge:
                apiError = .payloadTooLarge
            default:
                apiError = APIError(
                    status: error.status, code: error.status.code < 500 ? "bad_request" : "internal_error",
                    message: error.status.reasonPhrase)
            }
            return JSONResponse.make(status: apiError.status, bytes: apiError.body)
        } catch is NIOTooManyBytesError {
            return JSONResponse.make(status: .contentTooLarge, bytes: APIError.payloadTooLarge.body)
        } catch {
            context.logger.error(
                "request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            let apiError = APIError(
                status: .internalServerError, code: "internal_error",
                message: "the server failed to answer this request")
            return JSONResponse.make(status: apiError.status, bytes: apiError.body)
        }
    }
}
