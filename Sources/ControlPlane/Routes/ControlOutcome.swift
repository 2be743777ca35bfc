public import DiffStore
public import JSON
public import RouteTable

/// Why a route operation did nothing: a code (what kind of refusal), a message for people, and what the code carries
/// (the gates' refusals, the table's problems, the current hash). The admin API turns it into a status and its error
/// envelope; the CLI into an exit status and lines of text.
///
/// ```swift
/// do {
///     _ = try await operations.stage(
///         selector: "contacts.*", to: .coexist, expectedHash: etag, actor: "alice", reason: nil, force: false)
/// } catch where error.code == .gateRefused {
///     for refusal in error.refusals { print(refusal.route, refusal.reasons) }
/// }
/// ```
public struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal: its `rawValue` is the admin API's `error.code`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { self.rawValue }

        /// A change was sent without the ETag of the table it was made on.
        public static let ifMatchRequired = Code("if_match_required")
        /// The table changed since it was read.
        public static let stale = Code("stale")
        /// The table the change would make is invalid (`problems`).
        public static let invalidRoutes = Code("invalid_routes")
        /// No route has that id.
        public static let notFound = Code("not_found")
        /// No route id matches the pattern.
        public static let noMatch = Code("no_match")
        /// `force` (or a triage) without a reason.
        public static let reasonRequired = Code("reason_required")
        /// The evidence gates refused a move (`refusals`).
        public static let gateRefused = Code("gate_refused")
        /// The audit log holds no change to undo.
        public static let nothingToUndo = Code("nothing_to_undo")
        /// The live table is not the one the last change left.
        public static let undoConflict = Code("undo_conflict")
        /// The route has no such mismatch signature.
        public static let unknownSignature = Code("unknown_signature")
        /// The signature has differences no ignore rule can cover.
        public static let notIgnorable = Code("not_ignorable")
        /// `ignore` of a signature that spans several pointers, without `paths` or `allPaths` (or with paths that are
        /// not its own).
        public static let pathsRequired = Code("paths_required")
        /// A decision that is not taken by hand (`explained`).
        public static let invalidDecision = Code("invalid_decision")
        /// A file or the diff store could not be read or written.
        public static let storageFailed = Code("storage_failed")
        /// routes.json was edited by hand into a table that cannot be loaded.
        public static let routesFileInvalid = Code("routes_file_invalid")
        /// Another writer holds routes.lock.
        public static let busy = Code("busy")
        /// The shared store could not be reached: nothing was changed (`503`).
        public static let storeUnavailable = Code("store_unavailable")
    }

    public var code: Code
    public var message: String
    /// With `.stale`: the live table's hash.
    public var currentHash: String?
    /// With `.invalidRoutes`: every problem of the table.
    public var problems: [RouteTableError.Problem]
    /// With `.gateRefused`: every refused move.
    public var refusals: [Gates.Verdict]

    public init(
        _ code: Code, _ message: String, currentHash: String? = nil, problems: [RouteTableError.Problem] = [],
        refusals: [Gates.Verdict] = []
    ) {
        self.code = code
        self.message = message
        self.currentHash = currentHash
        self.problems = problems
        self.refusals = refusals
    }

    public var description: String { self.message }

    public static let ifMatchRequired = ControlError(
        .ifMatchRequired, "send If-Match with the ETag of GET /admin/routes")

    static func stale(currentHash: String) -> ControlError {
        ControlError(
            .stale,
            "the table changed since you read it (another operator?); read it again (current ETag \"\(currentHash)\")",
            currentHash: currentHash)
    }

    static func invalid(_ error: RouteTableError) -> ControlError {
        ControlError(.invalidRoutes, error.description, problems: error.problems)
    }

    init(_ error: RouteControl.ChangeError) {
        switch error {
        case .stale(let current): self = .stale(currentHash: current)
        case .invalid(let problems): self = .invalid(problems)
        case .unknownRoute(let id): self.init(.notFound, "no route has id \"\(id)\"")
        case .storage(let message): self.init(.storageFailed, message)
        case .fileInvalid(let message): self.init(.routesFileInvalid, message)
        case .busy(let message): self.init(.busy, message)
        case .storeUnavailable(let message): self.init(.storeUnavailable, message)
        }
    }
}

/// One route's stage move: `from` is where its requests are answered now, `judgedFrom` where the gates judged it from
/// when that differs (a route that is new or redefined is judged from transform).
public struct StageChange: Sendable, Equatable {
    public var route: String
    public var from: Stage
    public var to: Stage
    public var judgedFrom: Stage?

    public init(route: String, from: Stage, to: Stage, judgedFrom: Stage? = nil) {
        self.route = route
        self.from = from
        self.to = to
        self.judgedFrom = judgedFrom
    }
}

extension StageChange {
    /// `[{ route, from, to, judgedFrom? }]`: a change's moves as the audit log keeps them and the admin API answers.
    public static func json(_ changes: [StageChange]) -> JSONValue {
        .array(
            changes.map { change in
                var members: [(key: String, value: JSONValue)] = [
                    ("route", .string(change.route)), ("from", .string(change.from.rawValue)),
                    ("to", .string(change.to.rawValue)),
                ]
                if let judged = change.judgedFrom { members.append(("judgedFrom", .string(judged.rawValue))) }
                return .object(members)
            })
    }

    /// Reads ``json(_:)`` back, skipping entries that are not moves.
    public static func changes(_ json: JSONValue?) -> [StageChange] {
        (json?.arrayValue ?? []).compactMap { change in
            guard let route = change["route"]?.stringValue,
                let from = change["from"]?.stringValue.flatMap(Stage.init(rawValue:)),
                let to = change["to"]?.stringValue.flatMap(Stage.init(rawValue:))
            else { return nil }
            return StageChange(
                route: route, from: from, to: to,
                judgedFrom: change["judgedFrom"]?.stringValue.flatMap(Stage.init(rawValue:)))
        }
    }
}

extension Gates.Verdict {
    /// `[{ route, from, to, reasons }]`: refused (or overridden) moves as the audit log keeps them and the admin API
    /// answers.
    public static func json(_ verdicts: [Gates.Verdict]) -> JSONValue {
        .array(
            verdicts.map {
                var members: [(key: String, value: JSONValue)] = [
                    ("route", .string($0.route)), ("from", .string($0.from.rawValue)), ("to", .string($0.to.rawValue)),
                    ("reasons", .array($0.reasons.map(JSONValue.string))),
                ]
                if !$0.notMeasured.isEmpty {
                    members.append(("notMeasured", .array($0.notMeasured.map(JSONValue.string))))
                }
                return .object(members)
            })
    }

    /// Reads one entry of ``json(_:)`` back; nil when it is not a verdict.
    public init?(json: JSONValue) {
        guard let route = json["route"]?.stringValue,
            let from = json["from"]?.stringValue.flatMap(Stage.init(rawValue:)),
            let to = json["to"]?.stringValue.flatMap(Stage.init(rawValue:))
        else { return nil }
        self.init(
            route: route, from: from, to: to, reasons: (json["reasons"]?.arrayValue ?? []).compactMap(\.stringValue),
            notMeasured: (json["notMeasured"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}

/// A table change made by `stage` or `replace`: the table now live, the moves, and whether gates were overridden.
public struct TableChange: Sendable {
    public var table: LiveTable
    /// Empty when there was nothing to change (every route already in its stage).
    public var changed: [StageChange]
    /// True when `force` overrode refused gates (`overridden` says which).
    public var forced: Bool
    public var overridden: [Gates.Verdict]
    /// The moves with gates that were not measured (no probe declared), each with what was not.
    public var notMeasured: [Gates.Verdict]
    /// Routes whose diff rules changed: their kept samples compared again (`SignatureReview`).
    public var reviews: [SignatureReview]

    public init(
        table: LiveTable, changed: [StageChange], forced: Bool, overridden: [Gates.Verdict],
        notMeasured: [Gates.Verdict] = [], reviews: [SignatureReview] = []
    ) {
        self.table = table
        self.changed = changed
        self.forced = forced
        self.overridden = overridden
        self.notMeasured = notMeasured
        self.reviews = reviews
    }
}

/// The change an undo reverted, as the audit log names it.
public struct UndoneChange: Sendable, Equatable {
    public var time: String
    public var action: String
    public var actor: String?
    public var reason: String?

    public init(time: String, action: String, actor: String?, reason: String?) {
        self.time = time
        self.action = action
        self.actor = actor
        self.reason = reason
    }
}

/// What `undo` did: the table now live, the change it reverted and the stage moves that made.
public struct UndoOutcome: Sendable {
    public var table: LiveTable
    public var undid: UndoneChange
    public var changed: [StageChange]
    /// Routes whose diff rules the undo changed back: their kept samples compared again; and the triage decisions
    /// the undone change made, taken back.
    public var reviews: [SignatureReview]

    public init(table: LiveTable, undid: UndoneChange, changed: [StageChange], reviews: [SignatureReview] = []) {
        self.table = table
        self.undid = undid
        self.changed = changed
        self.reviews = reviews
    }
}

/// What a triage decision recorded; `ignoreAdded` (with `.ignored`) the ignore rules it added to the route.
public struct TriageOutcome: Sendable, Equatable {
    public var route: String
    public var signature: String
    /// The signature's text: `/title type_changed`.
    public var text: String
    public var decision: TriageDecision.Decision
    public var ignoreAdded: [String]?
    /// The live table's hash afterwards.
    public var tableHash: String
    /// With ignore rules added: the route's kept samples compared again under them.
    public var reviews: [SignatureReview]
    /// Whether the decision was recorded for the signature: false when `--paths` ignored part of it only (it stays
    /// untriaged while its other differences remain).
    public var recorded: Bool

    public init(
        route: String, signature: String, text: String, decision: TriageDecision.Decision, ignoreAdded: [String]?,
        tableHash: String, reviews: [SignatureReview] = [], recorded: Bool = true
    ) {
        self.route = route
        self.signature = signature
        self.text = text
        self.decision = decision
        self.ignoreAdded = ignoreAdded
        self.tableHash = tableHash
        self.reviews = reviews
        self.recorded = recorded
    }
}

/// A route with its evidence, and whether it may move to its next stage and if not, why.
public struct RouteStanding: Sendable, Equatable {
    public var id: String
    public var method: String
    public var path: String
    public var service: String?
    public var stage: Stage
    public var evidence: RouteEvidence
    /// The Wilson lower bound of the match rate at the eliminate gate's confidence; nil before any comparison.
    public var matchRateLowerBound: Double?
    /// The next stage's verdict; nil for a route without a service (it stays with the monolith).
    public var next: Gates.Verdict?

    public init(
        id: String, method: String, path: String, service: String?, stage: Stage, evidence: RouteEvidence,
        matchRateLowerBound: Double?,
        next: Gates.Verdict?
    ) {
        self.id = id
        self.method = method
        self.path = path
        self.service = service
        self.stage = stage
        self.evidence = evidence
        self.matchRateLowerBound = matchRateLowerBound
        self.next = next
    }

    /// Matched over compared; nil before any comparison.
    public var matchRate: Double? {
        self.evidence.compared > 0 ? Double(self.evidence.matched) / Double(self.evidence.compared) : nil
    }
}

/// Every route (or the one asked for) with its standing, on one version of the table.
public struct EvidenceListing: Sendable {
    public var version: Int
    public var hash: String
    /// How many routes the table has (the listing may hold one).
    public var tableRoutes: Int
    public var routes: [RouteStanding]
    /// Every upstream group and its instances (`RouteTable.upstreamsJSON`; a running proxy's admin API puts what it
    /// observes of each instance in their place).
    public var upstreams: JSONValue

    public init(
        version: Int, hash: String, tableRoutes: Int, routes: [RouteStanding], upstreams: JSONValue = .array([])
    ) {
        self.version = version
        self.hash = hash
        self.tableRoutes = tableRoutes
        self.upstreams = upstreams
        self.routes = routes
    }
}
