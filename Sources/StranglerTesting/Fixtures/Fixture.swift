public import Diff
import Foundation
public import JSON

/// A recorded request with the monolith's answer to it: a mismatch the proxy's shadow traffic found, exported by
/// `strangler fixtures export` (one JSON file each; the format is in docs/testing.md), replayed by
/// ``ParityHarness/replay(fixturesIn:against:)``.
public struct Fixture: Sendable {
    /// The value of the file's `"format"`.
    public static let format = "strangler-fixture/1"

    public var route: String
    /// The mismatch signature's id (16 hex digits) and, when known, its text.
    public var signature: String
    public var signatureText: String?
    public var recordedAt: String?
    public var requestID: String?
    /// Which side answered the client when it was recorded (`monolith`, or `service` for a canary).
    public var servedBy: String?
    public var request: HTTPRequestData
    /// The monolith's answer: what every target must answer (under the route's rules).
    public var monolith: HTTPAnswer
    /// The service's answer when it was recorded, for the record.
    public var service: HTTPAnswer?
    /// The diff as the diff store kept it.
    public var diff: JSONValue?

    public init(
        route: String, signature: String, signatureText: String? = nil, recordedAt: String? = nil,
        requestID: String? = nil, servedBy: String? = nil,
        request: HTTPRequestData, monolith: HTTPAnswer, service: HTTPAnswer? = nil, diff: JSONValue? = nil
    ) {
        self.route = route
        self.signature = signature
        self.signatureText = signatureText
        self.recordedAt = recordedAt
        self.requestID = requestID
        self.servedBy = servedBy
        self.request = request
        self.monolith = monolith
        self.service = service
        self.diff = diff
    }

    // MARK: JSON form

    /// The file's JSON.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("format", .string(Self.format)),
            ("route", .string(self.route)),
            ("signature", .string(self.signature)),
        ]
        if let signatureText { members.append(("signatureText", .string(signatureText))) }
        if let recordedAt { members.append(("recordedAt", .string(recordedAt))) }
        if let requestID { members.append(("requestId", .string(requestID))) }
        if let servedBy { members.append(("servedBy", .string(servedBy))) }
        let path = self.request.path
        let query = self.request.target.firstIndex(of: "?").map {
            String(self.request.target[self.request.target.index(after: $0)...])
        }
        members.append(
            (
                "request",
                .object([
                    ("method", .string(self.request.method)), ("path", .string(path)),
                    ("query", query.map(JSONValue.string) ?? .null),
                    ("headers", Self.headersJSON(self.request.headers)), ("body", Self.bodyJSON(self.request.body)),
                ])
            ))
        members.append(("monolith", Self.answerJSON(self.monolith)))
        if let service { members.append(("service", Self.answerJSON(service))) }
        if let diff { members.append(("diff", diff)) }
        return .object(members)
    }

    /// Reads a fixture's JSON (`source` names it in errors).
    public init(json: JSONValue, source: String = "fixture") throws(HarnessError) {
        func fail(_ reason: String) -> HarnessError { HarnessError("\(source): \(reason)") }
        guard json.objectValue != nil else { throw fail("not a JSON object") }
        guard json["format"]?.stringValue == Self.format else {
            throw fail("\"format\" must be \"\(Self.format)\", not \(json["format"]?.jsonText ?? "missing")")
        }
        guard let route = json["route"]?.stringValue, !route.isEmpty else {
            throw fail("\"route\" (a route id) is missing")
        }
        guard let request = json["request"], let method = request["method"]?.stringValue,
            let path = request["path"]?.stringValue,
            path.hasPrefix("/")
        else { throw fail("\"request\" needs \"method\" and \"path\" (starting with /)") }
        var target = path
        if let query = request["query"]?.stringValue, !query.isEmpty { target += "?" + query }
        let monolith = try Self.answer(json["monolith"], name: "monolith", fail: fail)
        let service = try json["service"].map { value throws(HarnessError) in
            try Self.answer(value, name: "service", fail: fail)
        }
        self.init(
            route: route, signature: json["signature"]?.stringValue ?? "",
            signatureText: json["signatureText"]?.stringValue,
            recordedAt: json["recordedAt"]?.stringValue, requestID: json["requestId"]?.stringValue,
            servedBy: json["servedBy"]?.stringValue,
            request: HTTPRequestData(
                method: method.uppercased(), target: target, headers: try Self.headers(request["headers"], fail: fail),
                body: try Self.body(request["body"], fail: fail)),
            monolith: monolith, service: service, diff: json["diff"])
    }

    /// Reads every `*.json` file of `directory` (sorted by name) as a fixture.
    public static func load(directory: String) throws(HarnessError) -> [(file: String, fixture: Fixture)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
                .sorted()
        } catch {
            throw HarnessError("cannot read the fixtures folder \(directory): \(error.localizedDescription)")
        }
        var fixtures: [(file: String, fixture: Fixture)] = []
        for name in names {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HarnessError("cannot read \(path)")
            }
            let json: JSONValue
            do {
                json = try JSONParser.parse(Array(data))
            } catch {
                throw HarnessError("\(path): not valid JSON: \(error)")
            }
            fixtures.append((name, try Fixture(json: json, source: path)))
        }
        return fixtures
    }

    // MARK: Parts

    static func headersJSON(_ headers: [(name: String, value: String)]) -> JSONValue {
        .array(headers.map { .array([.string($0.name), .string($0.value)]) })
    }

    /// UTF-8 text as a string, other bytes as `{"base64": …}`, nothing as null.
    static func bodyJSON(_ body: [UInt8]) -> JSONValue {
        if body.isEmpty { return .null }
        if let text = String(validating: body, as: UTF8.self) { return .string(text) }
        return .object([("base64", .string(Data(body).base64EncodedString()))])
    }

    static func answerJSON(_ answer: HTTPAnswer) -> JSONValue {
        .object([
            ("status", .number(Double(answer.status))), ("headers", Self.headersJSON(answer.headers)),
            ("body", Self.bodyJSON(answer.body)),
        ])
    }

    static func headers(
        _ value: JSONValue?, fail: (String) -> HarnessError
    ) throws(HarnessError) -> [(name: String, value: String)] {
        guard let value, value != .null else { return [] }
        guard let items = value.arrayValue else { throw fail("headers must be an array of [name, value] pairs") }
        var headers: [(name: String, value: String)] = []
        for item in items {
            guard let pair = item.arrayValue, pair.count == 2, let name = pair[0].stringValue,
                let text = pair[1].stringValue
            else {
                throw fail("headers must be an array of [name, value] pairs, not \(item.jsonText)")
            }
            headers.append((name, text))
        }
        return headers
    }

    static func body(_ value: JSONValue?, fail: (String) -> HarnessError) throws(HarnessError) -> [UInt8] {
        switch value {
        case .none, .some(.null): return []
        case .some(.string(let text)): return Array(text.utf8)
        case .some(let other):
            guard let encoded = other["base64"]?.stringValue, let data = Data(base64Encoded: encoded) else {
                throw fail("a body is a string, null or {\"base64\": \"…\"}, not \(other.jsonText)")
            }
            return Array(data)
        }
    }

    static func answer(
        _ value: JSONValue?, name: String, fail: (String) -> HarnessError
    ) throws(HarnessError) -> HTTPAnswer {
        guard let value, let status = value["status"]?.numberValue, (100...599).contains(status) else {
            throw fail("\"\(name)\" needs a \"status\" (100–599)")
        }
        return HTTPAnswer(
            status: Int(status), headers: try Self.headers(value["headers"], fail: fail),
            body: try Self.body(value["body"], fail: fail))
    }
}
