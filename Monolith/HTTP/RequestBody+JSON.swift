import Hummingbird
import NIOCore

extension Request {
    /// Reads the body as a JSON object.
    ///
    /// Answers 415 when the body is not declared JSON, 413 over ``RequestLimits/maxBodyBytes``, 400 when the
    /// text is not JSON, and 422 when the JSON is not an object. With `allowEmpty`, an empty body (with or
    /// without a content type) reads as an empty object.
    mutating func jsonObject(allowEmpty: Bool = false) async throws -> [String: JSONValue] {
        if let length = self.headers[.contentLength].flatMap({ Int($0) }), length > RequestLimits.maxBodyBytes {
            throw APIError.payloadTooLarge
        }
        let contentType = self.headers[.contentType]
        if let contentType, !Self.isJSON(contentType) {
            throw APIError.unsupportedMediaType
        }
        let buffer: ByteBuffer
        do {
            buffer = try await self.collectBody(upTo: RequestLimits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge
        }
        if buffer.readableBytes == 0 {
            if allowEmpty { return [:] }
            throw APIError.badRequest("missing_body", "this endpoint needs a JSON object in the body")
        }
        guard contentType != nil else { throw APIError.unsupportedMediaType }
        guard case .object(let object) = try JSONValue.parse(buffer.readableBytesView) else {
            throw APIError.validation(["body": "must be a JSON object"], message: "the body must be a JSON object")
        }
        return object
    }

    /// `application/json`, `application/merge-patch+json` or any `+json` type, with any parameters.
    static func isJSON(_ contentType: String) -> Bool {
        let mediaType =
            contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}

extension StringProtocol {
    func trimmingSpaces() -> Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
