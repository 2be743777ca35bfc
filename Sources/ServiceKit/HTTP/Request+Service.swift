public import HTTPTypes
public import Hummingbird
public import JSON
import NIOCore

extension HTTPField.Name {
    /// `Strangler-Dry-Run: 1`: run the write, answer as it would, and roll it back.
    public static let stranglerDryRun = HTTPField.Name("Strangler-Dry-Run")!
}

extension Request {
    /// Whether the request asks for a dry run (`Strangler-Dry-Run: 1`).
    public var isDryRun: Bool { self.headers[.stranglerDryRun] == "1" }

    /// The version in `If-Match` (`3`, `"3"` or `W/"3"`); nil when absent, empty or `*`.
    public func ifMatchVersion() throws(ServiceError) -> Int64? {
        guard var text = self.headers[.ifMatch].map({ Substring($0).trimmingBlanks() }), !text.isEmpty, text != "*"
        else { return nil }
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = text.dropFirst().dropLast() }
        guard let version = Int64(text), version > 0 else {
            throw .badRequest("invalid_if_match", "If-Match must be the entity's version, such as 3 or \"3\"")
        }
        return version
    }

    /// The `{id}` path parameter; a 404 naming `noun` when it cannot be an id.
    public func pathID(_ context: some RequestContext, noun: String) throws(ServiceError) -> String {
        guard let id = context.parameters.get("id"), RecordID.isWellFormed(id) else { throw .notFound(noun) }
        return id
    }

    /// Reads the body as a JSON object, in the monolith's order of checks: 413 over 1 MiB (declared or
    /// streamed), 415 when it is not declared JSON, 400 when empty (unless `allowEmpty`) or not JSON, 422
    /// when the JSON is not an object.
    public mutating func jsonObject(allowEmpty: Bool = false) async throws -> JSONObject {
        if let declared = self.headers[.contentLength].flatMap({ Int($0) }), declared > ServiceError.maxBodyBytes {
            throw ServiceError.payloadTooLarge
        }
        let contentType = self.headers[.contentType]
        if let contentType, !Self.isJSONMediaType(contentType) { throw ServiceError.unsupportedMediaType }
        let body: ByteBuffer
        do {
            body = try await self.collectBody(upTo: ServiceError.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ServiceError.payloadTooLarge
        }
        if body.readableBytes == 0 {
            guard allowEmpty else {
                throw ServiceError.badRequest("missing_body", "this endpoint needs a JSON object in the body")
            }
            return JSONObject([])
        }
        if contentType == nil { throw ServiceError.unsupportedMediaType }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(body.readableBytesView))
        } catch {
            // The monolith's text, without the parser's finding: a detail from another parser would differ.
            throw ServiceError.badRequest("malformed_json", "the body is not valid JSON")
        }
        guard let members = value.objectValue else {
            throw ServiceError.validation(["body": "must be a JSON object"], message: "the body must be a JSON object")
        }
        return JSONObject(members)
    }

    /// `application/json`, or any `application/…+json`, with any parameters.
    static func isJSONMediaType(_ contentType: String) -> Bool {
        let mediaType = (contentType.split(separator: ";", maxSplits: 1).first ?? "").trimmingBlanks().lowercased()
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}

/// A request body's members by name (the parser refuses duplicate keys).
public struct JSONObject: Sendable {
    public let members: [String: JSONValue]

    public init(_ members: [(key: String, value: JSONValue)]) {
        self.members = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

extension Substring {
    func trimmingBlanks() -> Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}
