public import DiffStore
import Foundation
public import JSON
public import RouteTable

/// An answer of a route operation: an HTTP status, a JSON body and the table's ETag when it names one. The admin API
/// sends it as is; the CLI gets the same value when it edits routes.json itself, so both paths answer alike.
public struct ControlAnswer: Sendable {
    public var status: Int
    public var body: JSONValue
    /// The live table's content hash after the operation, when the answer carries the table.
    public var etag: String?

    public init(status: Int, body: JSONValue, etag: String? = nil) {
        self.status = status
        self.body = body
        self.etag = etag
    }

    /// The admin API's error envelope: `{ "error": { "code", "message", … } }`.
    public static func error(_ status: Int, _ code: String, _ message: String, extra: [(key: String, value: JSONValue)] = []) -> ControlAnswer {
        ControlAnswer(status: status, body: .object([("error", .object([("code", .string(code)), ("message", .string(message))] + extra))]))
    }

    static func changeError(_ error: RouteControl.ChangeError) -> ControlAnswer {
        switch error {
        case .stale(let current):
            return .error(
                412, "stale", "the table changed since you read it (another operator?); read it again (current ETag \"\(current)\")",
                extra: [("currentHash", .string(current))])
        case .invalid(let problems):
            return .error(
                422, "invalid_routes", problems.description,
                extra: [("problems", .array(problems.problems.map { .object([("path", .string($0.path)), ("reason", .string($0.reason))]) }))])
        case .unknownRoute(let id):
            return .error(404, "not_found", "no route has id \"\(id)\"")
        case .storage(let message):
            return .error(500, "storage_failed", message)
        case .fileInvalid(let message):
            return .error(409, "routes_file_invalid", message)
        case .busy(let message):
            return .error(503, "busy", message)
        }
    }
}

/// The operations of the ops CLI on the route table, with evidence gates, the audit log and undo: what
/// `POST /admin/stage`, `POST /admin/undo`, `POST /admin/triage`, `GET /admin/history` and `GET /admin/evidence`
/// run, and what `strangler stage|promote|rollback|undo|triage|history|routes` runs in-process when no proxy is up.
///
/// ```swift
/// let operations = RouteOperations(control: control, diffStore: store)
/// let answer = await operations.stage(selector: "contacts.*", to: .coexist, expectedHash: etag, actor: "alice", reason: "reads ready", force: false)
/// answer.status   // 200, or 409 with every gate's reason
/// ```
public struct RouteOperations: Sendable {
    public let control: RouteControl
    public let diffStore: DiffStore
    public let collector: EvidenceCollector
    /// Writes what the proxy's recorder still holds, so the counts include every finished shadow.
    package let flush: @Sendable () async -> Void

    public init(control: RouteControl, diffStore: DiffStore, probeTimeout: Duration = .seconds(2), flush: @escaping @Sendable () async -> Void = {}) {
        self.control = control
        self.diffStore = diffStore
        self.collector = EvidenceCollector(store: diffStore, dataDirectory: control.dataDirectory, probeTimeout: probeTimeout)
        self.flush = flush
    }

    // MARK: Reading

    /// The live table, its version and hash (`GET /admin/routes`).
    public func table() -> ControlAnswer {
        let snapshot = self.control.table.liveTable
        return ControlAnswer(status: 200, body: Self.tableBody(snapshot), etag: snapshot.contentHash)
    }

    static func tableBody(_ snapshot: LiveTable, extra: [(key: String, value: JSONValue)] = []) -> JSONValue {
        .object([("version", .number(Double(snapshot.version))), ("hash", .string(snapshot.contentHash))] + extra + [("table", snapshot.table.document)])
    }

    /// Every route (or one) with its evidence and whether it may move to its next stage, and if not, why
    /// (`GET /admin/evidence`; `strangler routes`).
    public func evidence(route id: String? = nil) async -> ControlAnswer {
        let snapshot = self.control.table.liveTable
        let table = snapshot.table
        var routes = table.routes
        if let id {
            switch self.select(id, in: table) {
            case .success(let selected): routes = selected
            case .failure(let failure): return failure.answer
            }
        }
        await self.flush()
        let evidence = await self.collector.collect(table: table, routes: routes)
        let items: [JSONValue] = routes.map { route in
            Self.evidenceJSON(route: route, evidence: evidence[route.id] ?? RouteEvidence(), policy: table.gates)
        }
        return ControlAnswer(
            status: 200,
            body: .object([
                ("version", .number(Double(snapshot.version))), ("hash", .string(snapshot.contentHash)),
                ("tableRoutes", .number(Double(table.routes.count))), ("routes", .array(items)),
            ]),
            etag: snapshot.contentHash)
    }

    static func evidenceJSON(route: Route, evidence: RouteEvidence, policy: GatePolicy) -> JSONValue {
        func probe(_ probe: RouteEvidence.Probe) -> JSONValue {
            switch probe {
            case .ok: .string("ok")
            case .failed(let why): .string(why)
            case .notChecked: .null
            }
        }
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string(route.id)),
            ("method", .string(route.method)),
            ("path", .string(route.path.description)),
            ("service", route.service.map(JSONValue.string) ?? .null),
            ("stage", .string(route.stage.rawValue)),
            ("since", evidence.since.map(JSONValue.string) ?? .null),
            ("compared", .number(Double(evidence.compared))),
            ("matched", .number(Double(evidence.matched))),
            ("explained", .number(Double(evidence.explained))),
            ("matchRate", evidence.compared > 0 ? .number(Double(evidence.matched) / Double(evidence.compared)) : .null),
            (
                "matchRateLowerBound",
                evidence.compared > 0
                    ? .number(Wilson.lowerBound(successes: evidence.acceptedMatches, trials: evidence.compared, confidence: policy.eliminate.confidence))
                    : .null
            ),
            (
                "signatures",
                .array(
                    evidence.signatures.map { signature in
                        .object([
                            ("id", .string(signature.id)), ("signature", .string(signature.text)), ("count", .number(Double(signature.count))),
                            ("triage", signature.decision.map(JSONValue.string) ?? .null),
                        ])
                    })
            ),
            ("untriaged", .number(Double(evidence.untriaged.count))),
            ("health", probe(evidence.health)),
            ("syncLag", evidence.syncLag.map { .number(Double($0)) } ?? .null),
            ("syncProblem", evidence.syncProblem.map(JSONValue.string) ?? .null),
            (
                "reconcile",
                evidence.reconcile.map { .object([("clean", .bool($0.clean)), ("at", .string($0.at)), ("summary", .string($0.summary))]) } ?? .null
            ),
            ("reverseSync", probe(evidence.reverseSync)),
        ]
        // A route without a service stays with the monolith: it has no next stage.
        if let verdict = Gates.next(route: route, evidence: evidence, policy: policy) {
            members.append(("next", .object([("stage", .string(verdict.to.rawValue)), ("allowed", .bool(verdict.allowed)), ("reasons", .array(verdict.reasons.map(JSONValue.string)))])))
        } else {
            members.append(("next", .null))
        }
        return .object(members)
    }

    /// The audit log, newest last, without the whole tables (`GET /admin/history`; `strangler history`).
    public func history(route: String? = nil, limit: Int = 50) async -> ControlAnswer {
        var entries = await self.control.auditEntries()
        if let route {
            entries = entries.filter { Self.routesOf($0).contains(route) }
        }
        let kept = entries.suffix(max(0, limit)).map(Self.summary)
        return ControlAnswer(status: 200, body: .object([("total", .number(Double(entries.count))), ("entries", .array(Array(kept)))]))
    }

    /// The routes an audit entry is about.
    static func routesOf(_ entry: JSONValue) -> [String] {
        var routes: [String] = []
        if let route = entry["route"]?.stringValue { routes.append(route) }
        for change in entry["changes"]?.arrayValue ?? [] { if let route = change["route"]?.stringValue, !routes.contains(route) { routes.append(route) } }
        // A whole-table replace: every route whose stage or definition differs.
        if routes.isEmpty, let before = entry["before"]?["routes"]?.arrayValue, let after = entry["after"]?["routes"]?.arrayValue {
            var old: [String: String] = [:]
            for item in before { if let id = item["id"]?.stringValue { old[id] = item.jsonText } }
            for item in after {
                if let id = item["id"]?.stringValue, old.removeValue(forKey: id) != item.jsonText { routes.append(id) }
            }
            routes += old.keys.sorted()
        }
        return routes
    }

    /// An audit entry without `before` and `after`, with `routes` it is about.
    static func summary(_ entry: JSONValue) -> JSONValue {
        var members = (entry.objectValue ?? []).filter { $0.key != "before" && $0.key != "after" }
        if entry["changes"] == nil, entry["before"] != nil {
            members.append(("routes", .array(Self.routesOf(entry).map(JSONValue.string))))
        }
        return .object(members)
    }

    // MARK: Changing

    /// Moves the routes that `selector` names (an id, or a pattern with `*` and `?` such as `contacts.*`) to `stage`,
    /// all or none: every move must pass its gates (unless `force`, which needs a reason), then one table swap and one
    /// audit entry. Routes already in `stage` are left as they are.
    public func stage(selector: String, to stage: Stage, expectedHash: String?, actor: String, reason: String?, force: Bool) async -> ControlAnswer {
        guard let expectedHash else { return Self.ifMatchRequired }
        let snapshot = self.control.table.liveTable
        guard snapshot.contentHash == expectedHash else { return ControlAnswer.changeError(.stale(currentHash: snapshot.contentHash)) }
        let table = snapshot.table
        let selected: [Route]
        switch self.select(selector, in: table) {
        case .success(let routes): selected = routes
        case .failure(let failure): return failure.answer
        }
        let reason = reason.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        if force, reason == nil { return .error(422, "reason_required", "--force overrides the gates and needs a reason (for the audit log)") }
        let moving = selected.filter { $0.stage != stage }
        guard !moving.isEmpty else {
            return ControlAnswer(
                status: 200, body: Self.tableBody(snapshot, extra: [("changed", .array([])), ("forced", .bool(false))]), etag: snapshot.contentHash)
        }
        var document = table.document
        for route in moving { document = RouteControl.settingStage(of: route.id, to: stage, in: document) }
        // Validate before judging: a move the table cannot hold (coexist without a service) is a usage error, not a gate.
        do {
            _ = try RouteTable.validate(document)
        } catch {
            return ControlAnswer.changeError(.invalid(error))
        }
        await self.flush()
        let evidence = await self.collector.collect(table: table, routes: moving)
        let verdicts = moving.map { Gates.evaluate(route: $0, to: stage, evidence: evidence[$0.id] ?? RouteEvidence(), policy: table.gates) }
        let refused = verdicts.filter { !$0.allowed }
        let refusals = Self.refusalsJSON(refused)
        if !refused.isEmpty, !force {
            let count = refused.count
            return .error(
                409, "gate_refused",
                "\(count) of \(moving.count) move\(moving.count == 1 ? "" : "s") refused by the gates; nothing changed (--force overrides, with --reason)",
                extra: [("refusals", refusals)])
        }
        let changes: [JSONValue] = moving.map {
            .object([("route", .string($0.id)), ("from", .string($0.stage.rawValue)), ("to", .string(stage.rawValue))])
        }
        var detail: [(key: String, value: JSONValue)] = [("action", .string("stage"))]
        if moving.count == 1, !Self.isPattern(selector) {
            detail += [("route", .string(moving[0].id)), ("from", .string(moving[0].stage.rawValue)), ("to", .string(stage.rawValue))]
        } else {
            detail.append(("pattern", .string(selector)))
        }
        detail.append(("changes", .array(changes)))
        detail.append(("forced", .bool(force && !refused.isEmpty)))
        if force, !refused.isEmpty { detail.append(("overridden", refusals)) }
        do {
            let after = try await self.control.change(to: document, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
            return ControlAnswer(
                status: 200,
                body: Self.tableBody(after, extra: [("changed", .array(changes)), ("forced", .bool(force && !refused.isEmpty))] + (force && !refused.isEmpty ? [("overridden", refusals)] : [])),
                etag: after.contentHash)
        } catch {
            return ControlAnswer.changeError(error)
        }
    }

    /// Replaces the whole table with `text` (`PUT /admin/routes`), if the live one still has hash `expectedHash`. A route
    /// whose stage differs from the live table's passes the same gates as `stage` (a route that is new in the table
    /// moves from transform, where its requests were: with the monolith), all or none; `force` overrides refused gates,
    /// with a reason, and the audit entry says so. Changes without a stage move (rules, timeouts, services) need no gate.
    public func replace(text: String, expectedHash: String?, actor: String, reason: String?, force: Bool) async -> ControlAnswer {
        guard let expectedHash else { return Self.ifMatchRequired }
        let snapshot = self.control.table.liveTable
        guard snapshot.contentHash == expectedHash else { return ControlAnswer.changeError(.stale(currentHash: snapshot.contentHash)) }
        let table: RouteTable
        do {
            table = try RouteTable.parse(text)
        } catch {
            return ControlAnswer.changeError(.invalid(error))
        }
        let reason = reason.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        if force, reason == nil { return .error(422, "reason_required", "force overrides the gates and needs a reason (for the audit log)") }
        let (moving, refusals) = await self.judge(from: snapshot.table, to: table)
        if !refusals.isEmpty, !force {
            return .error(
                409, "gate_refused",
                "\(refusals.count) of \(moving.count) stage move\(moving.count == 1 ? "" : "s") in the new table refused by the gates; nothing changed "
                    + "(force=true overrides, with a reason)",
                extra: [("refusals", Self.refusalsJSON(refusals))])
        }
        let changes = Self.changesJSON(moving)
        let forced = force && !refusals.isEmpty
        var detail: [(key: String, value: JSONValue)] = [("action", .string("replace")), ("changes", changes), ("forced", .bool(forced))]
        if forced { detail.append(("overridden", Self.refusalsJSON(refusals))) }
        do {
            let after = try await self.control.replace(text: text, table: table, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
            return ControlAnswer(
                status: 200,
                body: Self.tableBody(after, extra: [("changed", changes), ("forced", .bool(forced))] + (forced ? [("overridden", Self.refusalsJSON(refusals))] : [])),
                etag: after.contentHash)
        } catch {
            return ControlAnswer.changeError(error)
        }
    }

    /// A stage move a table change makes: the route as judged (its stage is where it is judged from), where it goes,
    /// and where its requests are answered now.
    typealias Move = (route: Route, to: Stage, from: Stage)

    /// The moves that replacing `live` by `table` makes, and the gates' refusals, each judged from where its requests
    /// are answered now, by the gates in force (a table cannot pass by the gates it brings along):
    /// - a route whose stage differs from the live table's moves from that stage;
    /// - a route that is new, or that now matches other requests or sends them to another service (its method, path or
    ///   service changed), has no evidence for what it does now: it moves from transform, where those requests were;
    /// - a route the table drops hands its requests back to the monolith: it moves to transform;
    /// - a change of the gates themselves is a change of policy, not evidence: always refused (force overrides).
    func judge(from live: RouteTable, to table: RouteTable) async -> (moves: [Move], refusals: [Gates.Verdict]) {
        var moving: [Move] = []
        for route in table.routes {
            let current = live.route(id: route.id)
            let redefined = current.map { $0.method != route.method || $0.path != route.path || $0.service != route.service } ?? true
            let now = current?.stage ?? .transform
            // Back to transform is judged as leaving the stage it is in now (the rollback gate), redefined or not.
            let judgedFrom: Stage = redefined && route.stage != .transform ? .transform : now
            guard judgedFrom != route.stage || now != route.stage else { continue }
            var from = route
            from.stage = judgedFrom
            moving.append((from, route.stage, now))
        }
        let dropped = live.routes.filter { table.route(id: $0.id) == nil && $0.stage != .transform }
        for route in dropped { moving.append((route, .transform, route.stage)) }
        var refusals: [Gates.Verdict] = []
        if table.gates != live.gates {
            refusals.append(
                Gates.Verdict(
                    route: "*", from: .transform, to: .transform,
                    reasons: ["the table changes the gates themselves (\"gates\"): a change of policy, not evidence; it needs force and a reason"]))
        }
        if !moving.isEmpty {
            await self.flush()
            let kept = moving.filter { move in !dropped.contains { $0.id == move.route.id } }
            var evidence = await self.collector.collect(table: table, routes: kept.map(\.route))
            if !dropped.isEmpty { evidence.merge(await self.collector.collect(table: live, routes: dropped)) { new, _ in new } }
            refusals += moving.map { Gates.evaluate(route: $0.route, to: $0.to, evidence: evidence[$0.route.id] ?? RouteEvidence(), policy: live.gates) }
                .filter { !$0.allowed }
        }
        return (moving, refusals)
    }

    /// `[{ route, from, to, judgedFrom? }]`, as the audit log keeps a change's moves.
    static func changesJSON(_ moves: [Move]) -> JSONValue {
        .array(
            moves.map { move in
                var change: [(key: String, value: JSONValue)] = [
                    ("route", .string(move.route.id)), ("from", .string(move.from.rawValue)), ("to", .string(move.to.rawValue)),
                ]
                if move.route.stage != move.from { change.append(("judgedFrom", .string(move.route.stage.rawValue))) }
                return .object(change)
            })
    }

    static func refusalsJSON(_ refused: [Gates.Verdict]) -> JSONValue {
        .array(
            refused.map {
                .object([
                    ("route", .string($0.route)), ("from", .string($0.from.rawValue)), ("to", .string($0.to.rawValue)),
                    ("reasons", .array($0.reasons.map(JSONValue.string))),
                ])
            })
    }

    /// Reverts the last table change of the audit log: restores its `before` table exactly, if the live table is still
    /// its `after` (else nothing is done). The undo is itself audited (`action: "undo"`), so a second undo redoes.
    public func undo(expectedHash: String?, actor: String, reason: String?) async -> ControlAnswer {
        let snapshot = self.control.table.liveTable
        if let expectedHash, expectedHash != snapshot.contentHash { return ControlAnswer.changeError(.stale(currentHash: snapshot.contentHash)) }
        let entries = await self.control.auditEntries()
        guard let last = entries.last(where: { $0["before"] != nil && $0["after"] != nil }), let before = last["before"], let after = last["after"] else {
            return .error(409, "nothing_to_undo", "the audit log (\(self.control.auditPath)) has no change to undo")
        }
        let time = last["time"]?.stringValue ?? "?"
        let action = last["action"]?.stringValue ?? "change"
        guard snapshot.table.document.jsonText == after.jsonText else {
            return .error(
                409, "undo_conflict",
                "the live table is not the one the last change (\(action) at \(time) by \(last["actor"]?.stringValue ?? "?")) left: it changed since "
                    + "(an edit of routes.json?); nothing undone")
        }
        let beforeTable: RouteTable
        do {
            beforeTable = try RouteTable.validate(before)
        } catch {
            return ControlAnswer.changeError(.invalid(error))
        }
        var changes: [JSONValue] = []
        for route in beforeTable.routes {
            if let current = snapshot.table.route(id: route.id), current.stage != route.stage {
                changes.append(.object([("route", .string(route.id)), ("from", .string(current.stage.rawValue)), ("to", .string(route.stage.rawValue))]))
            }
        }
        let undone: JSONValue = .object(
            [("time", .string(time)), ("action", .string(action)), ("actor", last["actor"] ?? .null), ("reason", last["reason"] ?? .null)])
        var detail: [(key: String, value: JSONValue)] = [("action", .string("undo")), ("undoes", undone), ("changes", .array(changes))]
        // Undo passes no gate: it puts back a table that was live. But undoing an undo re-applies the change that one
        // undid, and if that change was forced, so is this one, and the audit log says so (with what was overridden).
        if action == "undo", let original = last["undoes"],
            let redone = entries.last(where: { $0["time"] == original["time"] && $0["action"] == original["action"] && $0["action"]?.stringValue != "undo" }),
            redone["forced"]?.boolValue == true
        {
            detail.append(("forced", .bool(true)))
            detail.append(("overridden", redone["overridden"] ?? .array([])))
        }
        do {
            let result = try await self.control.change(
                to: before, expectedHash: snapshot.contentHash, actor: actor, reason: reason ?? "undo of \(action) at \(time)", detail: detail)
            return ControlAnswer(status: 200, body: Self.tableBody(result, extra: [("undid", undone), ("changed", .array(changes))]), etag: result.contentHash)
        } catch {
            return ControlAnswer.changeError(error)
        }
    }

    /// Triage of a mismatch signature of a route: `accepted` records the difference as known and accepted; `ignored`
    /// also adds the signature's pointers to the route's `shadow.ignore` (a table change: needs `expectedHash`, audited).
    /// Either way the signature no longer blocks eliminate, and its occurrences count as explained.
    public func triage(
        route id: String, signature: String, decision: TriageDecision.Decision, expectedHash: String?, actor: String, reason: String?
    ) async -> ControlAnswer {
        let snapshot = self.control.table.liveTable
        guard let route = snapshot.table.route(id: id) else { return .error(404, "not_found", "no route has id \"\(id)\"") }
        guard let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty else {
            return .error(422, "reason_required", "a triage decision needs a reason")
        }
        await self.flush()
        let text: String?
        do {
            text = try self.diffStore.signatureText(route: id, signature: signature)
        } catch {
            return .error(500, "storage_failed", "the diff store could not be read: \(error)")
        }
        guard let text else { return .error(404, "unknown_signature", "route \(id) has no mismatch signature \"\(signature)\"") }
        var body: [(key: String, value: JSONValue)] = [
            ("route", .string(id)), ("signature", .string(signature)), ("text", .string(text)), ("decision", .string(decision.rawValue)),
        ]
        var etag = snapshot.contentHash
        if decision == .ignored {
            guard let expectedHash else { return Self.ifMatchRequired }
            let entries = Self.signatureEntries(text)
            let unignorable = entries.filter { !$0.pattern.hasPrefix("/") }
            guard unignorable.isEmpty else {
                return .error(
                    422, "not_ignorable",
                    "signature \(signature) has differences an ignore rule (a JSON pointer) cannot cover: "
                        + unignorable.map { "\($0.pattern) \($0.kind)" }.joined(separator: ", ") + "; use --accept instead")
            }
            let rules = entries.map(\.pattern).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let ignored = route.shadow?.ignore ?? []
            let adding = rules.filter { !ignored.contains($0) }
            if !adding.isEmpty {
                let document = Self.addingIgnore(adding, toRoute: id, in: snapshot.table.document) ?? snapshot.table.document
                do {
                    let after = try await self.control.change(
                        to: document, expectedHash: expectedHash, actor: actor, reason: reason,
                        detail: [
                            ("action", .string("triage")), ("route", .string(id)), ("signature", .string(signature)),
                            ("decision", .string(decision.rawValue)), ("ignore", .array(adding.map(JSONValue.string))),
                        ])
                    etag = after.contentHash
                } catch {
                    return ControlAnswer.changeError(error)
                }
            }
            body.append(("ignoreAdded", .array(adding.map(JSONValue.string))))
        }
        do {
            try self.diffStore.recordTriage(TriageDecision(route: id, signature: signature, decision: decision, reason: reason, actor: actor))
        } catch {
            return .error(500, "storage_failed", "the triage decision could not be stored: \(error)")
        }
        if decision == .accepted {
            // No table change; the decision is still in the history.
            let entry: JSONValue = .object([
                ("time", .string(ReconcileRecord.formatter.string(from: Date()))), ("actor", .string(actor)), ("reason", .string(reason)),
                ("action", .string("triage")), ("route", .string(id)), ("signature", .string(signature)), ("decision", .string("accepted")),
            ])
            try? AtomicFile.append(entry.jsonText + "\n", to: self.control.auditPath)
        }
        return ControlAnswer(status: 200, body: .object(body), etag: etag)
    }

    struct Refusal: Error {
        let answer: ControlAnswer
    }

    /// The routes a selector names: one id, or a pattern with `*` and `?` (`contacts.*`), in the table's order.
    func select(_ selector: String, in table: RouteTable) -> Result<[Route], Refusal> {
        if Self.isPattern(selector) {
            let selected = table.routes.filter { Self.glob(selector, matches: $0.id) }
            return selected.isEmpty ? .failure(Refusal(answer: .error(404, "no_match", "no route id matches \"\(selector)\""))) : .success(selected)
        }
        guard let route = table.route(id: selector) else { return .failure(Refusal(answer: .error(404, "not_found", "no route has id \"\(selector)\""))) }
        return .success([route])
    }

    static let ifMatchRequired = ControlAnswer.error(428, "if_match_required", "send If-Match with the ETag of GET /admin/routes")

    // MARK: Helpers

    package static func isPattern(_ selector: String) -> Bool { selector.contains("*") || selector.contains("?") }

    /// `*` matches any run of characters (dots included), `?` one character.
    package static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern)
        let t = Array(text)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// The (pattern, kind) entries of a signature's text: `/items/*/title changed, status changed`.
    package static func signatureEntries(_ text: String) -> [(pattern: String, kind: String)] {
        text.components(separatedBy: ", ").compactMap { part in
            guard let space = part.lastIndex(of: " ") else { return nil }
            let pattern = String(part[..<space])
            return (pattern == "(root)" ? "" : pattern, String(part[part.index(after: space)...]))
        }
    }

    /// The table with `rules` appended to a route's `shadow.ignore` (created if missing), or nil without that route.
    /// Triage (`--ignore`) and `strangler noise --apply` both write ignore rules this way.
    public static func addingIgnore(_ rules: [String], toRoute id: String, in table: JSONValue) -> JSONValue? {
        guard var members = table.objectValue, let routesIndex = members.firstIndex(where: { $0.key == "routes" }),
            var routes = members[routesIndex].value.arrayValue,
            let index = routes.firstIndex(where: { $0["id"]?.stringValue == id }), var route = routes[index].objectValue
        else { return nil }
        var shadow = route.first { $0.key == "shadow" }?.value.objectValue ?? []
        var ignore = shadow.first { $0.key == "ignore" }?.value.arrayValue ?? []
        for rule in rules where !ignore.contains(.string(rule)) { ignore.append(.string(rule)) }
        Self.set("ignore", .array(ignore), in: &shadow)
        Self.set("shadow", .object(shadow), in: &route)
        routes[index] = .object(route)
        members[routesIndex].value = .array(routes)
        return .object(members)
    }

    private static func set(_ key: String, _ value: JSONValue, in members: inout [(key: String, value: JSONValue)]) {
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = value
        } else {
            members.append((key, value))
        }
    }
}
