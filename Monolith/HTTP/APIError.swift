public import HTTPTypes
public import Hummingbird

/// Every error the monolith answers, in one envelope:
/// `{ "error": { "code": "validation_failed", "message": "…", "fields": { "email": "must be a valid address" } } }`.
///
/// A client's mistake always maps to a 4xx with a code from this list; only a fault of the monolith itself
/// is a 500.
public struct APIError: Error, Sendable, HTTPResponseError {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code (`validation_failed`, `not_found`, …).
    public var code: String
    /// A sentence for people.
    public var message: String
    /// Field name → what is wrong with it, for 422 (and for 409 on a duplicate value).
    public var fields: [String: String]?

    public init(status: HTTPResponse.Status, code: String, message: String, fields: [String: String]? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
    }

    static func malformedJSON(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "malformed_json", message: message)
    }

    static func validation(_ fields: [String: String], message: String = "the request has invalid fields") -> APIError {
        APIError(status: .unprocessableContent, code: "validation_failed", message: message, fields: fields)
    }

    static func notFound(_ what: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: "\(what) not found")
    }

    static func conflict(_ code: String, _ message: String, fields: [String: String]? = nil) -> APIError {
        APIError(status: .conflict, code: code, message: message, fields: fields)
    }

    static func badRequest(_ code: String, _ message: String) -> APIError {
        APIError(status: .badRequest, code: code, message: message)
    }

    static let payloadTooLarge = APIError(
        status: .contentTooLarge,
        code: "payload_too_large",
        message: "the body is larger than \(RequestLimits.maxBodyBytes) bytes"
    )

    static let unsupportedMediaType = APIError(
        status: .unsupportedMediaType,
        code: "unsupported_media_type",
        message: "the body must be JSON (Content-Type: application/json)"
    )

    /// The JSON envelope's bytes.
    var body: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("error")
        writer.beginObject()
        writer.field("code", self.code)
        writer.field("message", self.message)
        if let fields = self.fields {
            writer.key("fields")
            writer.beginObject()
            for name in fields.keys.sorted() { writer.field(name, fields[name]) }
            writer.endObject()
        }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(status: self.status, bytes: self.body)
    }
}

/// Limits on what a request may carry.
enum RequestLimits {
    /// Largest accepted request body: 1 MiB.
    static let maxBodyBytes = 1 << 20
}
