/// What is known about a route when it is asked to change stage: its service's health and sync, the shadow
/// comparisons since its last stage change, triage, reconciliation and reverse sync. A plain value: collecting it
/// (HTTP probes, the diff store, files) is done elsewhere, so the gates are tested without any I/O.
public struct RouteEvidence: Sendable, Equatable {
    /// The outcome of asking something over HTTP.
    public enum Probe: Sendable, Equatable {
        case ok
        /// Why not: `GET /healthz answered 503`, `connection refused`, …
        case failed(String)
        /// Not asked (the route has no service, or no gate needs it).
        case notChecked
    }

    /// A mismatch signature seen since the route's last stage change.
    public struct Signature: Sendable, Equatable {
        public var id: String
        /// `/email changed, /phone removed`.
        public var text: String
        /// Occurrences since the last stage change.
        public var count: Int
        /// `accepted` or `ignored`; nil when untriaged.
        public var decision: String?

        public init(id: String, text: String, count: Int, decision: String? = nil) {
            self.id = id
            self.text = text
            self.count = count
            self.decision = decision
        }
    }

    /// The last `strangler reconcile` of the route's service.
    public struct Reconcile: Sendable, Equatable {
        public var clean: Bool
        /// ISO 8601.
        public var at: String
        /// `1000 compared; 0 missing, 0 extra, 0 differing`.
        public var summary: String
        /// How long ago it ran, when known.
        public var age: Duration?

        public init(clean: Bool, at: String, summary: String, age: Duration? = nil) {
            self.clean = clean
            self.at = at
            self.summary = summary
            self.age = age
        }
    }

    /// The service answers `GET /healthz`.
    public var health: Probe = .notChecked
    /// Events the service has not applied yet (`GET /sync/status`'s `lagEvents`); nil when unknown.
    public var syncLag: Int?
    /// Why the lag is unknown, or the sync's `lastError`.
    public var syncProblem: String?
    /// When the route last changed stage (ISO 8601); nil when it never did since the diff store exists.
    public var since: String?
    /// Pairs of answers compared since `since`.
    public var compared = 0
    /// Of which matched.
    public var matched = 0
    /// Mismatch signatures since `since`, most frequent first.
    public var signatures: [Signature] = []
    /// nil when the service was never reconciled.
    public var reconcile: Reconcile?
    /// The monolith's reverse sync for the route's service (`GET /reverse-sync/status`).
    public var reverseSync: Probe = .notChecked
    /// What the route's service (or the monolith) declares it has nothing for, of `health`, `syncLag`,
    /// `reverseSync` (probes set to null) and `entities` (`"entities": {}`): those gates are not measured.
    public var undeclared: [String] = []
    /// The command that reconciles the service's entities, as the gate's hint prints it (with the flags it needs);
    /// nil: `strangler reconcile SERVICE`.
    public var reconcileCommand: String?

    public init() {}

    /// Mismatches explained by a triage decision (accepted differences, or pointers now ignored): they count as
    /// matches in the gate's match rate.
    public var explained: Int { self.signatures.filter { $0.decision != nil }.reduce(0) { $0 + $1.count } }

    public var untriaged: [Signature] { self.signatures.filter { $0.decision == nil } }

    /// Matched plus explained mismatches, out of `compared`.
    public var acceptedMatches: Int { min(self.compared, self.matched + self.explained) }
}
