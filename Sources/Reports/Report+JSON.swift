import ControlPlane
import DiffStore
import Foundation
public import JSON
import RouteTable

/// The report's JSON (`docs/reports.md`, schema `docs/report.schema.json`): every key always present, `null` where a
/// value is unknown, keys in a fixed order, times in ISO 8601 UTC (`2026-11-27T09:35:31Z`).
extension Report {
    /// The report as JSON; `init(json:)` reads it back.
    public var json: JSONValue {
        let summary = self.summary
        return .object([
            ("schema", .string(Self.schema)),
            ("generatedAt", .string(Self.timestamp(self.generatedAt))),
            ("source", .string(self.source)),
            ("tableHash", .string(self.tableHash)),
            (
                "window",
                .object([("since", Self.time(self.window.since)), ("duration", Self.text(self.window.duration))])
            ),
            ("bucketSeconds", .number(Double(self.bucketSeconds))),
            (
                "summary",
                .object([
                    ("routes", Self.count(summary.routes)), ("ready", Self.count(summary.ready)),
                    ("blocked", Self.count(summary.blocked)),
                    ("eliminated", Self.count(summary.eliminated)), ("noService", Self.count(summary.noService)),
                ])
            ),
            ("routes", .array(self.routes.map(\.json))),
            ("traceUrl", Self.text(self.traceURL)),
            (
                "privacy",
                .object([
                    ("redactionDefaults", .bool(self.privacy.redactionDefaults)),
                    ("retention", Self.text(self.privacy.retention)),
                ])
            ),
        ])
    }

    /// Reads a report's JSON (as `GET /admin/report?format=json` answers it).
    public init(json: JSONValue) throws(ReportFormatError) {
        let root = Fields(json, "$")
        let schema = try root.string("schema")
        guard schema == Self.schema else {
            throw ReportFormatError(message: "$.schema is \"\(schema)\", this strangler reads \"\(Self.schema)\"")
        }
        let window = try root.object("window")
        let privacy = try root.object("privacy")
        self.init(
            generatedAt: try root.date("generatedAt"), source: try root.string("source"),
            tableHash: try root.string("tableHash"),
            window: Window(since: try window.optionalDate("since"), duration: try window.optionalString("duration")),
            bucketSeconds: try root.int("bucketSeconds"),
            routes: try root.array("routes").map(RouteReport.init(fields:)),
            privacy: Privacy(
                redactionDefaults: try privacy.bool("redactionDefaults"),
                retention: try privacy.optionalString("retention")))
        // Absent from an older proxy's report.
        self.traceURL = json["traceUrl"]?.stringValue
    }

    static func time(_ date: Date?) -> JSONValue { date.map { .string(Self.timestamp($0)) } ?? .null }
    static func text(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
    static func count(_ value: Int) -> JSONValue { .number(Double(value)) }
    static func count(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
    static func share(_ value: Double?) -> JSONValue {
        value.map { .number(($0 * 1_000_000).rounded() / 1_000_000) } ?? .null
    }
}

/// A report's JSON that this version cannot read.
public struct ReportFormatError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}

extension RouteReport {
    var json: JSONValue {
        let interval = self.gate.interval
        return .object([
            ("id", .string(self.id)),
            ("method", .string(self.method)),
            ("path", .string(self.path)),
            ("service", Report.text(self.service)),
            ("stage", .string(self.stage)),
            ("stageSince", Report.time(self.stageSince)),
            (
                "verdict",
                .object([
                    ("status", .string(self.verdict.status.rawValue)), ("next", Report.text(self.verdict.next)),
                    ("text", .string(self.verdict.text)),
                    ("reasons", .array(self.verdict.reasons.map(JSONValue.string))),
                    ("notMeasured", .array(self.verdict.notMeasured.map(JSONValue.string))),
                ])
            ),
            (
                "gate",
                .object([
                    ("compared", Report.count(self.gate.compared)),
                    ("matched", Report.count(self.gate.matched)),
                    ("mismatched", Report.count(self.gate.mismatched)),
                    ("explained", Report.count(self.gate.explained)),
                    ("matchRate", Report.share(self.gate.matchRate)),
                    ("confidence", .number(self.gate.confidence)),
                    (
                        "interval",
                        interval.map {
                            .object([("lower", Report.share($0.lower)), ("upper", Report.share($0.upper))])
                        } ?? .null
                    ),
                    ("gateLowerBound", Report.share(self.gate.gateLowerBound)),
                    ("minSamples", Report.count(self.gate.minSamples)),
                    ("minMatchRate", .number(self.gate.minMatchRate)),
                ])
            ),
            (
                "traffic",
                self.traffic.json
            ),
            (
                "sync",
                .object([
                    ("health", Report.text(self.sync.health)),
                    ("lag", Report.count(self.sync.lag)),
                    ("problem", Report.text(self.sync.problem)),
                    (
                        "reconcile",
                        self.sync.reconcile.map {
                            .object([
                                ("clean", .bool($0.clean)), ("at", .string($0.at)), ("summary", .string($0.summary)),
                            ])
                        } ?? .null
                    ),
                    ("reverseSync", Report.text(self.sync.reverseSync)),
                    ("undeclared", .array(self.sync.undeclared.map(JSONValue.string))),
                ])
            ),
            ("signaturesTotal", Report.count(self.signaturesTotal)),
            ("signatures", .array(self.signatures.map(\.json))),
            (
                "pointers",
                .array(
                    self.pointers.map {
                        .object([
                            ("pointer", .string($0.pointer)), ("kind", .string($0.kind)),
                            ("count", Report.count($0.count)),
                        ])
                    })
            ),
            (
                "buckets",
                .array(
                    self.buckets.map {
                        .object([
                            ("start", .string(Report.timestamp($0.start))), ("compared", Report.count($0.compared)),
                            ("matched", Report.count($0.matched)),
                            ("mismatched", Report.count($0.mismatched)), ("matchRate", Report.share($0.matchRate)),
                        ])
                    })
            ),
        ])
    }

    init(fields: Fields) throws(ReportFormatError) {
        let verdict = try fields.object("verdict")
        let statusText = try verdict.string("status")
        guard let status = Verdict.Status(rawValue: statusText) else {
            throw ReportFormatError(message: "\(verdict.path).status: unknown \"\(statusText)\"")
        }
        let gateFields = try fields.object("gate")
        var gate = Gate()
        gate.compared = try gateFields.int("compared")
        gate.matched = try gateFields.int("matched")
        gate.explained = try gateFields.int("explained")
        gate.confidence = try gateFields.double("confidence")
        gate.minSamples = try gateFields.int("minSamples")
        gate.minMatchRate = try gateFields.double("minMatchRate")
        let trafficFields = try fields.object("traffic")
        var traffic = Traffic()
        // The reasons a shadow was not compared came later: a report without them reads them as 0.
        traffic.counts = try RouteCounts { counter throws(ReportFormatError) in
            RouteCounts.notComparedColumns.contains(counter.column)
                && trafficFields.value[counter.name] == nil
                ? 0 : try trafficFields.int(counter.name)
        }
        traffic.firstSeen = try trafficFields.optionalDate("firstSeen")
        traffic.lastSeen = try trafficFields.optionalDate("lastSeen")
        let syncFields = try fields.object("sync")
        var sync = Sync()
        sync.health = try syncFields.optionalString("health")
        sync.lag = try syncFields.optionalInt("lag")
        sync.problem = try syncFields.optionalString("problem")
        if let reconcile = try syncFields.optionalObject("reconcile") {
            sync.reconcile = RouteEvidence.Reconcile(
                clean: try reconcile.bool("clean"), at: try reconcile.string("at"),
                summary: try reconcile.string("summary"))
        }
        sync.reverseSync = try syncFields.optionalString("reverseSync")
        sync.undeclared = try (syncFields.optionalArray("undeclared") ?? []).map {
            item throws(ReportFormatError) in try item.asString()
        }
        self.init(
            id: try fields.string("id"), method: try fields.string("method"), path: try fields.string("path"),
            service: try fields.optionalString("service"),
            stage: try fields.string("stage"), stageSince: try fields.optionalDate("stageSince"), gate: gate,
            traffic: traffic, sync: sync,
            verdict: Verdict(
                status: status, next: try verdict.optionalString("next"),
                reasons: try verdict.array("reasons").map { item throws(ReportFormatError) in try item.asString() },
                notMeasured: try (verdict.optionalArray("notMeasured") ?? []).map { item throws(ReportFormatError) in
                    try item.asString()
                }),
            signatures: try fields.array("signatures").map(Signature.init(fields:)),
            signaturesTotal: try fields.int("signaturesTotal"),
            pointers: try fields.array("pointers").map { item throws(ReportFormatError) in
                Pointer(
                    pointer: try item.string("pointer"), kind: try item.string("kind"), count: try item.int("count"))
            },
            buckets: try fields.array("buckets").map { item throws(ReportFormatError) in
                Bucket(
                    start: try item.date("start"), compared: try item.int("compared"), matched: try item.int("matched"),
                    mismatched: try item.int("mismatched"))
            })
    }
}

extension RouteReport.Signature {
    var json: JSONValue {
        .object([
            ("id", .string(self.id)),
            ("text", .string(self.text)),
            ("count", Report.count(self.count)),
            ("sinceStageChange", Report.count(self.sinceStageChange)),
            ("firstSeen", .string(Report.timestamp(self.firstSeen))),
            ("lastSeen", .string(Report.timestamp(self.lastSeen))),
            (
                "entries",
                .array(self.entries.map { .object([("pointer", .string($0.pointer)), ("kind", .string($0.kind))]) })
            ),
            (
                "triage",
                self.triage.map {
                    .object([
                        ("decision", .string($0.decision)), ("reason", .string($0.reason)),
                        ("actor", .string($0.actor)), ("at", .string(Report.timestamp($0.at))),
                    ])
                } ?? .null
            ),
            ("samplesKept", Report.count(self.samplesKept)),
            ("samples", .array(self.samples.map(\.json))),
        ])
    }

    init(fields: Fields) throws(ReportFormatError) {
        var triage: RouteReport.Triage?
        if let item = try fields.optionalObject("triage") {
            triage = RouteReport.Triage(
                decision: try item.string("decision"), reason: try item.string("reason"),
                actor: try item.string("actor"), at: try item.date("at"))
        }
        self.init(
            id: try fields.string("id"), text: try fields.string("text"), count: try fields.int("count"),
            sinceStageChange: try fields.int("sinceStageChange"),
            firstSeen: try fields.date("firstSeen"), lastSeen: try fields.date("lastSeen"),
            entries: try fields.array("entries").map { item throws(ReportFormatError) in
                RouteReport.Entry(pointer: try item.string("pointer"), kind: try item.string("kind"))
            },
            triage: triage, samplesKept: try fields.int("samplesKept"),
            samples: try fields.array("samples").map(RouteReport.Sample.init(fields:)))
    }
}

extension RouteReport.Sample {
    var json: JSONValue {
        .object([
            ("id", Report.count(self.id)),
            ("recordedAt", .string(Report.timestamp(self.recordedAt))),
            ("requestId", .string(self.requestID)),
            ("traceId", Report.text(self.traceID)),
            ("servedBy", .string(self.servedBy)),
            (
                "request",
                .object(
                    [
                        ("method", .string(self.method)), ("path", .string(self.path)),
                        ("query", Report.text(self.query)),
                    ] + Self.messageMembers(self.request))
            ),
            (
                "monolith",
                .object([("status", Report.count(self.monolith.status))] + Self.messageMembers(self.monolith))
            ),
            ("service", .object([("status", Report.count(self.service.status))] + Self.messageMembers(self.service))),
            (
                "differences",
                .array(
                    self.differences.map {
                        .object([
                            ("at", .string($0.at)), ("kind", .string($0.kind)), ("monolith", $0.monolith),
                            ("service", $0.service),
                        ])
                    })
            ),
            ("truncated", .bool(self.truncated)),
        ])
    }

    static func messageMembers(_ message: RouteReport.Message) -> [(key: String, value: JSONValue)] {
        let body: JSONValue =
            switch message.body {
            case .none: .null
            case .text(let text): .string(text)
            case .base64(let data): .object([("base64", .string(data))])
            }
        return [
            ("headers", .array(message.headers.map { .array([.string($0.name), .string($0.value)]) })), ("body", body),
        ]
    }

    static func message(_ fields: Fields, status: Bool) throws(ReportFormatError) -> RouteReport.Message {
        var headers: [(name: String, value: String)] = []
        for item in try fields.array("headers") {
            guard let pair = item.value.arrayValue, pair.count == 2, let name = pair[0].stringValue,
                let value = pair[1].stringValue
            else {
                throw ReportFormatError(message: "\(item.path): a header is [name, value]")
            }
            headers.append((name, value))
        }
        let body: RouteReport.Body
        switch fields.value["body"] {
        case .string(let text): body = .text(text)
        case .object:
            body = .base64(try fields.object("body").string("base64"))
        case .null: body = .none
        default: throw ReportFormatError(message: "\(fields.path).body: a string, {\"base64\": …} or null")
        }
        return RouteReport.Message(status: status ? try fields.int("status") : nil, headers: headers, body: body)
    }

    init(fields: Fields) throws(ReportFormatError) {
        let request = try fields.object("request")
        self.init(
            id: try fields.int("id"), recordedAt: try fields.date("recordedAt"),
            requestID: try fields.string("requestId"),
            servedBy: try fields.string("servedBy"), method: try request.string("method"),
            path: try request.string("path"),
            query: try request.optionalString("query"), request: try Self.message(request, status: false),
            monolith: try Self.message(try fields.object("monolith"), status: true),
            service: try Self.message(try fields.object("service"), status: true),
            differences: try fields.array("differences").map { item throws(ReportFormatError) in
                RouteReport.Difference(
                    at: try item.string("at"), kind: try item.string("kind"), monolith: item.value["monolith"] ?? .null,
                    service: item.value["service"] ?? .null)
            },
            truncated: try fields.bool("truncated"))
        // Absent from an older proxy's report.
        self.traceID = fields.value["traceId"]?.stringValue
    }
}

/// Typed reads of a JSON object, with the path of what is missing or mistyped.
struct Fields {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, _ path: String) {
        self.value = value
        self.path = path
    }

    private func member(_ key: String) throws(ReportFormatError) -> JSONValue {
        guard self.value.objectValue != nil else {
            throw ReportFormatError(message: "\(self.path): must be an object, not \(self.value.typeName)")
        }
        guard let member = self.value[key] else { throw ReportFormatError(message: "\(self.path).\(key) is missing") }
        return member
    }

    private func wrong(_ key: String, _ expected: String, _ found: JSONValue) -> ReportFormatError {
        ReportFormatError(message: "\(self.path).\(key) must be \(expected), not \(found.typeName)")
    }

    func asString() throws(ReportFormatError) -> String {
        guard let text = self.value.stringValue else {
            throw ReportFormatError(message: "\(self.path) must be a string, not \(self.value.typeName)")
        }
        return text
    }

    /// The member `key` as `read` takes it; refused as not `expected` when `read` gives nil.
    private func typed<Value>(
        _ key: String, _ expected: String, _ read: (JSONValue) -> Value?
    ) throws(ReportFormatError) -> Value {
        let member = try self.member(key)
        guard let value = read(member) else { throw self.wrong(key, expected, member) }
        return value
    }

    func string(_ key: String) throws(ReportFormatError) -> String {
        try self.typed(key, "a string", \.stringValue)
    }

    func optionalString(_ key: String) throws(ReportFormatError) -> String? {
        let member = try self.member(key)
        if member == .null { return nil }
        guard let text = member.stringValue else { throw self.wrong(key, "a string or null", member) }
        return text
    }

    func double(_ key: String) throws(ReportFormatError) -> Double {
        try self.typed(key, "a number", \.numberValue)
    }

    func int(_ key: String) throws(ReportFormatError) -> Int {
        let number = try self.double(key)
        guard number == number.rounded(), abs(number) < 1e15 else {
            throw ReportFormatError(message: "\(self.path).\(key) must be a whole number")
        }
        return Int(number)
    }

    func optionalInt(_ key: String) throws(ReportFormatError) -> Int? {
        if try self.member(key) == .null { return nil }
        return try self.int(key)
    }

    func bool(_ key: String) throws(ReportFormatError) -> Bool {
        try self.typed(key, "true or false", \.boolValue)
    }

    func date(_ key: String) throws(ReportFormatError) -> Date {
        let text = try self.string(key)
        guard let date = Report.date(text) else {
            throw ReportFormatError(message: "\(self.path).\(key) must be an ISO 8601 time, not \"\(text)\"")
        }
        return date
    }

    func optionalDate(_ key: String) throws(ReportFormatError) -> Date? {
        if try self.member(key) == .null { return nil }
        return try self.date(key)
    }

    func object(_ key: String) throws(ReportFormatError) -> Fields {
        let member = try self.member(key)
        guard member.objectValue != nil else { throw self.wrong(key, "an object", member) }
        return Fields(member, "\(self.path).\(key)")
    }

    func optionalObject(_ key: String) throws(ReportFormatError) -> Fields? {
        if try self.member(key) == .null { return nil }
        return try self.object(key)
    }

    /// An array that older reports do not have: nil when absent or null.
    func optionalArray(_ key: String) throws(ReportFormatError) -> [Fields]? {
        guard let member = self.value[key], member != .null else { return nil }
        return try self.array(key)
    }

    func array(_ key: String) throws(ReportFormatError) -> [Fields] {
        let member = try self.member(key)
        guard let items = member.arrayValue else { throw self.wrong(key, "an array", member) }
        return items.enumerated().map { Fields($0.element, "\(self.path).\(key)[\($0.offset)]") }
    }
}

extension RouteReport.Traffic {
    /// The counters in their order, `matchRate` after `mismatched`, then `firstSeen` and `lastSeen`.
    var json: JSONValue {
        var members = RouteCounts.counters.map { ($0.name, Report.count(self.counts[keyPath: $0.keyPath])) }
        members.insert(("matchRate", Report.share(self.matchRate)), at: 3)
        members.append(("firstSeen", Report.time(self.firstSeen)))
        members.append(("lastSeen", Report.time(self.lastSeen)))
        return .object(members)
    }
}
