public import ControlPlane
import DiffStore
public import HTTPTypes
public import JSON
import RouteTable

// The admin API's wire form of the control plane's outcomes: the one place that gives each a status and a JSON body,
// and (for the CLI, which gets them through the admin API) reads them back.

extension ControlError {
    /// The admin API's status for the refusal.
    public var status: HTTPResponse.Status {
        switch self.code {
        case .ifMatchRequired: .preconditionRequired
        case .stale: .preconditionFailed
        case .invalidRoutes, .reasonRequired, .notIgnorable, .pathsRequired, .invalidDecision: .unprocessableContent
        case .notFound, .noMatch, .unknownSignature: .notFound
        case .gateRefused, .nothingToUndo, .undoConflict, .routesFileInvalid: .conflict
        case .busy, .storeUnavailable: .serviceUnavailable
        case .storageFailed: .internalServerError
        default: .badRequest
        }
    }

    /// The error envelope: `{ "error": { "code", "message", … } }`, with `currentHash`, `problems` or `refusals`.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("code", .string(self.code.rawValue)), ("message", .string(self.message)),
        ]
        if let hash = self.currentHash { members.append(("currentHash", .string(hash))) }
        if self.code == .invalidRoutes {
            members.append(
                (
                    "problems",
                    .array(self.problems.map { .object([("path", .string($0.path)), ("reason", .string($0.reason))]) })
                ))
        }
        if self.code == .gateRefused { members.append(("refusals", Gates.Verdict.json(self.refusals))) }
        return .object([("error", .object(members))])
    }

    /// An error envelope read back (nil when `body` is not one).
    public init?(json body: JSONValue) {
        guard let error = body["error"], let code = error["code"]?.stringValue else { return nil }
        self.init(
            Code(code), error["message"]?.stringValue ?? body.jsonText, currentHash: error["currentHash"]?.stringValue,
            problems: (error["problems"]?.arrayValue ?? []).map {
                RouteTableError.Problem(path: $0["path"]?.stringValue ?? "", reason: $0["reason"]?.stringValue ?? "")
            },
            refusals: (error["refusals"]?.arrayValue ?? []).compactMap(Gates.Verdict.init(json:)))
    }
}

extension LiveTable {
    /// `{ version, hash, …extra, table }`: what `GET /admin/routes` answers, and every change that carries the table.
    public func json(_ extra: [(key: String, value: JSONValue)] = []) -> JSONValue {
        .object(
            [("version", .number(Double(self.version))), ("hash", .string(self.contentHash))] + extra + [
                ("table", self.table.document)
            ])
    }

    /// A table read back from an answer that carries one (its text is the document's, as the admin API sent it).
    public init(json body: JSONValue) throws(ControlError) {
        guard let document = body["table"], let hash = body["hash"]?.stringValue else {
            throw ControlError(
                .init("bad_answer"), "the admin API's answer carries no table: \(body.jsonText.prefix(200))")
        }
        do {
            let table = try RouteTable.validate(document)
            self.init(
                table: table, version: Int(body["version"]?.numberValue ?? 0), text: document.prettyJSONText,
                contentHash: hash)
        } catch {
            throw ControlError(.invalidRoutes, "the admin API's table is invalid: \(error)", problems: error.problems)
        }
    }
}

extension TableChange {
    /// The table with `changed`, `forced` and, when forced, `overridden`.
    public var json: JSONValue {
        var extra: [(key: String, value: JSONValue)] = [
            ("changed", StageChange.json(self.changed)), ("forced", .bool(self.forced)),
        ]
        if self.forced { extra.append(("overridden", Gates.Verdict.json(self.overridden))) }
        if !self.notMeasured.isEmpty { extra.append(("notMeasured", Gates.Verdict.json(self.notMeasured))) }
        if !self.reviews.isEmpty { extra.append(("reviews", SignatureReview.json(self.reviews))) }
        return self.table.json(extra)
    }

    public init(json body: JSONValue) throws(ControlError) {
        self.init(
            table: try LiveTable(json: body), changed: StageChange.changes(body["changed"]),
            forced: body["forced"]?.boolValue == true,
            overridden: (body["overridden"]?.arrayValue ?? []).compactMap(Gates.Verdict.init(json:)),
            notMeasured: (body["notMeasured"]?.arrayValue ?? []).compactMap(Gates.Verdict.init(json:)),
            reviews: SignatureReview.reviews(body["reviews"]))
    }
}

extension UndoOutcome {
    /// The table with `undid` and `changed`.
    public var json: JSONValue {
        let undid: JSONValue = .object([
            ("time", .string(self.undid.time)), ("action", .string(self.undid.action)),
            ("actor", self.undid.actor.map(JSONValue.string) ?? .null),
            ("reason", self.undid.reason.map(JSONValue.string) ?? .null),
        ])
        return self.table.json([
            ("undid", undid), ("changed", StageChange.json(self.changed)),
            ("reviews", SignatureReview.json(self.reviews)),
        ])
    }

    public init(json body: JSONValue) throws(ControlError) {
        let undid = body["undid"]
        self.init(
            table: try LiveTable(json: body),
            undid: UndoneChange(
                time: undid?["time"]?.stringValue ?? "?", action: undid?["action"]?.stringValue ?? "?",
                actor: undid?["actor"]?.stringValue,
                reason: undid?["reason"]?.stringValue),
            changed: StageChange.changes(body["changed"]), reviews: SignatureReview.reviews(body["reviews"]))
    }
}

extension TriageOutcome {
    /// `{ route, signature, text, decision, ignoreAdded? }`
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("route", .string(self.route)), ("signature", .string(self.signature)), ("text", .string(self.text)),
            ("decision", .string(self.decision.rawValue)),
        ]
        if let added = self.ignoreAdded { members.append(("ignoreAdded", .array(added.map(JSONValue.string)))) }
        members.append(("recorded", .bool(self.recorded)))
        members.append(("reviews", SignatureReview.json(self.reviews)))
        return .object(members)
    }

    /// A triage answer read back; an answer without its route, signature or decision is refused, never guessed.
    public init(json body: JSONValue, tableHash: String?) throws(ControlError) {
        guard let route = body["route"]?.stringValue, let signature = body["signature"]?.stringValue,
            let decision = body["decision"]?.stringValue.flatMap(TriageDecision.Decision.init(rawValue:))
        else {
            throw ControlError(
                .init("bad_answer"), "the admin API's triage answer is incomplete: \(body.jsonText.prefix(200))")
        }
        self.init(
            route: route, signature: signature, text: body["text"]?.stringValue ?? "", decision: decision,
            ignoreAdded: body["ignoreAdded"]?.arrayValue?.compactMap(\.stringValue), tableHash: tableHash ?? "",
            reviews: SignatureReview.reviews(body["reviews"]), recorded: body["recorded"]?.boolValue ?? true)
    }

}

extension EvidenceListing {
    /// `{ version, hash, tableRoutes, routes: [standing], upstreams: [group] }`
    public var json: JSONValue {
        .object([
            ("version", .number(Double(self.version))), ("hash", .string(self.hash)),
            ("tableRoutes", .number(Double(self.tableRoutes))),
            ("routes", .array(self.routes.map(\.json))), ("upstreams", self.upstreams),
        ])
    }
}

extension RouteStanding {
    /// One route of `GET /admin/evidence`.
    public var json: JSONValue {
        func probe(_ probe: RouteEvidence.Probe) -> JSONValue {
            switch probe {
            case .ok: .string("ok")
            case .failed(let why): .string(why)
            case .notChecked: .null
            }
        }
        let evidence = self.evidence
        let signatures: [JSONValue] = evidence.signatures.map { signature in
            .object([
                ("id", .string(signature.id)), ("signature", .string(signature.text)),
                ("count", .number(Double(signature.count))),
                ("triage", signature.decision.map(JSONValue.string) ?? .null),
            ])
        }
        let reconcile: JSONValue =
            evidence.reconcile.map {
                .object([("clean", .bool($0.clean)), ("at", .string($0.at)), ("summary", .string($0.summary))])
            } ?? .null
        let next: JSONValue =
            self.next.map { verdict in
                .object([
                    ("stage", .string(verdict.to.rawValue)), ("allowed", .bool(verdict.allowed)),
                    ("reasons", .array(verdict.reasons.map(JSONValue.string))),
                    ("notMeasured", .array(verdict.notMeasured.map(JSONValue.string))),
                ])
            } ?? .null
        return .object([
            ("id", .string(self.id)),
            ("method", .string(self.method)),
            ("path", .string(self.path)),
            ("service", self.service.map(JSONValue.string) ?? .null),
            ("stage", .string(self.stage.rawValue)),
            ("since", evidence.since.map(JSONValue.string) ?? .null),
            ("compared", .number(Double(evidence.compared))),
            ("matched", .number(Double(evidence.matched))),
            ("explained", .number(Double(evidence.explained))),
            ("matchRate", self.matchRate.map(JSONValue.number) ?? .null),
            ("matchRateLowerBound", self.matchRateLowerBound.map(JSONValue.number) ?? .null),
            ("signatures", .array(signatures)),
            ("untriaged", .number(Double(evidence.untriaged.count))),
            ("health", probe(evidence.health)),
            ("syncLag", evidence.syncLag.map { .number(Double($0)) } ?? .null),
            ("syncProblem", evidence.syncProblem.map(JSONValue.string) ?? .null),
            ("reconcile", reconcile),
            ("reverseSync", probe(evidence.reverseSync)),
            ("undeclared", .array(evidence.undeclared.map(JSONValue.string))),
            ("next", next),
        ])
    }
}

extension HistoryPage {
    /// `{ total, entries }`: each entry as the audit log holds it, without the tables.
    public var json: JSONValue {
        .object([("total", .number(Double(self.total))), ("entries", .array(self.entries.map(\.fields)))])
    }

    public init(json body: JSONValue) {
        let entries = (body["entries"]?.arrayValue ?? []).map { AuditRecord(fields: $0) }
        self.init(total: Int(body["total"]?.numberValue ?? Double(entries.count)), entries: entries)
    }
}

extension SignatureReview {
    /// `[{ route, before: {compared, accepted}, after: {…}, explained: [{id, text}], untriaged, stillDiffering }]`
    public static func json(_ reviews: [SignatureReview]) -> JSONValue {
        func side(_ value: (compared: Int, accepted: Int)) -> JSONValue {
            .object([("compared", .number(Double(value.compared))), ("accepted", .number(Double(value.accepted)))])
        }
        func list(_ signatures: [Signature]) -> JSONValue {
            .array(signatures.map { .object([("id", .string($0.id)), ("text", .string($0.text))]) })
        }
        return .array(
            reviews.map {
                .object([
                    ("route", .string($0.route)), ("before", side($0.before)), ("after", side($0.after)),
                    ("explained", list($0.explained)), ("untriaged", list($0.untriaged)),
                    ("stillDiffering", list($0.stillDiffering)),
                ])
            })
    }

    /// Reads ``json(_:)`` back (entries without a route are left out).
    public static func reviews(_ json: JSONValue?) -> [SignatureReview] {
        func side(_ value: JSONValue?) -> (compared: Int, accepted: Int) {
            (Int(value?["compared"]?.numberValue ?? 0), Int(value?["accepted"]?.numberValue ?? 0))
        }
        func list(_ value: JSONValue?) -> [Signature] {
            (value?.arrayValue ?? []).compactMap { item in
                item["id"]?.stringValue.map { Signature(id: $0, text: item["text"]?.stringValue ?? "") }
            }
        }
        return (json?.arrayValue ?? []).compactMap { item in
            guard let route = item["route"]?.stringValue else { return nil }
            return SignatureReview(
                route: route, before: side(item["before"]), after: side(item["after"]),
                explained: list(item["explained"]),
                untriaged: list(item["untriaged"]), stillDiffering: list(item["stillDiffering"]))
        }
    }
}
