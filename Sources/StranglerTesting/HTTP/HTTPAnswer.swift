public import Diff
public import JSON

/// One request as the harness sends it: method, request target (path and query), headers and body.
public struct HTTPRequestData: Sendable, CustomStringConvertible {
    public var method: String
    /// Path with its query, as sent (`/contacts?limit=2`).
    public var target: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The path without the query.
    public var path: String { String(self.target.prefix { $0 != "?" }) }

    public var description: String { "\(self.method) \(self.target)" }
}

/// A whole HTTP answer: status, headers in order, body. The diff engine's ``ResponseSnapshot``, so an answer the
/// harness received is compared as it is.
public typealias HTTPAnswer = ResponseSnapshot

extension ResponseSnapshot {
    /// The body as JSON, nil when it is not.
    public var json: JSONValue? { try? JSONParser.parse(self.body) }

    /// The answer as the diff engine sees it (itself).
    public var snapshot: ResponseSnapshot { self }
}
