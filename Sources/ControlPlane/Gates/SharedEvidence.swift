public import DiffStore
public import Foundation

/// The evidence every proxy of a shared store counts into (`--store`): the shadow counters and mismatch signatures of
/// all instances, each route's epoch (its last stage change) and the triage decisions. The gates read a route's
/// counts here, so that a comparison made by any proxy counts in every proxy's gate. The rest of the diff store
/// (pointers, noise, minute buckets, samples) is read through ``DiffReading``; `epochCounts` and `recordTriage` are
/// ``ReviewEvidence``'s (their failures are ``SharedStoreFailure``s). The reconcile records are kept here too.
///
/// ```swift
/// try await evidence.apply(batch)                          // a recorder's flush, besides its own diff store
/// let counts = try await evidence.epochCounts(route: "orders.get")
/// counts.compared                                          // every proxy's comparisons since the last stage change
/// ```
public protocol SharedEvidence: ReviewEvidence, AnyObject, Sendable {
    /// Adds a batch (counters, signatures, pointers, noise, minute buckets, samples) once: a batch
    /// whose `id` the store has already applied (a retry of a write that timed out after it committed) changes nothing.
    func apply(_ batch: DiffBatch, id: String) async throws(SharedStoreFailure)
    /// A signature's text, as any proxy counted it; nil when no proxy did.
    func signatureText(route: String, signature: String) async throws(SharedStoreFailure) -> String?
    /// A signature's decision in force (the latest), as any proxy recorded it; nil when never triaged.
    func latestDecision(route: String, signature: String) async throws(SharedStoreFailure) -> TriageDecision.Decision?
    /// Starts a route's epoch anew: the counters and signature counts as they are now are its baseline.
    func startEpoch(route: String, stage: String, at time: Date) async throws(SharedStoreFailure)
    /// Deletes samples (all, one route's, those recorded before a time, or both); returns how many.
    func purgeSamples(route: String?, before: Date?) async throws(SharedStoreFailure) -> Int
    /// Records a `strangler reconcile` result (an entity's latest is what the gates read).
    func recordReconcile(_ record: ReconcileRecord) async throws(SharedStoreFailure)
    /// The store's URL, without a password (for the commands the gates suggest).
    var storeDescription: String { get }
    /// An entity's latest reconcile record; nil when it was never reconciled into this store.
    func latestReconcile(entity: String) async throws(SharedStoreFailure) -> ReconcileRecord?
}
