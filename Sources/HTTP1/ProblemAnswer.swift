public import JSON

/// An answer the toolkit gives itself (the proxy's 4xx and 5xx, the admin API's errors), in the media type the
/// client's `Accept` prefers, `Vary: Accept`:
///
/// - `application/problem+json` (RFC 9457; the default, for no `Accept` or `*/*`): `type`, `title`, `status`,
///   `detail`, and the toolkit's `code`, `route` and its whole `error` envelope as extension members;
/// - `application/json`: the toolkit's error envelope, `{ "error": { "code": "…", "message": "…", … } }`;
/// - `text/html`: a small page; `text/plain`: the status line and the message.
///
/// A client that accepts none of them still gets the problem document: an error is not turned into a 406.
public struct ProblemAnswer: Sendable {
    public var status: Int
    public var reason: String
    public var code: String
    public var message: String
    public var route: String?
    public var retryAfter: Int?
    /// The `error` object of the envelope (`code`, `message` and whatever else the error says).
    public var error: JSONValue

    public init(
        status: Int, reason: String, code: String, message: String, route: String?, retryAfter: Int? = nil,
        error: JSONValue? = nil
    ) {
        self.status = status
        self.reason = reason
        self.code = code
        self.message = message
        self.route = route
        self.retryAfter = retryAfter
        self.error =
            error
            ?? .object([
                ("code", .string(code)), ("message", .string(message)), ("route", route.map { .string($0) } ?? .null),
            ])
    }

    public enum Format: Sendable {
        case problem, json, html, text

        public var contentType: String {
            switch self {
            case .problem: "application/problem+json"
            case .json: "application/json; charset=utf-8"
            case .html: "text/html; charset=utf-8"
            case .text: "text/plain; charset=utf-8"
            }
        }
    }

    /// The media types offered, in the toolkit's order of preference.
    public static let offered = ["application/problem+json", "application/json", "text/html", "text/plain"]

    /// The format `accept` prefers (the problem document when it accepts none).
    public static func format(accept: String?) -> Format {
        switch MediaNegotiation.choose(Self.offered, accept: accept) {
        case "application/json": .json
        case "text/html": .html
        case "text/plain": .text
        default: .problem
        }
    }

    public var title: String { "\(self.status) \(self.reason)" }

    public func body(_ format: Format) -> String {
        switch format {
        case .json:
            return JSONValue.object([("error", self.error)]).jsonText
        case .problem:
            var members: [(key: String, value: JSONValue)] = [
                ("type", .string("about:blank")), ("title", .string(self.reason)),
                ("status", .number(Double(self.status))), ("detail", .string(self.message)),
                ("code", .string(self.code)), ("route", self.route.map { .string($0) } ?? .null),
            ]
            if let retryAfter { members.append(("retryAfter", .number(Double(retryAfter)))) }
            members.append(("error", self.error))
            return JSONValue.object(members).jsonText
        case .html:
            let route = self.route.map { " · route \(Self.escape($0))" } ?? ""
            return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>\(Self.escape(self.title))</title>"
                + "</head>\n<body><h1>\(Self.escape(self.title))</h1>\n<p>\(Self.escape(self.message))</p>\n"
                + "<p><code>\(Self.escape(self.code))</code>\(route) · strangler</p></body></html>\n"
        case .text:
            return "\(self.title)\n\(self.message)\n" + (self.route.map { "route: \($0)\n" } ?? "")
        }
    }

    /// Text for an HTML page: `&`, `<`, `>`, `"` and `'` escaped.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
