import Diff
public import Foundation
public import JSON

/// Where the evidence of shadow traffic is read: a proxy's own diff store (SQLite, the default) or the shared store
/// every proxy of a `--store` writes to (PostgreSQL). The admin API (`/admin/diffs`, `/admin/diffs/samples`,
/// `/admin/noise`), reports, fixtures and the review of a rule change read through it, so that they show the same
/// whichever holds the evidence.
///
/// ```swift
/// let reader: any DiffReading = shared ?? diffStore
/// let summary = try await reader.summary(route: "orders.get", pointerLimit: 50)   // GET /admin/diffs
/// ```
public protocol DiffReading: Sendable {
    /// Counters of every route (or one), with signatures by count and the most frequent pointers: the body of
    /// `GET /admin/diffs`.
    func summary(route: String?, pointerLimit: Int) async throws -> JSONValue
    /// The samples kept for a route (and signature), newest first.
    func samples(route: String, signature: String?, limit: Int) async throws -> JSONValue
    /// The noise checks of a route, and the pointers that differed between two answers of the same side.
    func noise(route: String) async throws -> (checks: Int, pointers: [(pointer: String, count: Int)])
    /// The minute buckets of a route (or every route), oldest first; those overlapping `since` and later when given.
    func buckets(route: String?, since: Date?) async throws -> [TimeBucket]
    /// A route's triage decisions (or every route's), oldest first.
    func triageDecisions(route: String?) async throws -> [TriageDecision]
    /// Every kept sample of a route as its two stored answers, oldest first.
    func storedPairs(route: String) async throws -> [DiffStore.StoredPair]
}

/// What a review of a rule change reads and writes (``DiffReading`` plus the epoch and triage).
public protocol ReviewEvidence: DiffReading {
    func epochCounts(route: String) async throws -> EpochCounts
    func recordTriage(_ decision: TriageDecision) async throws
}

extension DiffStore: ReviewEvidence {}

/// One route of a summary as read from a store, whichever: its JSON is ``json``.
public struct SummaryRoute: Sendable {
    public struct Signature: Sendable {
        public var id: String
        public var text: String
        public var count: Int
        public var samples: Int
        public var firstSeen: Double
        public var lastSeen: Double

        public init(id: String, text: String, count: Int, samples: Int, firstSeen: Double, lastSeen: Double) {
            self.id = id
            self.text = text
            self.count = count
            self.samples = samples
            self.firstSeen = firstSeen
            self.lastSeen = lastSeen
        }
    }

    public struct Pointer: Sendable {
        public var pointer: String
        public var kind: String
        public var count: Int

        public init(pointer: String, kind: String, count: Int) {
            self.pointer = pointer
            self.kind = kind
            self.count = count
        }
    }

    public var route: String
    public var counts: RouteCounts
    public var firstSeen: Double
    public var lastSeen: Double
    public var signatures: [Signature] = []
    public var pointers: [Pointer] = []

    public init(route: String, counts: RouteCounts, firstSeen: Double, lastSeen: Double) {
        self.route = route
        self.counts = counts
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }

    /// `{"route", "compared", "matched", "mismatched", "matchRate", …, "signatures", "pointers"}`.
    public var json: JSONValue {
        let counts = self.counts
        var members: [(key: String, value: JSONValue)] = [
            ("route", .string(self.route)),
            ("compared", .number(Double(counts.compared))),
            ("matched", .number(Double(counts.matched))),
            ("mismatched", .number(Double(counts.mismatched))),
            (
                "matchRate",
                counts.compared > 0
                    ? .number((Double(counts.matched) / Double(counts.compared) * 10000).rounded() / 10000) : .null
            ),
            ("shadowErrors", .number(Double(counts.shadowErrors))),
            ("timeouts", .number(Double(counts.timeouts))),
            ("dropped", .number(Double(counts.dropped))),
            ("skipped", .number(Double(counts.skipped))),
            ("noiseChecks", .number(Double(counts.noiseChecks))),
            ("stale", .number(Double(counts.stale))),
        ]
        for counter in RouteCounts.counters where RouteCounts.notComparedColumns.contains(counter.column) {
            members.append((counter.name, .number(Double(counts[keyPath: counter.keyPath]))))
        }
        members += Self.seen(self.firstSeen, self.lastSeen)
        members.append(
            (
                "signatures",
                .array(
                    self.signatures.map { signature in
                        .object(
                            [
                                ("id", .string(signature.id)),
                                ("signature", .string(signature.text)),
                                ("count", .number(Double(signature.count))),
                                ("samples", .number(Double(signature.samples))),
                            ] + Self.seen(signature.firstSeen, signature.lastSeen))
                    })
            ))
        members.append(
            (
                "pointers",
                .array(
                    self.pointers.map {
                        .object([
                            ("pointer", .string($0.pointer)), ("kind", .string($0.kind)),
                            ("count", .number(Double($0.count))),
                        ])
                    })
            ))
        return .object(members)
    }

    /// The body of `GET /admin/diffs`: `{"routes": [...]}`.
    public static func json(_ routes: [SummaryRoute]) -> JSONValue {
        .object([("routes", .array(routes.map(\.json)))])
    }

    private static func seen(_ first: Double, _ last: Double) -> [(key: String, value: JSONValue)] {
        [("firstSeen", .string(DiffStore.timestamp(first))), ("lastSeen", .string(DiffStore.timestamp(last)))]
    }
}

/// A kept sample as read from a store, whichever: its JSON is ``json``, its two answers ``pair``.
public struct StoredSample: Sendable {
    /// One stored answer: headers as their JSON text (`[["name","value"],…]`), the body as stored.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: String
        public var body: Data

        public init(status: Int, headers: String, body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        var json: JSONValue {
            .object([
                ("status", .number(Double(self.status))),
                ("headers", DiffStore.headersJSON(self.headers)),
                ("body", DiffStore.bodyJSON(self.body)),
            ])
        }

        var response: StoredResponse {
            let headers = (DiffStore.headersJSON(self.headers).arrayValue ?? []).compactMap {
                pair -> (name: String, value: String)? in
                guard let fields = pair.arrayValue, fields.count == 2, let name = fields[0].stringValue,
                    let value = fields[1].stringValue
                else { return nil }
                return (name, value)
            }
            return StoredResponse(status: self.status, headers: headers, body: Array(self.body))
        }
    }

    public var id: Int64
    public var route: String
    public var signature: String
    public var recordedAt: Double
    public var requestID: String
    public var traceID: String?
    public var servedBy: String
    public var method: String
    public var path: String
    public var query: String?
    public var requestHeaders: String
    public var requestBody: Data
    public var monolith: Answer
    public var service: Answer
    public var diff: String

    public init(
        id: Int64, route: String, signature: String, recordedAt: Double, requestID: String, servedBy: String,
        method: String, path: String, query: String?, requestHeaders: String, requestBody: Data, monolith: Answer,
        service: Answer, diff: String, traceID: String? = nil
    ) {
        self.traceID = traceID
        self.id = id
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
    }

    /// One item of `GET /admin/diffs/samples` (bodies as text when UTF-8).
    public var json: JSONValue {
        let request: [(key: String, value: JSONValue)] = [
            ("method", .string(self.method)),
            ("path", .string(self.path)),
            ("query", self.query.map(JSONValue.string) ?? .null),
            ("headers", DiffStore.headersJSON(self.requestHeaders)),
            ("body", DiffStore.bodyJSON(self.requestBody)),
        ]
        return .object([
            ("id", .number(Double(self.id))),
            ("route", .string(self.route)),
            ("signature", .string(self.signature)),
            ("recordedAt", .string(DiffStore.timestamp(self.recordedAt))),
            ("requestId", .string(self.requestID)),
            ("traceId", self.traceID.map(JSONValue.string) ?? .null),
            ("servedBy", .string(self.servedBy)),
            ("request", .object(request)),
            ("monolith", self.monolith.json),
            ("service", self.service.json),
            ("diff", (try? JSONParser.parse(self.diff)) ?? .null),
        ])
    }

    /// The two answers, as a rule change compares them again.
    public var pair: DiffStore.StoredPair {
        DiffStore.StoredPair(
            signature: self.signature, monolith: self.monolith.response, service: self.service.response)
    }

    /// The sample to store again (`strangler store import|export`), with the hashes of what was redacted from it.
    public func diffSample(subjects: Set<String>) -> DiffSample {
        let request = Answer(status: 0, headers: self.requestHeaders, body: self.requestBody).response
        return DiffSample(
            route: self.route, signature: self.signature, recordedAt: Date(timeIntervalSince1970: self.recordedAt),
            requestID: self.requestID, servedBy: self.servedBy, method: self.method, path: self.path,
            query: self.query, requestHeaders: request.headers, requestBody: request.body,
            monolith: self.monolith.response, service: self.service.response, diff: self.diff, subjects: subjects,
            traceID: self.traceID)
    }

    /// A sample to store, as its stored form (headers as JSON text): what goes into either store.
    public init(_ sample: DiffSample, id: Int64 = 0) {
        self.init(
            id: id, route: sample.route, signature: sample.signature,
            recordedAt: sample.recordedAt.timeIntervalSince1970, requestID: sample.requestID,
            servedBy: sample.servedBy, method: sample.method, path: sample.path, query: sample.query,
            requestHeaders: DiffStore.headersText(sample.requestHeaders), requestBody: Data(sample.requestBody),
            monolith: Answer(
                status: sample.monolith.status, headers: DiffStore.headersText(sample.monolith.headers),
                body: Data(sample.monolith.body)),
            service: Answer(
                status: sample.service.status, headers: DiffStore.headersText(sample.service.headers),
                body: Data(sample.service.body)),
            diff: sample.diff, traceID: sample.traceID)
    }
}
