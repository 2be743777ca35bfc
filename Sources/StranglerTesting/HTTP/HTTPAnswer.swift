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

/// A whole HTTP answer: status, headers in order, body.
public struct HTTPAnswer: Sendable, CustomStringConvertible {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The values of a header (case-insensitive), joined with `, `; nil when absent.
    public func header(_ name: String) -> String? {
        let values = self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: self.body, as: UTF8.self) }

    /// The body as JSON, nil when it is not.
    public var json: JSONValue? { try? JSONParser.parse(self.body) }

    /// The answer as the diff engine sees it.
    public var snapshot: ResponseSnapshot {
        ResponseSnapshot(status: self.status, headers: self.headers, body: self.body)
    }

    public var description: String {
        let body = self.text
        return "\(self.status) \(body.count > 600 ? String(body.prefix(600)) + "…" : body)"
    }
}
