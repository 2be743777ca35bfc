public import DiffStore
import Foundation
public import JSON
import Logging
public import RouteTable

/// The operations of the ops CLI on the route table, with evidence gates, the audit log and undo: what
/// `POST /admin/stage`, `POST /admin/undo`, `POST /admin/triage`, `GET /admin/history` and `GET /admin/evidence`
/// run, and what `strangler stage|promote|rollback|undo|triage|history|routes` runs in-process when no proxy is up.
///
/// ```swift
/// let operations = RouteOperations(control: control, diffStore: store)
/// let answer = await operations.stage(
///     selector: "contacts.*", to: .coexist, expectedHash: etag, actor: "alice", reason: "reads ready", force: false)
/// answer.status   // 200, or 409 with every gate's reason
/// ```
public struct RouteOperations: Sendable {
    public let control: RouteControl
    public let diffStore: DiffStore
    public let collector: EvidenceCollector
    /// Writes what the proxy's recorder still holds, so the counts include every finished shadow.
    package let flush: @Sendable () async -> Void

    public init(
        control: RouteControl, diffStore: DiffStore, probeTimeout: Duration = .seconds(2),
        flush: @escaping @Sendable () async -> Void = {}
    ) {
        self.control = control
        self.diffStore = diffStore
        self.collector = EvidenceCollector(
            store: diffStore, dataDirectory: control.dataDirectory, probeTimeout: probeTimeout,
            routesPath: control.routesPath, shared: control.sharedEvidence)
        self.flush = flush
    }

    // MARK: Reading

    /// The live table, its version and hash (`GET /admin/routes`).
    public func table() -> LiveTable {
        self.control.table.liveTable
    }

    /// Every route (or one) with its evidence and whether it may move to its next stage, and if not, why
    /// (`GET /admin/evidence`; `strangler routes`).
    public func evidence(route id: String? = nil) async throws(ControlError) -> EvidenceListing {
        let snapshot = self.control.table.liveTable
        let table = snapshot.table
        var routes = table.routes
        if let id { routes = try self.select(id, in: table) }
        await self.flush()
        let evidence = await self.collector.collect(table: table, routes: routes)
        let standings = routes.map { route in
            Self.standing(route: route, evidence: evidence[route.id] ?? RouteEvidence(), policy: table.gates)
        }
        return EvidenceListing(
            version: snapshot.version, hash: snapshot.contentHash, tableRoutes: table.routes.count, routes: standings,
            upstreams: table.upstreamsJSON)
    }

    static func standing(route: Route, evidence: RouteEvidence, policy: GatePolicy) -> RouteStanding {
        RouteStanding(
            id: route.id, method: route.method, path: route.path.description, service: route.service,
            stage: route.stage, evidence: evidence,
            matchRateLowerBound: evidence.compared > 0
                ? Wilson.lowerBound(
                    successes: evidence.acceptedMatches, trials: evidence.compared,
                    confidence: policy.eliminate.confidence) : nil,
            // A route without a service stays with the monolith: it has no next stage.
            next: Gates.next(route: route, evidence: evidence, policy: policy))
    }

    /// The audit log, newest last, without the whole tables (`GET /admin/history`; `strangler history`).
    public func history(route: String? = nil, limit: Int = 50) async throws(ControlError) -> HistoryPage {
        var entries: [JSONValue]
        do {
            entries = try await self.control.auditEntries()
        } catch {
            throw ControlError(error)
        }
        if let route {
            entries = entries.filter { Self.routesOf($0).contains(route) }
        }
        let kept = entries.suffix(max(0, limit)).map { AuditRecord(fields: Self.summary($0)) }
        return HistoryPage(total: entries.count, entries: Array(kept))
    }

    /// The routes an audit entry is about.
    static func routesOf(_ entry: JSONValue) -> [String] {
        var routes: [String] = []
        if let route = entry["route"]?.stringValue { routes.append(route) }
        for change in entry["changes"]?.arrayValue ?? [] {
            if let route = change["route"]?.stringValue, !routes.contains(route) { routes.append(route) }
        }
        // A whole-table replace: every route whose stage or definition differs.
        if routes.isEmpty, let before = entry["before"]?["routes"]?.arrayValue,
            let after = entry["after"]?["routes"]?.arrayValue
        {
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
    public func stage(
        selector: String, to stage: Stage, expectedHash: String?, actor: String, reason: String?, force: Bool
    ) async throws(ControlError) -> TableChange {
        guard let expectedHash else { throw .ifMatchRequired }
        let snapshot = await self.control.current(expecting: expectedHash)
        guard snapshot.contentHash == expectedHash else { throw .stale(currentHash: snapshot.contentHash) }
        let table = snapshot.table
        let selected = try self.select(selector, in: table)
        let reason = Self.given(reason)
        if force, reason == nil {
            throw ControlError(.reasonRequired, "--force overrides the gates and needs a reason (for the audit log)")
        }
        let moving = selected.filter { $0.stage != stage }
        guard !moving.isEmpty else { return TableChange(table: snapshot, changed: [], forced: false, overridden: []) }
        var document = table.document
        for route in moving { document = RouteControl.settingStage(of: route.id, to: stage, in: document) }
        // Validate before judging: a move the table cannot hold (coexist without a service) is a usage error, not a
        // gate.
        let changed: RouteTable
        do {
            changed = try RouteTable.validate(document)
        } catch {
            throw .invalid(error)
        }
        await self.flush()
        let evidence = await self.collector.collect(table: table, routes: moving)
        let verdicts = moving.map {
            Gates.evaluate(route: $0, to: stage, evidence: evidence[$0.id] ?? RouteEvidence(), policy: table.gates)
        }
        let refused = verdicts.filter { !$0.allowed }
        if !refused.isEmpty, !force {
            throw ControlError(
                .gateRefused,
                "\(refused.count) of \(moving.count) move\(moving.count == 1 ? "" : "s") refused by the gates; nothing "
                    + "changed (--force overrides, with --reason)",
                refusals: refused)
        }
        let changes = moving.map { StageChange(route: $0.id, from: $0.stage, to: stage) }
        let forced = force && !refused.isEmpty
        var detail: [(key: String, value: JSONValue)] = [("action", .string("stage"))]
        if moving.count == 1, !Self.isPattern(selector) {
            detail += [
                ("route", .string(moving[0].id)), ("from", .string(moving[0].stage.rawValue)),
                ("to", .string(stage.rawValue)),
            ]
        } else {
            detail.append(("pattern", .string(selector)))
        }
        let unmeasured = verdicts.filter { !$0.notMeasured.isEmpty }
        detail += Self.auditDetail(changes: changes, forced: forced, overridden: refused, notMeasured: unmeasured)
        do {
            let after = try await self.control.change(
                to: changed, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
            return TableChange(
                table: after, changed: changes, forced: forced, overridden: forced ? refused : [],
                notMeasured: unmeasured)
        } catch {
            throw ControlError(error)
        }
    }

    /// A reason that says something, or nil.
    static func given(_ reason: String?) -> String? {
        reason.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
    }

    /// What the audit entry of a table change says of its moves: `changes`, `forced`, `overridden` when forced, and
    /// `notMeasured` when gates had nothing to measure with (`[{route, from, to, reasons, notMeasured}]`).
    static func auditDetail(
        changes: [StageChange], forced: Bool, overridden: [Gates.Verdict], notMeasured: [Gates.Verdict] = []
    ) -> [(key: String, value: JSONValue)] {
        var detail: [(key: String, value: JSONValue)] = [
            ("changes", StageChange.json(changes)), ("forced", .bool(forced)),
        ]
        if forced { detail.append(("overridden", Gates.Verdict.json(overridden))) }
        if !notMeasured.isEmpty { detail.append(("notMeasured", Gates.Verdict.json(notMeasured))) }
        return detail
    }

    /// Replaces the whole table with `text` (`PUT /admin/routes`), if the live one still has hash `expectedHash`. A
    /// route whose stage differs from the live table's passes the same gates as `stage` (a route that is new in the
    /// table moves from transform, where its requests were: with the monolith), all or none; `force` overrides refused
    /// gates, with a reason, and the audit entry says so. Changes without a stage move (rules, timeouts, services) need
    /// no gate.
    public func replace(
        text: String, expectedHash: String?, actor: String, reason: String?, force: Bool
    ) async throws(ControlError) -> TableChange {
        guard let expectedHash else { throw .ifMatchRequired }
        let snapshot = await self.control.current(expecting: expectedHash)
        guard snapshot.contentHash == expectedHash else { throw .stale(currentHash: snapshot.contentHash) }
        let table: RouteTable
        do {
            table = try RouteTable.parse(text)
        } catch {
            throw .invalid(error)
        }
        let reason = Self.given(reason)
        if force, reason == nil {
            throw ControlError(.reasonRequired, "force overrides the gates and needs a reason (for the audit log)")
        }
        let (moving, refusals, notMeasured) = await self.judge(from: snapshot.table, to: table)
        if !refusals.isEmpty, !force {
            throw ControlError(
                .gateRefused,
                "\(refusals.count) of \(moving.count) stage move\(moving.count == 1 ? "" : "s") in the new table "
                    + "refused by the gates; nothing changed "
                    + "(force=true overrides, with a reason)",
                refusals: refusals)
        }
        let changes = moving.map {
            StageChange(
                route: $0.route.id, from: $0.from, to: $0.to,
                judgedFrom: $0.route.stage != $0.from ? $0.route.stage : nil)
        }
        let forced = force && !refusals.isEmpty
        let detail: [(key: String, value: JSONValue)] =
            [("action", .string("replace"))]
            + Self.auditDetail(changes: changes, forced: forced, overridden: refusals, notMeasured: notMeasured)
        do {
            let after = try await self.control.replace(
                text: text, table: table, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
            let reviews = await self.review(from: snapshot.table, to: table, actor: actor)
            return TableChange(
                table: after, changed: changes, forced: forced, overridden: forced ? refusals : [],
                notMeasured: notMeasured, reviews: reviews)
        } catch {
            throw ControlError(error)
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
    func judge(
        from live: RouteTable, to table: RouteTable
    ) async -> (moves: [Move], refusals: [Gates.Verdict], notMeasured: [Gates.Verdict]) {
        var moving: [Move] = []
        for route in table.routes {
            let current = live.route(id: route.id)
            let redefined =
                current.map { $0.method != route.method || $0.path != route.path || $0.service != route.service }
                ?? true
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
        var notMeasured: [Gates.Verdict] = []
        if table.gates != live.gates {
            refusals.append(
                Gates.Verdict(
                    route: "*", from: .transform, to: .transform,
                    reasons: [
                        "the table changes the gates themselves (\"gates\"): a change of policy, not evidence; it "
                            + "needs force and a reason"
                    ]))
        }
        if !moving.isEmpty {
            await self.flush()
            let kept = moving.filter { move in !dropped.contains { $0.id == move.route.id } }
            var evidence = await self.collector.collect(table: table, routes: kept.map(\.route))
            if !dropped.isEmpty {
                evidence.merge(await self.collector.collect(table: live, routes: dropped)) { new, _ in new }
            }
            let verdicts = moving.map {
                Gates.evaluate(
                    route: $0.route, to: $0.to, evidence: evidence[$0.route.id] ?? RouteEvidence(), policy: live.gates)
            }
            refusals += verdicts.filter { !$0.allowed }
            notMeasured = verdicts.filter { !$0.notMeasured.isEmpty }
        }
        return (moving, refusals, notMeasured)
    }

    /// Reverts the last table change of the audit log: restores its `before` table exactly, if the live table is still
    /// its `after` (else nothing is done). The undo is itself audited (`action: "undo"`), so a second undo redoes.
    public func undo(expectedHash: String?, actor: String, reason: String?) async throws(ControlError) -> UndoOutcome {
        let snapshot = await self.control.current(expecting: expectedHash)
        if let expectedHash, expectedHash != snapshot.contentHash { throw .stale(currentHash: snapshot.contentHash) }
        let entries: [JSONValue]
        do {
            entries = try await self.control.auditEntries()
        } catch {
            throw ControlError(error)
        }
        guard let last = entries.last(where: { $0["before"] != nil && $0["after"] != nil }),
            let before = last["before"], let after = last["after"]
        else {
            throw ControlError(
                .nothingToUndo,
                "the audit log (\(self.control.shared == nil ? self.control.auditPath : self.control.tableLocation)) "
                    + "has no change to undo")
        }
        let time = last["time"]?.stringValue ?? "?"
        let action = last["action"]?.stringValue ?? "change"
        guard snapshot.table.document.jsonText == after.jsonText else {
            throw ControlError(
                .undoConflict,
                "the live table is not the one the last change (\(action) at \(time) by "
                    + "\(last["actor"]?.stringValue ?? "?")) left: it changed since "
                    + "(an edit of routes.json?); nothing undone")
        }
        let beforeTable: RouteTable
        do {
            beforeTable = try RouteTable.validate(before)
        } catch {
            throw .invalid(error)
        }
        var changes: [StageChange] = []
        for route in beforeTable.routes {
            if let current = snapshot.table.route(id: route.id), current.stage != route.stage {
                changes.append(StageChange(route: route.id, from: current.stage, to: route.stage))
            }
        }
        let undid = UndoneChange(
            time: time, action: action, actor: last["actor"]?.stringValue, reason: last["reason"]?.stringValue)
        let undone: JSONValue = .object(
            [
                ("time", .string(time)), ("action", .string(action)), ("actor", last["actor"] ?? .null),
                ("reason", last["reason"] ?? .null),
            ])
        var detail: [(key: String, value: JSONValue)] = [
            ("action", .string("undo")), ("undoes", undone), ("changes", StageChange.json(changes)),
        ]
        // Undo passes no gate: it puts back a table that was live. But undoing an undo re-applies the change that one
        // undid, and if that change was forced, so is this one, and the audit log says so (with what was overridden).
        if action == "undo", let original = last["undoes"],
            let redone = entries.last(where: {
                $0["time"] == original["time"] && $0["action"] == original["action"]
                    && $0["action"]?.stringValue != "undo"
            }),
            redone["forced"]?.boolValue == true
        {
            detail.append(("forced", .bool(true)))
            detail.append(("overridden", redone["overridden"] ?? .array([])))
        }
        do {
            let result = try await self.control.change(
                to: beforeTable, expectedHash: snapshot.contentHash, actor: actor,
                reason: reason ?? "undo of \(action) at \(time)", detail: detail)
            await self.takeBackTriage(of: last, actor: actor, time: time)
            let reviews = await self.review(from: snapshot.table, to: beforeTable, actor: actor)
            return UndoOutcome(table: result, undid: undid, changed: changes, reviews: reviews)
        } catch {
            throw ControlError(error)
        }
    }

    /// Triage of a mismatch signature of a route: `accepted` records the difference as known and accepted; `ignored`
    /// also adds the signature's pointers to the route's `shadow.ignore` (a table change: needs `expectedHash`,
    /// audited). Either way the signature no longer blocks eliminate, and its occurrences count as explained.
    ///
    /// A signature whose differences span several pointers (`/note changed, /total changed`) is ignored only with
    /// `paths` (those of its pointers to ignore; the signature stays untriaged while others remain) or `allPaths`:
    /// ignoring them all at once could hide a real bug behind a harmless one. Added rules compare the route's kept
    /// samples again (`SignatureReview`).
    public func triage(
        route id: String, signature: String, decision: TriageDecision.Decision, expectedHash: String?, actor: String,
        reason: String?, paths: [String]? = nil, allPaths: Bool = false
    ) async throws(ControlError) -> TriageOutcome {
        guard decision != .explained else {
            throw ControlError(.invalidDecision, "\"explained\" is recorded by a change of the diff rules, not by hand")
        }
        let snapshot = await self.control.current(expecting: expectedHash)
        guard let route = snapshot.table.route(id: id) else {
            throw ControlError(.notFound, "no route has id \"\(id)\"")
        }
        guard let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty else {
            throw ControlError(.reasonRequired, "a triage decision needs a reason")
        }
        await self.flush()
        let text: String?
        do {
            // A signature any proxy of a shared store counted can be triaged through this one.
            if let local = try self.diffStore.signatureText(route: id, signature: signature) {
                text = local
            } else if let shared = self.control.sharedEvidence {
                text = try await shared.signatureText(route: id, signature: signature)
            } else {
                text = nil
            }
        } catch {
            throw ControlError(.storageFailed, "the diff store could not be read: \(error)")
        }
        guard let text else {
            throw ControlError(.unknownSignature, "route \(id) has no mismatch signature \"\(signature)\"")
        }
        var ignoreAdded: [String]?
        var etag = snapshot.contentHash
        var partial = false
        var reviewedTable: RouteTable?
        if decision == .ignored {
            guard let expectedHash else { throw .ifMatchRequired }
            let entries = Self.signatureEntries(text)
            let unignorable = entries.filter { !$0.pattern.hasPrefix("/") }
            guard unignorable.isEmpty else {
                throw ControlError(
                    .notIgnorable,
                    "signature \(signature) has differences an ignore rule (a JSON pointer) cannot cover: "
                        + unignorable.map { "\($0.pattern) \($0.kind)" }.joined(separator: ", ")
                        + "; use --accept instead")
            }
            var rules = entries.map(\.pattern).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            if let paths {
                let unknown = paths.filter { !rules.contains($0) }
                guard unknown.isEmpty, !paths.isEmpty else {
                    throw ControlError(
                        .pathsRequired,
                        "--paths \(unknown.isEmpty ? "is empty" : unknown.joined(separator: ", ") + " not in the signature"): "
                            + "signature \(signature) differs at \(rules.joined(separator: ", "))")
                }
                rules = rules.filter { paths.contains($0) }
            } else if rules.count > 1, !allPaths {
                throw ControlError(
                    .pathsRequired,
                    "signature \(signature) differs at \(rules.count) paths: \(rules.joined(separator: ", ")); ignoring all "
                        + "of them could hide a real difference behind a harmless one: name those to ignore with "
                        + "--paths \(rules[0]) … (or pass --all-paths)")
            }
            partial = rules.count < Set(entries.map(\.pattern)).count
            let ignored = route.shadow?.ignore ?? []
            let adding = rules.filter { !ignored.contains($0) }
            if !adding.isEmpty {
                let document =
                    Self.addingIgnore(adding, toRoute: id, in: snapshot.table.document) ?? snapshot.table.document
                let changed: RouteTable
                do {
                    changed = try RouteTable.validate(document)
                } catch {
                    throw .invalid(error)
                }
                do {
                    let after = try await self.control.change(
                        to: changed, expectedHash: expectedHash, actor: actor, reason: reason,
                        detail: [
                            ("action", .string("triage")), ("route", .string(id)), ("signature", .string(signature)),
                            ("decision", .string(decision.rawValue)), ("ignore", .array(adding.map(JSONValue.string))),
                        ])
                    etag = after.contentHash
                    reviewedTable = changed
                } catch {
                    throw ControlError(error)
                }
            }
            ignoreAdded = adding
        }
        let baseline = await self.epochCounts(route: id)
        if !partial {
            do {
                try await self.record(
                    TriageDecision(route: id, signature: signature, decision: decision, reason: reason, actor: actor))
            } catch {
                throw ControlError(.storageFailed, "the triage decision could not be stored: \(error)")
            }
        }
        var reviews: [SignatureReview] = []
        if let reviewedTable {
            reviews = await self.review(
                from: snapshot.table, to: reviewedTable, actor: actor, baselines: baseline.map { [id: $0] } ?? [:])
        }
        if decision != .ignored {
            // No table change (a reset leaves ignore rules an earlier --ignore added); the decision is still in the
            // history.
            do {
                try await self.control.record(
                    actor: actor, reason: reason,
                    detail: [
                        ("action", .string("triage")), ("route", .string(id)), ("signature", .string(signature)),
                        ("decision", .string(decision.rawValue)),
                    ])
            } catch {
                throw ControlError(error)
            }
        }
        return TriageOutcome(
            route: id, signature: signature, text: text, decision: decision, ignoreAdded: ignoreAdded, tableHash: etag,
            reviews: reviews, recorded: !partial)
    }

    /// An undone `triage --ignore` takes its decision back too: the signature is untriaged again (unless it was
    /// decided otherwise since).
    func takeBackTriage(of entry: JSONValue, actor: String, time: String) async {
        guard entry["action"]?.stringValue == "triage", entry["decision"]?.stringValue == "ignored",
            let route = entry["route"]?.stringValue, let signature = entry["signature"]?.stringValue
        else { return }
        // With a shared store the decision in force is the store's (it may have been made through another proxy).
        // (do/catch, not try?: Swift 6.3's optimizer crashes splitting this coroutine with try? on a typed throw.)
        var latest: TriageDecision.Decision?
        if let shared = self.control.sharedEvidence {
            do {
                latest = try await shared.latestDecision(route: route, signature: signature)
            } catch {
                self.control.logger.error(
                    "the decision in force could not be read from the shared store; the undo leaves it",
                    metadata: ["route": "\(route)", "signature": "\(signature)", "error": "\(error)"])
                return
            }
        } else {
            latest =
                (try? self.diffStore.triageDecisions(route: route))?.last(where: { $0.signature == signature })?
                .decision
        }
        guard latest == .ignored else { return }
        let reset = TriageDecision(
            route: route, signature: signature, decision: .reset, reason: "undo of triage at \(time)", actor: actor)
        do {
            try await self.record(reset)
        } catch {
            self.control.logger.error(
                "the undone triage decision could not be taken back",
                metadata: ["route": "\(route)", "signature": "\(signature)", "error": "\(error)"])
        }
    }

    /// Records a triage decision in this proxy's diff store and, with a shared store, in the shared evidence the
    /// gates read (both, or an error saying which failed).
    func record(_ decision: TriageDecision) async throws {
        try self.diffStore.recordTriage(decision)
        // (No optional chaining on these typed-throws calls: Swift 6.3's optimizer crashes splitting the coroutine.)
        if let shared = self.control.sharedEvidence { try await shared.recordTriage(decision) }
    }

    /// The reviews of a change of diff rules (``SignatureReview``), against the evidence the gates read: the shared
    /// store's samples and triage with `--store`, else this proxy's diff store.
    func review(
        from previous: RouteTable, to table: RouteTable, actor: String, baselines: [String: EpochCounts] = [:]
    ) async -> [SignatureReview] {
        if let shared = self.control.sharedEvidence {
            return await SignatureReview.review(
                evidence: shared, from: previous, to: table, actor: actor, baselines: baselines)
        }
        return SignatureReview.review(
            store: self.diffStore, from: previous, to: table, actor: actor, baselines: baselines)
    }

    /// Where the evidence is read: the shared store every proxy writes to (`--store`), else this proxy's diff store.
    package var evidence: any ReviewEvidence { self.control.sharedEvidence ?? self.diffStore }

    /// A route's counts since its last stage change, where the gates read them; nil when they cannot be read.
    func epochCounts(route: String) async -> EpochCounts? {
        do {
            return try await self.evidence.epochCounts(route: route)
        } catch {
            return nil
        }
    }

    /// The routes a selector names: one id, or a pattern with `*` and `?` (`contacts.*`), in the table's order.
    func select(_ selector: String, in table: RouteTable) throws(ControlError) -> [Route] {
        if Self.isPattern(selector) {
            let selected = table.routes.filter { Self.glob(selector, matches: $0.id) }
            guard !selected.isEmpty else { throw ControlError(.noMatch, "no route id matches \"\(selector)\"") }
            return selected
        }
        guard let route = table.route(id: selector) else {
            throw ControlError(.notFound, "no route has id \"\(selector)\"")
        }
        return [route]
    }

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
