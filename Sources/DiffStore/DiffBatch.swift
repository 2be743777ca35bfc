public import Diff
public import Foundation

/// Per-route counters of shadow traffic.
public struct RouteCounts: Sendable, Equatable {
    /// Pairs of answers compared (matched + mismatched).
    public var compared = 0
    public var matched = 0
    public var mismatched = 0
    /// The shadow side failed (refused, reset, malformed answer).
    public var shadowErrors = 0
    /// The shadow side did not answer within the route's shadow timeout.
    public var timeouts = 0
    /// Not compared for want of room: too many shadows in flight (`inFlight`), or too many pairs waiting to be
    /// compared (`overflow`).
    public var dropped = 0
    /// Shadowed (or chosen to be) but not compared: `tooLarge + upgrades + unanswered + earlyAnswers + unhealthy`.
    public var skipped = 0
    /// Of `skipped`: a body over the comparison limit.
    public var tooLarge = 0
    /// Of `skipped`: protocol upgrades (WebSocket), which go to the answering side only.
    public var upgrades = 0
    /// Of `skipped`: the answering side failed, or the client went away.
    public var unanswered = 0
    /// Of `skipped`: the answer came before the request's body ended, so the shadow never went out.
    public var earlyAnswers = 0
    /// Of `skipped`: no instance of the shadow side was available (all unhealthy or ejected).
    public var unhealthy = 0
    /// Of `dropped`: too many shadows in flight.
    public var inFlight = 0
    /// Of `dropped`: too many pairs waiting to be compared.
    public var overflow = 0
    /// Answers asked twice of the answering side to learn noise.
    public var noiseChecks = 0
    /// Pairs that differed in a record's version: one side had not applied the latest change yet (sync lag).
    /// Neither matched nor mismatched, and not in `compared`.
    public var stale = 0

    public init() {}

    /// One counter: its name in JSON (`shadowErrors`), its column in the store (`shadow_errors`), and where it is.
    public struct Counter: Sendable {
        public let name: String
        public let column: String
        public let keyPath: any WritableKeyPath<RouteCounts, Int> & Sendable
    }

    /// Every counter, in the order the report's JSON lists them.
    public static let counters: [Counter] = [
        Counter(name: "compared", column: "compared", keyPath: \.compared),
        Counter(name: "matched", column: "matched", keyPath: \.matched),
        Counter(name: "mismatched", column: "mismatched", keyPath: \.mismatched),
        Counter(name: "shadowErrors", column: "shadow_errors", keyPath: \.shadowErrors),
        Counter(name: "timeouts", column: "timeouts", keyPath: \.timeouts),
        Counter(name: "dropped", column: "dropped", keyPath: \.dropped),
        Counter(name: "skipped", column: "skipped", keyPath: \.skipped),
        Counter(name: "stale", column: "stale", keyPath: \.stale),
        Counter(name: "noiseChecks", column: "noise_checks", keyPath: \.noiseChecks),
        Counter(name: "tooLarge", column: "too_large", keyPath: \.tooLarge),
        Counter(name: "upgrades", column: "upgrades", keyPath: \.upgrades),
        Counter(name: "unanswered", column: "unanswered", keyPath: \.unanswered),
        Counter(name: "earlyAnswers", column: "early_answers", keyPath: \.earlyAnswers),
        Counter(name: "inFlight", column: "in_flight", keyPath: \.inFlight),
        Counter(name: "overflow", column: "overflow", keyPath: \.overflow),
        Counter(name: "unhealthy", column: "unhealthy", keyPath: \.unhealthy),
    ]

    /// The counters added after the store's first schema (`v6-skip-reasons`): a column each in `route_counters` and
    /// `route_buckets`.
    public static let reasonColumns = ["too_large", "upgrades", "unanswered", "early_answers", "in_flight", "overflow"]
    /// Added by `v7-unhealthy`.
    public static let healthColumns = ["unhealthy"]
    /// Every reason a shadow was not compared, by its column.
    public static let notComparedColumns = reasonColumns + healthColumns

    /// Each reason a shadow was not compared (`too-large`, `upgrade`, …) with its count, those counted only.
    public var notCompared: [(reason: String, count: Int)] {
        [
            ("too-large", self.tooLarge), ("upgrade", self.upgrades), ("unanswered", self.unanswered),
            ("early-answer", self.earlyAnswers), ("in-flight", self.inFlight), ("overflow", self.overflow),
            ("unhealthy", self.unhealthy),
        ].filter { $0.1 > 0 }
    }

    /// The counts with each counter's value from `value` (given the counter).
    public init<Failure: Error>(_ value: (Counter) throws(Failure) -> Int) throws(Failure) {
        for counter in Self.counters { self[keyPath: counter.keyPath] = try value(counter) }
    }

    public static func += (lhs: inout RouteCounts, rhs: RouteCounts) {
        for counter in Self.counters { lhs[keyPath: counter.keyPath] += rhs[keyPath: counter.keyPath] }
    }
}

/// One answer as stored in a sample: the diff engine's snapshot, its headers and body already cleared of personal data.
public typealias StoredResponse = ResponseSnapshot

/// A mismatch kept as evidence: the request, both answers, and the diff (JSON text).
public struct DiffSample: Sendable {
    public var route: String
    /// The signature's id.
    public var signature: String
    public var recordedAt: Date
    public var requestID: String
    /// The trace the request belongs to (32 hex digits of its `traceparent`), when known.
    public var traceID: String?
    /// `monolith` or `service`: which side answered the client.
    public var servedBy: String
    public var method: String
    public var path: String
    public var query: String?
    public var requestHeaders: [(name: String, value: String)]
    public var requestBody: [UInt8]
    public var monolith: StoredResponse
    public var service: StoredResponse
    public var diff: String
    /// The keyed hashes of the values redacted from this sample (found again by `DiffStore.purge(subjectHash:)`).
    public var subjects: Set<String>

    public init(
        route: String, signature: String, recordedAt: Date, requestID: String, servedBy: String, method: String,
        path: String, query: String?,
        requestHeaders: [(name: String, value: String)], requestBody: [UInt8], monolith: StoredResponse,
        service: StoredResponse, diff: String,
        subjects: Set<String> = [], traceID: String? = nil
    ) {
        self.traceID = traceID
        self.route = route
        self.signature = signature
        self.recordedAt = recordedAt
        self.requestID = requestID
        self.servedBy = servedBy
        self.method = method
        self.path = path
        self.query = query
        self.requestHeaders = requestHeaders
        self.requestBody = requestBody
        self.monolith = monolith
        self.service = service
        self.diff = diff
        self.subjects = subjects
    }
}

/// What the recorder hands to the store at once: added counts, and samples.
public struct DiffBatch: Sendable {
    public struct SignatureKey: Hashable, Sendable {
        public var route: String
        public var id: String
        public var text: String
    }

    public struct PointerKey: Hashable, Sendable {
        public var route: String
        public var pointer: String
        public var kind: String

        public init(route: String, pointer: String, kind: String) {
            self.route = route
            self.pointer = pointer
            self.kind = kind
        }
    }

    public struct NoiseKey: Hashable, Sendable {
        public var route: String
        public var pointer: String

        public init(route: String, pointer: String) {
            self.route = route
            self.pointer = pointer
        }
    }

    /// A route's minute (its first second since 1970).
    public struct MinuteKey: Hashable, Sendable {
        public var route: String
        public var start: Int

        public init(route: String, start: Int) {
            self.route = route
            self.start = start
        }
    }

    /// Seconds since 1970 of the batch (first/last seen).
    public var time: Double
    public var counts: [String: RouteCounts] = [:]
    public var signatures: [SignatureKey: Int] = [:]
    public var pointers: [PointerKey: Int] = [:]
    public var noise: [NoiseKey: Int] = [:]
    public var samples: [DiffSample] = []
    /// The counts by route and minute when they span several minutes (batches merged while the shared store was
    /// away): the shared store's minute buckets take these instead of `counts` at `time`.
    public var minutes: [MinuteKey: RouteCounts] = [:]

    public init(time: Date = Date()) {
        self.time = time.timeIntervalSince1970
    }

    /// Counts `occurrences` of a signature (redacted text) on `route`.
    public mutating func count(signature id: String, text: String, on route: String, occurrences: Int = 1) {
        self.signatures[SignatureKey(route: route, id: id, text: text), default: 0] += occurrences
    }

    /// Counts one differing pointer pattern (redacted) and kind on `route`.
    public mutating func count(pointer: String, kind: String, on route: String) {
        self.pointers[PointerKey(route: route, pointer: pointer, kind: kind), default: 0] += 1
    }

    /// Counts one repeat of the answering side in which `pointer` (redacted) differed: noise.
    public mutating func countNoise(at pointer: String, on route: String) {
        self.noise[NoiseKey(route: route, pointer: pointer), default: 0] += 1
    }

    public var isEmpty: Bool {
        self.counts.isEmpty && self.signatures.isEmpty && self.pointers.isEmpty && self.noise.isEmpty
            && self.samples.isEmpty
    }
}
