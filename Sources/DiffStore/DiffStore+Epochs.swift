public import Foundation
import GRDB

/// What the store holds about a route since its last stage change: the gates' view of the diff store.
public struct EpochCounts: Sendable, Equatable {
    /// A mismatch signature seen since the epoch began.
    public struct Signature: Sendable, Equatable {
        public var id: String
        public var text: String
        /// Occurrences since the epoch began.
        public var count: Int
        /// The latest triage decision (`accepted` or `ignored`), at any time; nil when untriaged.
        public var decision: String?

        public init(id: String, text: String, count: Int, decision: String?) {
            self.id = id
            self.text = text
            self.count = count
            self.decision = decision
        }
    }

    /// When the epoch began (the route's last stage change); nil when the route never changed stage while this store
    /// existed (then everything counted so far is in).
    public var since: Date?
    /// The stage the route entered then.
    public var stage: String?
    public var compared = 0
    public var matched = 0
    public var mismatched = 0
    /// Most frequent first.
    public var signatures: [Signature] = []

    public init() {}
}

/// A triage decision on a mismatch signature.
public struct TriageDecision: Sendable, Equatable {
    public enum Decision: String, Sendable {
        /// A known, accepted difference.
        case accepted
        /// Turned into ignore rules of the route.
        case ignored
        /// Taken back: the signature is untriaged again (and blocks eliminate again). Kept as a decision, so that
        /// the history of a signature's triage stays whole.
        case reset
        /// The route's diff rules now explain it: its kept samples, compared again under them, match. Recorded by
        /// a change of the rules, and taken back (`reset`) by the change that undoes them.
        case explained
    }

    public var route: String
    public var signature: String
    public var decision: Decision
    public var reason: String
    public var actor: String
    public var decidedAt: Date

    public init(
        route: String, signature: String, decision: Decision, reason: String, actor: String, decidedAt: Date = Date()
    ) {
        self.route = route
        self.signature = signature
        self.decision = decision
        self.reason = reason
        self.actor = actor
        self.decidedAt = decidedAt
    }
}

extension DiffStore {
    /// Starts a new epoch for a route that just changed stage: what is counted from now on is "since the last change".
    ///
    /// ```swift
    /// try store.startEpoch(route: "contacts.get", stage: "coexist")
    /// try store.epochCounts(route: "contacts.get").compared   // 0
    /// ```
    public func startEpoch(route: String, stage: String, at time: Date = Date()) throws {
        try self.database.write { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT compared, matched, mismatched FROM route_counters WHERE route = ?", arguments: [route])
            try db.execute(
                sql: """
                    INSERT INTO route_epochs (route, stage, started_at, compared, matched, mismatched) VALUES (?, ?, ?,
                        ?, ?, ?)
                    ON CONFLICT (route) DO UPDATE SET stage = excluded.stage, started_at = excluded.started_at,
                        compared = excluded.compared, matched = excluded.matched, mismatched = excluded.mismatched
                    """,
                arguments: [
                    route, stage, time.timeIntervalSince1970, (row?["compared"] as Int?) ?? 0,
                    (row?["matched"] as Int?) ?? 0,
                    (row?["mismatched"] as Int?) ?? 0,
                ])
            try db.execute(sql: "DELETE FROM epoch_signatures WHERE route = ?", arguments: [route])
            try db.execute(
                sql:
                    "INSERT INTO epoch_signatures (route, signature, count) SELECT route, signature, count FROM "
                    + "signatures WHERE route = ?",
                arguments: [route])
        }
    }

    /// The counters and signatures of a route since its epoch began, with each signature's triage decision.
    public func epochCounts(route: String) throws -> EpochCounts {
        try self.database.read { db in
            var counts = EpochCounts()
            let epoch = try Row.fetchOne(db, sql: "SELECT * FROM route_epochs WHERE route = ?", arguments: [route])
            let now = try Row.fetchOne(
                db, sql: "SELECT compared, matched, mismatched FROM route_counters WHERE route = ?", arguments: [route])
            func since(_ column: String) -> Int {
                max(0, ((now?[column] as Int?) ?? 0) - ((epoch?[column] as Int?) ?? 0))
            }
            counts.since = (epoch?["started_at"] as Double?).map { Date(timeIntervalSince1970: $0) }
            counts.stage = epoch?["stage"]
            counts.compared = since("compared")
            counts.matched = since("matched")
            counts.mismatched = since("mismatched")
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT s.signature, s.text, s.count - COALESCE(e.count, 0) AS recent,
                        (SELECT NULLIF(t.decision, 'reset') FROM triage t
                            WHERE t.route = s.route AND t.signature = s.signature ORDER BY t.id DESC LIMIT 1)
                            AS decision
                    FROM signatures s LEFT JOIN epoch_signatures e ON e.route = s.route AND e.signature = s.signature
                    WHERE s.route = ? AND s.count - COALESCE(e.count, 0) > 0
                    ORDER BY recent DESC, s.signature
                    """,
                arguments: [route])
            counts.signatures = rows.map { row in
                EpochCounts.Signature(
                    id: row["signature"], text: row["text"], count: row["recent"], decision: row["decision"])
            }
            return counts
        }
    }

    /// A signature's text (`/email changed, status changed`), at any time; nil when the route never had it.
    public func signatureText(route: String, signature: String) throws -> String? {
        try self.database.read { db in
            try String.fetchOne(
                db, sql: "SELECT text FROM signatures WHERE route = ? AND signature = ?", arguments: [route, signature])
        }
    }

    /// Records a triage decision (the latest one of a signature is the one in force).
    public func recordTriage(_ decision: TriageDecision) throws {
        try self.database.write { db in
            try db.execute(
                sql:
                    "INSERT INTO triage (route, signature, decision, reason, actor, decided_at) VALUES (?, ?, ?, ?, ?, "
                    + "?)",
                arguments: [
                    decision.route, decision.signature, decision.decision.rawValue, decision.reason, decision.actor,
                    decision.decidedAt.timeIntervalSince1970,
                ])
        }
    }

    /// Every triage decision of a route (or all), oldest first.
    public func triageDecisions(route: String? = nil) throws -> [TriageDecision] {
        try self.database.read { db in
            let rows =
                if let route {
                    try Row.fetchAll(db, sql: "SELECT * FROM triage WHERE route = ? ORDER BY id", arguments: [route])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM triage ORDER BY id")
                }
            return rows.map { row in
                TriageDecision(
                    route: row["route"], signature: row["signature"],
                    decision: TriageDecision.Decision(rawValue: row["decision"]) ?? .accepted,
                    reason: row["reason"], actor: row["actor"],
                    decidedAt: Date(timeIntervalSince1970: row["decided_at"]))
            }
        }
    }
}
