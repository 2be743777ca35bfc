public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// An error a service answers, in the monolith's envelope:
/// `{ "error": { "code": "validation_failed", "message": "…", "fields": { "email": "must be a valid address" } } }`
/// (`fields` only when there are some, sorted by name).
///
/// Services build them with the factories (`.notFound("contact")`, `.conflict("duplicate", …)`), which carry
/// the monolith's codes and texts.
public struct ServiceError: Error, Sendable, HTTPResponseError {
    public let status: HTTPResponse.Status
    /// The machine-readable code: `validation_failed`, `not_found`, `version_conflict`, …
    public let code: String
    public let message: String
    /// Field → what is wrong with it.
    public var fields: [String: String]? = nil

    /// Largest accepted request body: 1 MiB, as in the monolith.
    public static let maxBodyBytes = 1 << 20

    public static func notFound(_ noun: String) -> ServiceError {
        ServiceError(status: .notFound, code: "not_found", message: "\(noun) not found")
    }

    public static func validation(
        _ fields: [String: String], message: String = "the request has invalid fields"
    ) -> ServiceError {
        ServiceError(status: .unprocessableContent, code: "validation_failed", message: message, fields: fields)
    }

    public static func invalidQuery(_ fields: [String: String]) -> ServiceError {
        self.validation(fields, message: "the query has invalid parameters")
    }

    public static func conflict(_ code: String, _ message: String, fields: [String: String]? = nil) -> ServiceError {
        ServiceError(status: .conflict, code: code, message: message, fields: fields)
    }

    public static func badRequest(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: .badRequest, code: code, message: message)
    }

    public static let payloadTooLarge = ServiceError(
        status: .contentTooLarge, code: "payload_too_large", message: "the body is larger than \(maxBodyBytes) bytes")

    public static let unsupportedMediaType = ServiceError(
        status: .unsupportedMediaType, code: "unsupported_media_type",
        message: "the body must be JSON (Content-Type: application/json)")

    /// The envelope's bytes.
    public var envelope: [UInt8] {
        var output = JSONOutput()
        output.object { root in
            root.key("error")
            root.object { error in
                error.field("code", self.code)
                error.field("message", self.message)
                guard let fields = self.fields else { return }
                error.key("fields")
                error.object { object in
                    for (name, problem) in fields.sorted(by: { $0.key < $1.key }) { object.field(name, problem) }
                }
            }
        }
        return output.bytes
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response.json(status: self.status, self.envelope)
    }
}

/// Answers every error in the envelope, with the monolith's codes and messages for Hummingbird's own errors
/// (unknown path, method not allowed, body too large); anything else is the service's fault: logged, and
/// answered as a 500 that leaks nothing.
public struct ServiceErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let error: ServiceError
        do {
            return try await next(request, context)
        } catch let serviceError as ServiceError {
            error = serviceError
        } catch let httpError as any HTTPResponseError {
            switch httpError.status {
            case .notFound:
                error = ServiceError(
                    status: .notFound, code: "not_found",
                    message: "no such endpoint: \(request.method) \(request.uri.path)")
            case .methodNotAllowed:
                error = ServiceError(
                    status: .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge: error = .payloadTooLarge
            default:
                let code = httpError.status.code < 500 ? "bad_request" : "internal_error"
                error = ServiceError(status: httpError.status, code: code, message: httpError.status.reasonPhrase)
            }
        } catch is NIOTooManyBytesError {
            error = .payloadTooLarge
        } catch {
            context.logger.error(
                "request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return Response.json(
                status: .internalServerError,
                ServiceError(
                    status: .internalServerError, code: "internal_error",
                    message: "the server failed to answer this request"
                ).envelope)
        }
        return Response.json(status: error.status, error.envelope)
    }
}
