import Diff
public import DiffStore
import Foundation
public import RouteTable

/// What a change of a route's diff rules (`shadow.ignore`, `arrays`, `version`) did to the evidence already
/// gathered: its kept mismatch samples are compared again under the new rules, signatures the rules now explain
/// become `explained` (their mismatches count as matches in the gate's match rate), and signatures explained by
/// rules that are gone are untriaged again.
///
/// ```swift
/// let reviews = SignatureReview.review(store: store, from: before, to: after, actor: "ops")
/// reviews.first?.explained   // [("1f2e3d4c5b6a7988", "/updatedAt changed")]
/// ```
public struct SignatureReview: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var id: String
        public var text: String

        public init(id: String, text: String) {
            self.id = id
            self.text = text
        }
    }

    public var route: String
    /// Compared and matched (explained mismatches counted as matches), since the route's last stage change, before
    /// and after.
    public var before: (compared: Int, accepted: Int)
    public var after: (compared: Int, accepted: Int)
    /// Signatures the new rules explain (every kept sample matches under them).
    public var explained: [Signature]
    /// Signatures that were explained by rules and no longer are: untriaged again.
    public var untriaged: [Signature]
    /// Signatures whose kept samples still differ under the new rules.
    public var stillDiffering: [Signature]

    public init(
        route: String, before: (compared: Int, accepted: Int), after: (compared: Int, accepted: Int),
        explained: [Signature], untriaged: [Signature], stillDiffering: [Signature]
    ) {
        self.route = route
        self.before = before
        self.after = after
        self.explained = explained
        self.untriaged = untriaged
        self.stillDiffering = stillDiffering
    }

    public static func == (lhs: SignatureReview, rhs: SignatureReview) -> Bool {
        lhs.route == rhs.route && lhs.before == rhs.before && lhs.after == rhs.after && lhs.explained == rhs.explained
            && lhs.untriaged == rhs.untriaged && lhs.stillDiffering == rhs.stillDiffering
    }

    /// `contacts.get: match rate 92.00% → 100.00% of 50; explained now: 1f2e… (/updatedAt changed)`.
    public var text: String {
        func rate(_ side: (compared: Int, accepted: Int)) -> String {
            side.compared > 0 ? Gates.percent(Double(side.accepted) / Double(side.compared)) : "—"
        }
        var parts = ["match rate \(rate(self.before)) → \(rate(self.after)) of \(self.after.compared)"]
        func list(_ signatures: [Signature]) -> String {
            signatures.map { "\($0.id) (\($0.text))" }.joined(separator: "; ")
        }
        if !self.explained.isEmpty { parts.append("explained now: \(list(self.explained))") }
        if !self.untriaged.isEmpty { parts.append("untriaged again: \(list(self.untriaged))") }
        if !self.stillDiffering.isEmpty { parts.append("still differing: \(list(self.stillDiffering))") }
        return "\(self.route): " + parts.joined(separator: "; ")
    }

    /// The rules a route's answers are compared by.
    static func options(_ route: Route) -> DiffOptions {
        let policy = route.shadow ?? ShadowPolicy.defaults
        return DiffOptions(ignore: policy.ignore, arrays: policy.arrays)
    }

    /// Reviews every route of `table` whose diff rules differ from `previous`'s, and records the triage decisions
    /// that follow (actor `actor`). A route without kept samples or signatures is left out.
    ///
    /// `baselines`: a route's counts as they were before the change's own decision (a `triage --ignore` records it
    /// first), for the "before" of the match rate.
    public static func review(
        store: DiffStore, from previous: RouteTable, to table: RouteTable, actor: String,
        baselines: [String: EpochCounts] = [:]
    ) -> [SignatureReview] {
        var reviews: [SignatureReview] = []
        for route in Self.rulesChanged(from: previous, to: table) {
            do {
                let counts = try store.epochCounts(route: route.id)
                let pairs = counts.signatures.isEmpty ? [] : try store.storedPairs(route: route.id)
                guard
                    let (review, decisions) = Self.judge(
                        route, counts: counts, pairs: pairs, actor: actor,
                        baseline: baselines[route.id])
                else { continue }
                for decision in decisions { try store.recordTriage(decision) }
                reviews.append(review)
            } catch {
                continue
            }
        }
        return reviews
    }

    /// The same against any evidence (the shared store of every proxy, `--store`): its samples, epochs and triage.
    public static func review(
        evidence: any ReviewEvidence, from previous: RouteTable, to table: RouteTable, actor: String,
        baselines: [String: EpochCounts] = [:]
    ) async -> [SignatureReview] {
        var reviews: [SignatureReview] = []
        for route in Self.rulesChanged(from: previous, to: table) {
            do {
                let counts = try await evidence.epochCounts(route: route.id)
                let pairs = counts.signatures.isEmpty ? [] : try await evidence.storedPairs(route: route.id)
                guard
                    let (review, decisions) = Self.judge(
                        route, counts: counts, pairs: pairs, actor: actor,
                        baseline: baselines[route.id])
                else { continue }
                for decision in decisions { try await evidence.recordTriage(decision) }
                reviews.append(review)
            } catch {
                continue
            }
        }
        return reviews
    }

    /// The routes of `table` whose diff rules (`ignore`, `arrays`, `version`) differ from `previous`'s.
    static func rulesChanged(from previous: RouteTable, to table: RouteTable) -> [Route] {
        table.routes.filter { route in
            guard let old = previous.route(id: route.id) else { return false }
            let before = old.shadow ?? ShadowPolicy.defaults
            let after = route.shadow ?? ShadowPolicy.defaults
            return before.ignore != after.ignore || before.arrays != after.arrays || before.version != after.version
        }
    }

    /// Compares the route's kept samples (`pairs`) again under its rules now: the review, and the decisions to record
    /// (`explained` or `reset`) where the verdict on a signature changed. Nil without signatures.
    static func judge(
        _ route: Route, counts: EpochCounts, pairs allPairs: [DiffStore.StoredPair], actor: String,
        baseline: EpochCounts? = nil
    ) -> (SignatureReview, [TriageDecision])? {
        guard !counts.signatures.isEmpty else { return nil }
        let pairs = Dictionary(grouping: allPairs, by: \.signature)
        let options = Self.options(route)
        let versions = (route.shadow ?? ShadowPolicy.defaults).version
        let names = options.headers.map { $0.lowercased() }
        func accepted(_ signatures: [EpochCounts.Signature]) -> Int {
            min(counts.compared, counts.matched + signatures.filter { $0.decision != nil }.reduce(0) { $0 + $1.count })
        }
        var review = SignatureReview(
            route: route.id, before: (counts.compared, accepted(baseline?.signatures ?? counts.signatures)),
            after: (0, 0), explained: [],
            untriaged: [], stillDiffering: [])
        var decisions: [TriageDecision] = []
        var signatures = counts.signatures
        for index in signatures.indices {
            let signature = signatures[index]
            let kept = pairs[signature.id] ?? []
            let explainedNow: Bool
            if kept.isEmpty {
                // No sample to compare again: explained when every entry of its text is under an ignore rule.
                explainedNow = Self.coveredByIgnore(signature.text, ignore: options.ignore)
            } else {
                explainedNow = kept.allSatisfy { pair in
                    let comparison = ResponseDiffer.compare(
                        Self.compared(pair.monolith, names), Self.compared(pair.service, names), options: options)
                    return comparison.isMatch || comparison.isStale(versions: versions)
                }
            }
            let entry = Signature(id: signature.id, text: signature.text)
            if explainedNow, signature.decision == nil {
                decisions.append(
                    TriageDecision(
                        route: route.id, signature: signature.id, decision: .explained,
                        reason: "explained by the route's diff rules", actor: actor))
                signatures[index].decision = TriageDecision.Decision.explained.rawValue
                review.explained.append(entry)
            } else if !explainedNow, signature.decision == TriageDecision.Decision.explained.rawValue {
                decisions.append(
                    TriageDecision(
                        route: route.id, signature: signature.id, decision: .reset,
                        reason: "no longer explained by the route's diff rules", actor: actor))
                signatures[index].decision = nil
                review.untriaged.append(entry)
            } else if !explainedNow, signature.decision == nil {
                review.stillDiffering.append(entry)
            }
        }
        review.after = (counts.compared, accepted(signatures))
        return (review, decisions)
    }

    /// Only the headers the comparison reads: as the recorder compares them.
    static func compared(_ answer: StoredResponse, _ names: [String]) -> ResponseSnapshot {
        ResponseSnapshot(
            status: answer.status, headers: answer.headers.filter { names.contains($0.name.lowercased()) },
            body: answer.body)
    }

    /// Whether every entry of a signature's text (`/items/*/title changed, /note added`) lies under an ignore rule.
    static func coveredByIgnore(_ text: String, ignore: [String]) -> Bool {
        let entries = RouteOperations.signatureEntries(text)
        return !entries.isEmpty
            && entries.allSatisfy { entry in
                entry.pattern.hasPrefix("/")
                    && ignore.contains { PointerPattern.covers(pattern: $0, pointer: entry.pattern) }
            }
    }
}
