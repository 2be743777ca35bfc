public import DiffStore
public import Foundation

/// The evidence every proxy of a shared store counts into (`--store`): the shadow counters and mismatch signatures of
/// all instances, each route's epoch (its last stage change) and the triage decisions. The gates read a route's
/// counts here, so that a comparison made by any proxy counts in every proxy's gate. Samples, pointers and noise stay
/// in each proxy's own diff store.
///
/// ```swift
/// try await evidence.apply(batch)                          // a recorder's flush, besides its own diff store
/// let counts = try await evidence.epochCounts(route: "orders.get")
/// counts.compared                                          // every proxy's comparisons since the last stage change
/// ```
public protocol SharedEvidence: AnyObject, Sendable {
    /// Adds a batch's counters and signature counts (samples, pointers and noise are not kept here), once: a batch
    /// whose `id` the store has already applied (a retry of a write that timed out after it committed) changes nothing.
    func apply(_ batch: DiffBatch, id: String) async throws(SharedStoreFailure)
    /// A signature's text, as any proxy counted it; nil when no proxy did.
    func signatureText(route: String, signature: String) async throws(SharedStoreFailure) -> String?
    /// A signature's decision in force (the latest), as any proxy recorded it; nil when never triaged.
    func latestDecision(route: String, signature: String) async throws(SharedStoreFailure) -> TriageDecision.Decision?
    /// The route's counters and signatures since its epoch began, each signature with its latest decision.
    func epochCounts(route: String) async throws(SharedStoreFailure) -> EpochCounts
    /// Starts a route's epoch anew: the counters and signature counts as they are now are its baseline.
    func startEpoch(route: String, stage: String, at time: Date) async throws(SharedStoreFailure)
    /// Records a triage decision (the latest of a signature is in force).
    func recordTriage(_ decision: TriageDecision) async throws(SharedStoreFailure)
}
