public import ControlPlane
import Diff
public import DiffStore
import Foundation
import JSON
public import Logging
public import Proxy
public import RouteTable
public import ServiceLifecycle
import Synchronization

/// Takes shadow outcomes off the event loops, compares the pairs, and writes the counts and samples to the
/// diff store in batches. Nothing here runs on a request's path: the event loops only append to a queue under
/// a lock; comparison and SQLite happen in `flush()`, which the recorder's own task runs every `interval`.
///
/// Bounds: at most `maxInFlight` shadows are in flight at once, from the decision to shadow until the shadow's
/// answer is in (`tryAcquire()`; the excess is dropped and counted), and at most `maxQueued` pairs wait for
/// comparison (the excess is dropped and counted: a slow disk or a busy CPU never grows memory without bound).
/// Bodies are limited by the calls themselves. A flush starts early once `eagerFlush` pairs wait: `submit` rings the
/// run loop's doorbell (it never waits, and starts no task of its own), and the loop flushes at once.
public final class ShadowRecorder: ShadowSink, Service {
    public typealias Count = ShadowCount

    private struct Pending: Sendable {
        var observations: [ShadowObservation] = []
        var counts: [String: RouteCounts] = [:]
        var bytes = 0
        var flushStarted = false
    }

    public let store: DiffStore
    public let maxInFlight: Int
    public let maxQueued: Int
    /// Bytes of bodies and heads waiting for comparison, at most.
    public let maxQueuedBytes: Int
    let eagerFlush: Int
    let interval: Duration
    private let logger: Logger
    /// Told of every shadow not compared, with its reason (the proxy's metrics).
    private let notCompared: @Sendable (String, SkipReason) -> Void
    /// Called with each comparison's route and result (`match`, `mismatch`, `stale`).
    private let compared: @Sendable (String, String) -> Void
    private let inFlight = Atomic<Int>(0)
    private let pending = Mutex(Pending())
    private let writer: Writer
    /// Rings when a flush is due: every `interval` (the run loop's own ticks) and when `eagerFlush` pairs wait. Rings
    /// while a flush runs are kept as one, so the loop flushes once more after it, never a queue of flushes.
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    /// `privacy` gives the live table's redaction rules and retention (read at each flush).
    public init(
        store: DiffStore, maxInFlight: Int = 256, maxQueued: Int = 10_000, maxQueuedBytes: Int = 64 * 1024 * 1024,
        interval: Duration = .milliseconds(250), privacy: @escaping @Sendable () -> PrivacyPolicy = { .defaults },
        notCompared: @escaping @Sendable (_ route: String, _ reason: SkipReason) -> Void = { _, _ in },
        compared: @escaping @Sendable (_ route: String, _ result: String) -> Void = { _, _ in },
        shared: (any SharedEvidence)? = nil, redactionKey: [UInt8]? = nil, logger: Logger
    ) {
        self.notCompared = notCompared
        self.compared = compared
        self.store = store
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.maxQueuedBytes = maxQueuedBytes
        self.eagerFlush = max(1, min(1024, maxQueued / 4))
        self.interval = interval
        self.logger = logger
        self.writer = Writer(
            store: store, shared: shared, privacy: privacy,
            key: RedactionKey(bytes: redactionKey ?? store.redactionKey), compared: compared,
            logger: logger)
        (self.doorbell, self.ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Shadows in flight now (decided, and their answer not in yet).
    public var shadowsInFlight: Int { self.inFlight.load(ordering: .relaxed) }

    /// Reserves room for one shadow; false when `maxInFlight` are already running (then count it `.dropped`).
    public func tryAcquire() -> Bool {
        var current = self.inFlight.load(ordering: .relaxed)
        while current < self.maxInFlight {
            let (exchanged, original) = self.inFlight.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back the room of a shadow once it ended (answered, failed or timed out).
    public func release() {
        self.inFlight.subtract(1, ordering: .acquiringAndReleasing)
    }

    public func count(_ count: Count, route: String) {
        func add(to counts: inout RouteCounts) {
            switch count {
            case .matched:
                counts.compared += 1
                counts.matched += 1
            case .dropped: Self.add(.inFlight, to: &counts)
            case .skipped(let reason): Self.add(reason, to: &counts)
            case .shadowError: counts.shadowErrors += 1
            case .timeout: counts.timeouts += 1
            }
        }
        self.pending.withLock { pending in add(to: &pending.counts[route, default: RouteCounts()]) }
        switch count {
        case .dropped: self.notCompared(route, .inFlight)
        case .skipped(let reason): self.notCompared(route, reason)
        case .matched: self.compared(route, "match")
        case .shadowError, .timeout: break
        }
    }

    /// Counts a shadow not compared: its reason's counter, and `skipped` or `dropped` (in flight, overflow).
    static func add(_ reason: SkipReason, to counts: inout RouteCounts) {
        switch reason {
        case .tooLarge: counts.tooLarge += 1
        case .upgrade: counts.upgrades += 1
        case .unanswered: counts.unanswered += 1
        case .earlyAnswer: counts.earlyAnswers += 1
        case .inFlight: counts.inFlight += 1
        case .overflow: counts.overflow += 1
        case .unhealthy: counts.unhealthy += 1
        }
        switch reason {
        case .inFlight, .overflow: counts.dropped += 1
        case .tooLarge, .upgrade, .unanswered, .earlyAnswer, .unhealthy: counts.skipped += 1
        }
    }

    /// Hands over a pair to compare (dropped and counted when `maxQueued` pairs already wait).
    public func submit(_ observation: ShadowObservation) {
        var overflowed = false
        defer {
            if overflowed {
                self.notCompared(observation.route, .overflow)
                ShadowSpanResult.end(observation.span, result: SkipReason.overflow.rawValue)
            }
        }
        let startFlush = self.pending.withLock { pending -> Bool in
            let bytes = observation.byteCount
            guard pending.observations.count < self.maxQueued,
                pending.bytes + bytes <= self.maxQueuedBytes || pending.observations.isEmpty
            else {
                Self.add(.overflow, to: &pending.counts[observation.route, default: RouteCounts()])
                overflowed = true
                return false
            }
            pending.observations.append(observation)
            pending.bytes += bytes
            guard pending.observations.count >= self.eagerFlush, !pending.flushStarted else { return false }
            pending.flushStarted = true
            return true
        }
        if startFlush { self.ring.yield() }
    }

    /// Compares what is waiting and writes it to the store (one transaction). Calls run one after another.
    public func flush() async {
        await self.writer.write { [self] in
            self.pending.withLock { pending in
                defer { pending = Pending() }
                return (pending.observations, pending.counts)
            }
        }
    }

    /// ``flush()``, then, with a shared store that answers, what the flush owes it is written before this returns: for
    /// a reader of the shared counts (the gates, the admin API).
    public func flushShared() async {
        await self.flush()
        await self.writer.settleShared()
    }

    /// What waits for the shared store (`--store`): counts a flush could not write there yet, kept (merged) and written
    /// once the store answers; nil without a shared store.
    public var sharedBacklog: SharedBacklog? {
        self.writer.shared == nil ? nil : self.writer.published.withLock { $0 }
    }

    /// Flushes at every ring of the doorbell until the process shuts down gracefully (or the task is cancelled), then
    /// once more: in a `ServiceGroup` the recorder stops after the data plane, so that last flush takes what the
    /// drained requests left. Runs once.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // The interval's ticks ring the same doorbell as eager flushes, so the loop has one thing to wait on.
            group.addTask { [interval, ring] in
                while (try? await Task.sleep(for: interval)) != nil { ring.yield() }
            }
            for await _ in self.doorbell.cancelOnGracefulShutdown() {
                await self.flush()
            }
            group.cancelAll()
        }
        self.ring.finish()
        await self.flush()
    }
}

/// The counts a proxy owes the shared store: comparisons (and not-compared shadows) counted here that the store has not
/// taken yet, and the signature occurrences it had no room to keep.
public struct SharedBacklog: Sendable, Equatable {
    /// Comparisons counted and not yet written to the shared store.
    public var compared = 0
    /// Shadow outcomes not yet written: compared, not compared (dropped, skipped), failed, timed out, stale.
    public var outcomes = 0
    /// Signature occurrences dropped because the backlog held 10,000 signatures already (their comparisons are still
    /// counted).
    public var droppedSignatures = 0
    /// Samples dropped because the backlog held 200 already (a signature keeps collecting until the store has its
    /// share).
    public var droppedSamples = 0
    /// The shared store's last refusal, while it refuses.
    public var lastError: String?
}

/// Compares and writes; an actor so that two flushes never interleave (the sample counts stay exact). Its jobs run on
/// a dispatch queue of its own: comparison is CPU work and SQLite waits on the disk, and neither may hold a thread of
/// Swift's cooperative pool (one per core), which the admin API and every other task of the process share.
private actor Writer {
    private let queue = QueueExecutor(label: "strangler.diff-writer")
    nonisolated var unownedExecutor: UnownedSerialExecutor { self.queue.asUnownedSerialExecutor() }
    let store: DiffStore
    /// Where every proxy counts (`--store`): each batch's counters and signatures go there too.
    let shared: (any SharedEvidence)?
    let logger: Logger
    let privacy: @Sendable () -> PrivacyPolicy
    let key: RedactionKey
    /// Each comparison's route and result, for `strangler_shadow_comparisons_total`.
    let compared: @Sendable (String, String) -> Void
    /// What the shared store is owed: counts never sent (merged), and the batch sent last, until the store confirms it.
    private var fresh = DiffBatch()
    private var unconfirmed: (id: String, batch: DiffBatch)?
    private var droppedSignatures = 0
    private var lastError: String?
    private var failing = false
    private var retrying = false
    private var paying: Task<Void, Never>?
    /// What is owed as last computed, for `/admin/status` and the metrics (read without waiting on the actor).
    nonisolated let published = Mutex(SharedBacklog())
    static let maxBacklogSignatures = 10_000
    /// Samples waiting for the shared store at most (each holds a request and two answers, up to the body limit).
    static let maxBacklogSamples = 200
    private var droppedSamples = 0
    /// Samples kept per "route signature", read from the store on first sight.
    private var sampleCounts: [String: Int] = [:]
    /// When samples past the table's retention were last deleted, and when the store was last vacuumed after that.
    private var lastExpiry: ContinuousClock.Instant?
    /// When the sample counts were last forgotten (with a shared store: once a minute).
    private var lastCountReset: ContinuousClock.Instant?
    private var lastVacuum: ContinuousClock.Instant?

    init(
        store: DiffStore, shared: (any SharedEvidence)?, privacy: @escaping @Sendable () -> PrivacyPolicy,
        key: RedactionKey, compared: @escaping @Sendable (String, String) -> Void, logger: Logger
    ) {
        self.store = store
        self.shared = shared
        self.privacy = privacy
        self.key = key
        self.compared = compared
        self.logger = logger
    }

    /// Takes what waits (inside the actor, so flushes see the queue in order) and writes it.
    func write(taking take: @Sendable () -> ([ShadowObservation], [String: RouteCounts])) {
        let privacy = self.privacy()
        self.expire(privacy.retention)
        let now = ContinuousClock.now
        if self.shared != nil, self.lastCountReset.map({ now - $0 >= .seconds(60) }) ?? true {
            self.lastCountReset = now
            self.sampleCounts.removeAll()
        }
        let (observations, counts) = take()
        guard !observations.isEmpty || !counts.isEmpty else { return }
        var batch = DiffBatch()
        batch.counts = counts
        for observation in observations {
            self.add(observation, privacy: privacy, to: &batch)
        }
        // With a shared store the samples (requests and answers: personal data, redacted) are kept there only, so
        // that one erasure or expiry reaches them all; this store keeps the counts.
        var local = batch
        if self.shared != nil { local.samples = [] }
        do {
            try self.store.apply(local)
        } catch {
            self.logger.error(
                "the diff store refused a batch; its counts and samples are lost", metadata: ["error": "\(error)"])
            self.sampleCounts.removeAll()
        }
        guard self.shared != nil else { return }
        self.owe(batch)
        if !self.failing { self.startPaying() }
    }

    /// Adds a batch's counters and signatures to what the shared store is owed (never sent yet: merged).
    private func owe(_ batch: DiffBatch) {
        self.fresh.time = batch.time
        let start = DiffStore.minute(of: batch.time)
        for (route, counts) in batch.counts {
            self.fresh.counts[route, default: RouteCounts()] += counts
            // Each batch's counts in its own minute, as the proxy's own store buckets them; past 10,000 route-minutes
            // owed, the minute detail is dropped (the counters keep the counts).
            let key = DiffBatch.MinuteKey(route: route, start: start)
            if self.fresh.minutes[key] != nil || self.fresh.minutes.count < Self.maxBacklogSignatures {
                self.fresh.minutes[key, default: RouteCounts()] += counts
            }
        }
        for (key, count) in batch.signatures {
            if self.fresh.signatures[key] == nil, self.fresh.signatures.count >= Self.maxBacklogSignatures {
                self.droppedSignatures += count
            } else {
                self.fresh.signatures[key, default: 0] += count
            }
        }
        // Pointers and noise are bounded as signatures are; what finds no room is not counted there (the comparisons
        // and signatures are).
        for (key, count) in batch.pointers
        where self.fresh.pointers[key] != nil || self.fresh.pointers.count < Self.maxBacklogSignatures {
            self.fresh.pointers[key, default: 0] += count
        }
        for (key, count) in batch.noise
        where self.fresh.noise[key] != nil || self.fresh.noise.count < Self.maxBacklogSignatures {
            self.fresh.noise[key, default: 0] += count
        }
        let room = max(0, Self.maxBacklogSamples - self.fresh.samples.count)
        self.fresh.samples += batch.samples.prefix(room)
        self.droppedSamples += max(0, batch.samples.count - room)
        self.publish()
    }

    /// Writes what is owed in the background (flushes never wait on the store): the batch sent last and not confirmed
    /// first, again with its id (a write that timed out may have committed: the store then skips it), then what came
    /// since as a new batch. On a refusal it stops, and retries a second later.
    private func startPaying() {
        guard self.paying == nil, let shared = self.shared else { return }
        self.paying = Task { [self] in
            await self.payAll(shared)
            self.paying = nil
        }
    }

    private func payAll(_ shared: any SharedEvidence) async {
        while true {
            if self.unconfirmed == nil {
                guard !self.fresh.isEmpty else { return }
                self.unconfirmed = (UUID().uuidString, self.fresh)
                self.fresh = DiffBatch()
            }
            guard let (id, batch) = self.unconfirmed else { return }
            do {
                try await shared.apply(batch, id: id)
                self.unconfirmed = nil
                if self.failing {
                    self.logger.notice("shadow counts written to the shared store again")
                }
                self.failing = false
                self.lastError = nil
                self.publish()
            } catch {
                self.lastError = "\(error)"
                if !self.failing {
                    self.logger.error(
                        "the shared store refused shadow counts; they are kept and written once it answers",
                        metadata: ["error": "\(error)"])
                }
                self.failing = true
                self.publish()
                self.retryLater()
                return
            }
        }
    }

    /// What is owed is written now, unless the store refuses lately (then it waits for the retry): for a reader of
    /// the shared counts right after a flush (the gates).
    func settleShared() async {
        guard self.shared != nil, !self.failing else { return }
        self.startPaying()
        await self.paying?.value
    }

    private func retryLater() {
        guard !self.retrying else { return }
        self.retrying = true
        Task { [self] in
            try? await Task.sleep(for: .seconds(1))
            self.retrying = false
            self.startPaying()
        }
    }

    private func publish() {
        var state = SharedBacklog(
            droppedSignatures: self.droppedSignatures, droppedSamples: self.droppedSamples, lastError: self.lastError)
        for batch in [self.fresh, self.unconfirmed?.batch].compactMap({ $0 }) {
            for counts in batch.counts.values {
                state.compared += counts.compared
                state.outcomes +=
                    counts.compared + counts.dropped + counts.skipped + counts.shadowErrors + counts.timeouts
                    + counts.stale
            }
        }
        self.published.withLock { $0 = state }
    }

    /// Deletes the samples older than `retention`, at most once a minute. When some went, the WAL is checkpointed (with
    /// `secure_delete` the deleted bytes are zeroed in the file; the checkpoint takes them out of the WAL), and the
    /// store is vacuumed at most once an hour (a vacuum rewrites the whole file: with steady traffic samples expire
    /// every minute).
    private func expire(_ retention: Duration?) {
        guard let retention else { return }
        let now = ContinuousClock.now
        if let last = self.lastExpiry, now - last < .seconds(60) { return }
        self.lastExpiry = now
        let seconds = Double(retention.components.seconds) + Double(retention.components.attoseconds) / 1e18
        if let shared = self.shared {
            Task { await Self.expireShared(shared, before: Date().addingTimeInterval(-seconds), logger: self.logger) }
        }
        do {
            let deleted = try self.store.purge(before: Date().addingTimeInterval(-seconds))
            guard deleted > 0 else { return }
            self.sampleCounts.removeAll()
            let vacuum = self.lastVacuum.map { now - $0 >= .seconds(3600) } ?? true
            if vacuum { self.lastVacuum = now }
            try self.store.compact(vacuum: vacuum)
            self.logger.debug("samples past the retention deleted", metadata: ["count": "\(deleted)"])
        } catch {
            self.logger.error("samples past the retention could not be deleted", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes the shared store's samples recorded before `time` (every proxy does, at most once a minute: the first
    /// deletes, the others find nothing). A store that does not answer is tried again a minute later.
    private static func expireShared(_ shared: any SharedEvidence, before time: Date, logger: Logger) async {
        do {
            let deleted = try await shared.purgeSamples(route: nil, before: time)
            if deleted > 0 {
                logger.debug("shared samples past the retention deleted", metadata: ["count": "\(deleted)"])
            }
        } catch {
            logger.notice(
                "samples past the retention could not be deleted from the shared store", metadata: ["error": "\(error)"]
            )
        }
    }

    private func add(_ observation: ShadowObservation, privacy: PrivacyPolicy, to batch: inout DiffBatch) {
        // Encoded bodies decoded once, here: the comparison, the sample and noise learning all read the content.
        var observation = observation
        observation.monolith = ContentCoding.decoding(observation.monolith)
        observation.service = ContentCoding.decoding(observation.service)
        observation.repeated = observation.repeated.map(ContentCoding.decoding)
        let route = observation.route
        let policy = observation.policy
        let options = DiffOptions(ignore: policy.ignore, arrays: policy.arrays)
        let names = options.headers.map { $0.lowercased() }
        let comparison = ResponseDiffer.compare(
            observation.monolith.snapshot(headers: names), observation.service.snapshot(headers: names),
            options: options)
        let shadowAnswer = observation.servedBy == .monolith ? observation.service : observation.monolith
        if comparison.isStale(versions: policy.version) {
            batch.counts[route, default: RouteCounts()].stale += 1
            self.compared(route, "stale")
            ShadowSpanResult.end(observation.span, result: "stale", status: shadowAnswer.status)
        } else {
            batch.counts[route, default: RouteCounts()].compared += 1
            self.count(comparison, of: observation, privacy: privacy, in: &batch)
            self.compared(route, comparison.isMatch ? "match" : "mismatch")
            ShadowSpanResult.end(
                observation.span, result: comparison.isMatch ? "match" : "mismatch",
                signature: comparison.isMatch ? nil : comparison.signature.id, status: shadowAnswer.status)
        }
        self.learnNoise(from: observation, headers: names, privacy: privacy, in: &batch)
    }

    private func count(
        _ comparison: ResponseComparison, of observation: ShadowObservation, privacy: PrivacyPolicy,
        in batch: inout DiffBatch
    ) {
        let route = observation.route
        if comparison.isMatch {
            batch.counts[route, default: RouteCounts()].matched += 1
        } else {
            batch.counts[route, default: RouteCounts()].mismatched += 1
            let signature = comparison.signature
            // A member named by a person's e-mail (say) is in the signature's patterns: they pass the detectors too.
            var redaction = Redaction(rules: Self.rules(privacy, observation.policy), key: self.key)
            batch.count(signature: signature.id, text: redaction.text(signature.text), on: route)
            for entry in signature.entries {
                batch.count(pointer: redaction.text(entry.pattern), kind: entry.kind, on: route)
            }
            let key = route + " " + signature.id
            // With a shared store the store holds the samples and caps them over every proxy: this proxy counts only
            // what it sent since the counts were last forgotten (once a minute, so that samples the store deleted,
            // by retention or erasure, are collected again).
            let kept: Int
            if let counted = self.sampleCounts[key] {
                kept = counted
            } else if self.shared != nil {
                kept = 0
            } else {
                kept = (try? self.store.sampleCount(route: route, signature: signature.id)) ?? 0
            }
            if kept < self.store.maxSamplesPerSignature {
                self.sampleCounts[key] = kept + 1
                batch.samples.append(
                    Self.sample(observation, comparison: comparison, signature: signature.id, redaction: redaction))
            } else {
                self.sampleCounts[key] = kept
            }
        }
    }

    private func learnNoise(
        from observation: ShadowObservation, headers names: [String], privacy: PrivacyPolicy, in batch: inout DiffBatch
    ) {
        let route = observation.route
        if let repeated = observation.repeated {
            // Two answers of the same side to the same request: whatever differs between them is noise.
            let answered = observation.servedBy == .monolith ? observation.monolith : observation.service
            let noise = ResponseDiffer.compare(
                answered.snapshot(headers: names), repeated.snapshot(headers: names), options: DiffOptions())
            batch.counts[route, default: RouteCounts()].noiseChecks += 1
            if case .json(let result) = noise.body {
                var redaction = Redaction(rules: Self.rules(privacy, observation.policy), key: self.key)
                for pattern in Set(result.differences.map(\.pattern)) {
                    batch.countNoise(at: redaction.text(pattern), on: route)
                }
            }
        }
    }

    // MARK: Samples, with personal data removed

    /// The table's rules and the route's own.
    static func rules(_ privacy: PrivacyPolicy, _ policy: ShadowPolicy) -> RedactionRules {
        RedactionRules(
            defaults: privacy.defaults, fields: privacy.fields + policy.redactFields,
            pointers: privacy.pointers + policy.redact)
    }

    /// The sample as stored: every part redacted (`docs/shadow.md`), with the keyed hashes of what was redacted.
    static func sample(
        _ observation: ShadowObservation, comparison: ResponseComparison, signature: String, redaction: Redaction
    ) -> DiffSample {
        var redaction = redaction
        func stored(_ answer: RawAnswer) -> StoredResponse {
            let fields = answer.fields()
            return StoredResponse(
                status: answer.status, headers: redaction.responseHeaders(fields),
                body: redaction.body(answer.body, headers: fields))
        }
        let requestFields = RawAnswer.fields(of: observation.requestHead)
        let requestHeaders = redaction.requestHeaders(requestFields)
        let requestBody = redaction.body(observation.requestBody, headers: requestFields)
        let path = redaction.path(observation.path)
        let query = observation.query.map { redaction.query($0) }
        let monolith = stored(observation.monolith)
        let service = stored(observation.service)
        let diff = Self.diffJSON(comparison, redaction: &redaction).jsonText
        return DiffSample(
            route: observation.route, signature: signature, recordedAt: Date(), requestID: observation.requestID,
            servedBy: observation.servedBy.rawValue, method: observation.method, path: path, query: query,
            requestHeaders: requestHeaders, requestBody: requestBody, monolith: monolith, service: service, diff: diff,
            subjects: redaction.hashes, traceID: observation.traceID)
    }

    /// The comparison as stored: left is the monolith, right the service; values redacted as in the bodies and headers.
    static func diffJSON(_ comparison: ResponseComparison, redaction: inout Redaction) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if let status = comparison.status {
            members.append(
                (
                    "status",
                    .object([("monolith", .number(Double(status.left))), ("service", .number(Double(status.right)))])
                ))
        }
        if let mediaType = comparison.mediaType {
            members.append(
                ("mediaType", .object([("monolith", .string(mediaType.left)), ("service", .string(mediaType.right))])))
        }
        if !comparison.headers.isEmpty {
            var headers: [JSONValue] = []
            for difference in comparison.headers {
                func value(_ text: String?) -> JSONValue {
                    text.map { .string(redaction.responseHeader(name: difference.name, value: $0)) } ?? .null
                }
                headers.append(
                    .object([
                        ("name", .string(difference.name)), ("monolith", value(difference.left)),
                        ("service", value(difference.right)),
                    ]))
            }
            members.append(("headers", .array(headers)))
        }
        switch comparison.body {
        case .equal:
            break
        case .bytes(let offset, let line):
            members.append(
                (
                    "body",
                    .object([
                        ("kind", .string("bytes")), ("offset", .number(Double(offset))),
                        ("line", line.map { .number(Double($0)) } ?? .null),
                    ])
                ))
        case .json(let result):
            var differences: [JSONValue] = []
            for difference in result.differences {
                differences.append(
                    .object([
                        ("pointer", .string(redaction.text(difference.pointer))),
                        ("kind", .string(difference.kind.rawValue)),
                        ("monolith", difference.left.map { redaction.value($0, at: difference.pointer) } ?? .null),
                        ("service", difference.right.map { redaction.value($0, at: difference.pointer) } ?? .null),
                    ]))
            }
            members.append(
                (
                    "body",
                    .object([
                        ("kind", .string("json")), ("differences", .array(differences)),
                        ("truncated", .bool(result.truncated)),
                    ])
                ))
        }
        return .object(members)
    }
}
