public import ControlPlane
public import DiffStore
public import Foundation
import Logging
import PostgresNIO

/// What `strangler store import|export` moves between the file default (routes.json, `<data>/audit.jsonl`,
/// `<data>/diffs.sqlite`, `<data>/redaction.key`, `<data>/reconcile/`) and the shared store: the table, its audit log,
/// each route's evidence since its last stage change (the stage, when it began, the comparisons and mismatch
/// signatures counted since: what the gates read), every triage decision, the kept samples (with the hashes of what
/// was redacted from them, and the key of those hashes), the differing and noise pointers' counts, the minute buckets
/// and each entity's latest reconcile record.
public struct StoreBundle: Sendable {
    /// One route's evidence.
    public struct RouteEvidence: Sendable, Equatable {
        public var route: String
        public var counts: EpochCounts

        public init(route: String, counts: EpochCounts) {
            self.route = route
            self.counts = counts
        }

        /// Whether there is anything to move: an epoch, or counts.
        public var isEmpty: Bool {
            self.counts.since == nil && self.counts.compared == 0 && self.counts.signatures.isEmpty
        }

        /// The counts as a batch that adds them (at `time`), with the route's noise checks.
        public func batch(at time: Date, noiseChecks: Int = 0) -> DiffBatch {
            var batch = DiffBatch(time: time)
            var counts = RouteCounts()
            counts.compared = self.counts.compared
            counts.matched = self.counts.matched
            counts.mismatched = self.counts.mismatched
            counts.noiseChecks = noiseChecks
            if counts != RouteCounts() { batch.counts[self.route] = counts }
            for signature in self.counts.signatures {
                batch.count(signature: signature.id, text: signature.text, on: self.route, occurrences: signature.count)
            }
            return batch
        }
    }

    /// The route table's text, as routes.json holds it.
    public var table: String
    /// The audit log's entries (one JSON object each), oldest first.
    public var audit: [String]
    public var evidence: [RouteEvidence]
    /// Every triage decision, oldest first.
    public var triage: [TriageDecision]
    /// The kept samples (oldest first, with their subjects), the pointers' and noise pointers' counts; no counters.
    public var diffs = DiffBatch()
    /// Each route's noise checks.
    public var noiseChecks: [String: Int] = [:]
    public var buckets: [TimeBucket] = []
    /// Each entity's latest reconcile record.
    public var reconcile: [ReconcileRecord] = []
    /// The key of the samples' keyed hashes; nil when none was made yet.
    public var redactionKey: [UInt8]?

    public init(table: String, audit: [String], evidence: [RouteEvidence], triage: [TriageDecision]) {
        self.table = table
        self.audit = audit
        self.evidence = evidence
        self.triage = triage
    }

    /// The evidence batch of `evidence`, at `time`, with its route's noise checks.
    public func batch(_ evidence: RouteEvidence, at time: Date) -> DiffBatch {
        evidence.batch(at: time, noiseChecks: self.noiseChecks[evidence.route] ?? 0)
    }

    /// Whether a route has anything to move.
    public func moves(_ evidence: RouteEvidence) -> Bool {
        !evidence.isEmpty || self.noiseChecks[evidence.route] != nil
    }
}

extension SharedStore {
    /// Writes `bundle` into an empty store, in one transaction: the table as version 1, the audit log followed by
    /// `entry` (the import's own), each route's epoch and counts, the triage decisions. A store that already holds a
    /// table is refused, and nothing is written.
    public func importBundle(
        _ bundle: StoreBundle, contentHash: String, actor: String, entry: String
    ) async throws(SharedStoreFailure) {
        let location = self.location
        let refused = try await self.bounded("importing into the store", within: max(self.timeout, .seconds(60))) {
            [client, logger] () -> Int? in
            try await client.withTransaction(logger: logger) { connection -> Int? in
                var inserted = false
                for try await _ in try await connection.query(
                    """
                    INSERT INTO strangler.route_head (id, version, content_hash) VALUES (1, 1, \(contentHash))
                    ON CONFLICT (id) DO NOTHING RETURNING version
                    """, logger: logger
                ).decode(Int.self) {
                    inserted = true
                }
                guard inserted else {
                    for try await version in try await connection.query(
                        "SELECT version FROM strangler.route_head", logger: logger
                    ).decode(Int.self) {
                        return version
                    }
                    return 0
                }
                try await connection.query(
                    """
                    INSERT INTO strangler.route_versions (version, text, content_hash, actor, reason)
                    VALUES (1, \(bundle.table), \(contentHash), \(actor), 'imported')
                    """, logger: logger)
                for audit in bundle.audit + [entry] {
                    try await connection.query("INSERT INTO strangler.audit (entry) VALUES (\(audit))", logger: logger)
                }
                let now = Date()
                for evidence in bundle.evidence where bundle.moves(evidence) {
                    // The epoch first, on an empty store: its baseline is nothing, and the counts added after it are
                    // the epoch's.
                    if let since = evidence.counts.since {
                        try await Self.startEpoch(
                            route: evidence.route, stage: evidence.counts.stage ?? "transform",
                            at: since.timeIntervalSince1970, on: connection, logger: logger)
                    }
                    try await Self.add(bundle.batch(evidence, at: now), on: connection, logger: logger)
                }
                try await Self.importDiffs(bundle, on: connection, logger: logger)
                for decision in bundle.triage {
                    try await connection.query(
                        """
                        INSERT INTO strangler.evidence_triage (route, signature, decision, reason, actor, decided_at)
                        VALUES (\(decision.route), \(decision.signature), \(decision.decision.rawValue),
                            \(decision.reason), \(decision.actor), \(decision.decidedAt.timeIntervalSince1970))
                        """, logger: logger)
                }
                try await connection.query("SELECT pg_notify(\(Self.routesChannel), '1')", logger: logger)
                return nil
            }
        }
        if let refused {
            throw SharedStoreFailure(
                "the store at \(location) already holds a route table (version \(refused)): import moves a table into "
                    + "an empty store; nothing was written")
        }
    }

    /// What the store holds, for `strangler store export`: the head table, the audit log, the evidence of each route
    /// in `routes` (the table's), every triage decision. Nil when the store holds no table.
    public func exportBundle(routes: (String) -> [String]) async throws(SharedStoreFailure) -> StoreBundle? {
        guard let head = try await self.head() else { return nil }
        var evidence: [StoreBundle.RouteEvidence] = []
        for route in routes(head.text) {
            let counts = try await self.epochCounts(route: route)
            evidence.append(StoreBundle.RouteEvidence(route: route, counts: counts))
        }
        var bundle = StoreBundle(
            table: head.text, audit: try await self.auditEntries(), evidence: evidence,
            triage: try await self.triageDecisions())
        try await self.exportDiffs(into: &bundle)
        return bundle
    }

    /// Every triage decision, oldest first.
    public func triageDecisions() async throws(SharedStoreFailure) -> [TriageDecision] {
        try await self.triageDecisions(route: nil)
    }

    /// A route's triage decisions (every route's when nil), oldest first.
    public func triageDecisions(route: String?) async throws(SharedStoreFailure) -> [TriageDecision] {
        try await self.bounded("reading the triage decisions") { [client, logger] in
            var decisions: [TriageDecision] = []
            let filter = PostgresFilter().and("route =", route)
            let rows = try await client.query(
                filter.query(
                    "SELECT route, signature, decision, reason, actor, decided_at FROM strangler.evidence_triage"
                        + filter.clause + " ORDER BY id"), logger: logger)
            for try await (route, signature, decision, reason, actor, decidedAt) in rows.decode(
                (String, String, String, String, String, Double).self)
            {
                guard let decision = TriageDecision.Decision(rawValue: decision) else { continue }
                decisions.append(
                    TriageDecision(
                        route: route, signature: signature, decision: decision, reason: reason, actor: actor,
                        decidedAt: Date(timeIntervalSince1970: decidedAt)))
            }
            return decisions
        }
    }
}
