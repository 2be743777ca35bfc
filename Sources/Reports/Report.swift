import ControlPlane
public import DiffStore
public import Foundation
public import JSON
public import RouteTable

/// A diff report: per route, its stage, the evidence the gates judge, what shadow traffic showed (counters, mismatch
/// signatures with samples, pointers, match rate over time), its sync, and the gate verdict of its next move.
///
/// One value, several renderings: its JSON (`json`, the stable schema of `docs/report.schema.json`), `html`,
/// `markdown`, `junit`, and the CLI's terminal text. The CLI reads it from the proxy as JSON (`GET
/// /admin/report?format=json`) and decodes it with `init(json:)`, so every format shows the same thing on both paths.
///
/// ```swift
/// let answer = await operations.report(ReportOptions(selector: "contacts.*"))
/// let report = try Report(json: answer.body)
/// try Report.write(report.markdown, to: "report.md")
/// ```
public struct Report: Sendable, Equatable {
    /// The schema's name and version, first key of the JSON.
    public static let schema = "strangler-report/1"

    /// What the report covers in time.
    public struct Window: Sendable, Equatable {
        /// Signatures last seen, samples recorded and buckets starting from this time; nil for everything kept.
        public var since: Date?
        /// The `--since` text (`1h`), nil without one.
        public var duration: String?
    }

    /// How many routes are in each verdict.
    public struct Summary: Sendable, Equatable {
        public var routes = 0
        public var ready = 0
        public var blocked = 0
        public var eliminated = 0
        public var noService = 0
    }

    /// What samples keep of personal data: the table's `"redact"` defaults and `"retention"`.
    public struct Privacy: Sendable, Equatable {
        /// The default redaction (field names, value detectors, header allow-lists) is on; false with
        /// `"redact": { "defaults": false }`.
        public var redactionDefaults = true
        /// The table's `"retention"` as written; nil when samples are kept until purged.
        public var retention: String?

        /// `Personal data in samples: redacted by default (…); samples kept 30d.`
        public var text: String {
            let redaction =
                self.redactionDefaults
                ? "Personal data in samples: redacted by default (field names, value detectors, header allow-lists)"
                : "Personal data in samples: default redaction is OFF (\"redact\": {\"defaults\": false}), samples may "
                    + "hold personal data"
            return redaction + "; "
                + (self.retention.map { "samples kept \($0)" } ?? "samples kept until purged (no retention)") + "."
        }
    }

    public var generatedAt: Date
    /// Where the data came from: `the proxy at http://127.0.0.1:8090`, `routes.json (no proxy running)`.
    public var source: String
    /// The route table's content hash.
    public var tableHash: String
    public var window: Window
    /// Width of `RouteReport.buckets`, in seconds (minutes, widened so that no route has more than 120 points).
    public var bucketSeconds: Int
    public var routes: [RouteReport]
    public var privacy = Privacy()
    /// Where a trace is shown (`http://jaeger:16686/trace/{traceId}`): samples' trace ids link there; nil: shown only.
    public var traceURL: String?

    /// The link for a trace id (nil without ``traceURL``).
    public func traceLink(_ traceID: String) -> String? {
        self.traceURL.map { $0.replacingOccurrences(of: "{traceId}", with: traceID) }
    }

    public var summary: Summary {
        var summary = Summary()
        summary.routes = self.routes.count
        for route in self.routes {
            switch route.verdict.status {
            case .ready: summary.ready += 1
            case .blocked: summary.blocked += 1
            case .eliminated: summary.eliminated += 1
            case .noService: summary.noService += 1
            }
        }
        return summary
    }

    /// `3 routes: 1 ready to move, 1 blocked, 1 in eliminate`.
    public var summaryText: String {
        let summary = self.summary
        var parts: [String] = []
        if summary.ready > 0 { parts.append("\(summary.ready) ready to move") }
        if summary.blocked > 0 { parts.append("\(summary.blocked) blocked") }
        if summary.eliminated > 0 { parts.append("\(summary.eliminated) in eliminate") }
        if summary.noService > 0 { parts.append("\(summary.noService) without a service") }
        let count = "\(summary.routes) route\(summary.routes == 1 ? "" : "s")"
        return parts.isEmpty ? count : count + ": " + parts.joined(separator: ", ")
    }

    /// Writes `text` to `path` atomically (a temporary file beside it, fsynced, renamed over it).
    public static func write(_ text: String, to path: String) throws {
        try AtomicFile.write(text, to: path)
    }
}

/// One route in a report.
public struct RouteReport: Sendable, Equatable {
    /// What the gates count: comparisons since the route's last stage change.
    public struct Gate: Sendable, Equatable {
        public var compared = 0
        public var matched = 0
        /// Mismatches of triaged signatures: they count as matches for the gate.
        public var explained = 0
        /// The interval's confidence level (the gate policy's `eliminate.confidence`).
        public var confidence = 0.95
        /// The gate's thresholds (`eliminate.minSamples`, `eliminate.minMatchRate`).
        public var minSamples = 0
        public var minMatchRate = 0.0

        public var mismatched: Int { self.compared - self.matched }
        /// Matched of compared; nil without comparisons.
        public var matchRate: Double? { self.compared > 0 ? Double(self.matched) / Double(self.compared) : nil }
        /// The Wilson score interval of the match rate.
        public var interval: (lower: Double, upper: Double)? {
            guard self.compared > 0 else { return nil }
            return (
                Wilson.lowerBound(successes: self.matched, trials: self.compared, confidence: self.confidence),
                Wilson.upperBound(successes: self.matched, trials: self.compared, confidence: self.confidence)
            )
        }
        /// The lower bound the gate judges: explained mismatches counted as matches.
        public var gateLowerBound: Double? {
            guard self.compared > 0 else { return nil }
            return Wilson.lowerBound(
                successes: min(self.compared, self.matched + self.explained), trials: self.compared,
                confidence: self.confidence)
        }
    }

    /// Shadow counters in the report's window (everything kept when it has none).
    @dynamicMemberLookup
    public struct Traffic: Sendable, Equatable {
        /// The counters (`traffic.compared` reads `traffic.counts.compared`).
        public var counts = RouteCounts()
        /// First and last batch of the route ever recorded (not limited by the window).
        public var firstSeen: Date?
        public var lastSeen: Date?

        public init() {}

        public var matchRate: Double? { self.compared > 0 ? Double(self.matched) / Double(self.compared) : nil }

        public subscript(dynamicMember counter: WritableKeyPath<RouteCounts, Int>) -> Int {
            get { self.counts[keyPath: counter] }
            set { self.counts[keyPath: counter] = newValue }
        }
    }

    /// The route's service: health, sync lag, reconcile and reverse sync, as the gates saw them.
    public struct Sync: Sendable, Equatable {
        /// `ok`, why not, or nil when not asked.
        public var health: String?
        /// Events the service has not applied yet; nil when unknown.
        public var lag: Int?
        public var problem: String?
        public var reconcile: RouteEvidence.Reconcile?
        /// `ok`, why not, or nil when not asked (read routes).
        public var reverseSync: String?
        /// What the service declares no probe (or no entity) for: `health`, `syncLag`, `reverseSync`, `entities`.
        public var undeclared: [String] = []

        public init() {}
    }

    /// The gates' verdict on the route's next move.
    public struct Verdict: Sendable, Equatable {
        public enum Status: String, Sendable, CaseIterable {
            /// Its next move passes the gates.
            case ready
            /// Its next move is refused: `reasons` says what is missing.
            case blocked
            /// In eliminate: no move forward left.
            case eliminated
            /// No service: the route stays with the monolith.
            case noService = "no-service"
        }

        public var status: Status
        /// The stage of the next move; nil for `eliminated` and `noService`.
        public var next: String?
        public var reasons: [String]
        /// Gates that did not block because nothing measures them (`no syncLag probe declared for orders`).
        public var notMeasured: [String] = []

        /// The reasons, then each gate not measured as `not measured: …`: what the reports list.
        public var shown: [String] { self.reasons + self.notMeasured.map { "not measured: \($0)" } }

        /// `ready to eliminate`, `not ready to eliminate`, `in eliminate: the service answers alone`, `no service:
        /// stays with the monolith`.
        public var text: String {
            switch self.status {
            case .ready: "ready to \(self.next ?? "?")"
            case .blocked: "not ready to \(self.next ?? "?")"
            case .eliminated: "in eliminate: the service answers alone"
            case .noService: "no service: stays with the monolith"
            }
        }
    }

    /// A latest triage decision.
    public struct Triage: Sendable, Equatable {
        public var decision: String
        public var reason: String
        public var actor: String
        public var at: Date
    }

    /// One kind of difference at one place, as in the signature's text.
    public struct Entry: Sendable, Equatable {
        /// A JSON pointer pattern (`/items/*/email`, `` for the root), `status`, `header NAME` or `body`.
        public var pointer: String
        /// `changed`, `added`, `removed`, `type_changed`.
        public var kind: String
    }

    /// A body as stored: text, bytes that are not UTF-8 (base64), or nothing.
    public enum Body: Sendable, Equatable {
        case none
        case text(String)
        case base64(String)
    }

    /// A request or an answer of a sample.
    public struct Message: Sendable, Equatable {
        /// The answer's status; nil for the request.
        public var status: Int?
        public var headers: [(name: String, value: String)]
        public var body: Body

        public static func == (lhs: Message, rhs: Message) -> Bool {
            lhs.status == rhs.status && lhs.body == rhs.body
                && lhs.headers.map { [$0.name, $0.value] } == rhs.headers.map { [$0.name, $0.value] }
        }
    }

    /// One difference of a sample: where (`status`, `header NAME`, a JSON pointer, `body`), how, and both values.
    public struct Difference: Sendable, Equatable {
        public var at: String
        public var kind: String
        /// The monolith's value (JSON; null both for a JSON null and where the kind says the value is absent).
        public var monolith: JSONValue
        public var service: JSONValue

        /// The service added the value: the monolith has none.
        public var absentFromMonolith: Bool { self.kind == "added" }
        /// The service lacks the value: only the monolith has it.
        public var absentFromService: Bool { self.kind == "removed" }
    }

    /// A mismatch kept as evidence.
    public struct Sample: Sendable, Equatable {
        public var id: Int
        public var recordedAt: Date
        public var requestID: String
        /// The request's trace (32 hex digits), nil for a sample recorded before traces were kept.
        public var traceID: String? = nil
        /// `monolith` or `service`: which side answered the client.
        public var servedBy: String
        public var method: String
        public var path: String
        public var query: String?
        public var request: Message
        public var monolith: Message
        public var service: Message
        public var differences: [Difference]
        /// The body diff stopped before every difference was listed.
        public var truncated: Bool

        /// `GET /contacts/c1?a=1`.
        public var target: String { "\(self.method) \(self.path)\(self.query.map { "?" + $0 } ?? "")" }
    }

    /// A mismatch signature of the route.
    public struct Signature: Sendable, Equatable {
        public var id: String
        public var text: String
        /// Occurrences ever counted.
        public var count: Int
        /// Occurrences since the route's last stage change (what the gates count).
        public var sinceStageChange: Int
        public var firstSeen: Date
        public var lastSeen: Date
        public var entries: [Entry]
        /// The latest decision; nil when untriaged.
        public var triage: Triage?
        /// Samples the store keeps of it (all of them, not only those in the report).
        public var samplesKept: Int
        /// The newest samples, in the window.
        public var samples: [Sample]
    }

    /// A differing pointer pattern and kind, counted over every mismatch.
    public struct Pointer: Sendable, Equatable {
        public var pointer: String
        public var kind: String
        public var count: Int
    }

    /// Counters of one time bucket.
    public struct Bucket: Sendable, Equatable {
        public var start: Date
        public var compared: Int
        public var matched: Int
        public var mismatched: Int

        public var matchRate: Double? { self.compared > 0 ? Double(self.matched) / Double(self.compared) : nil }
    }

    public var id: String
    public var method: String
    public var path: String
    public var service: String?
    public var stage: String
    /// When the route last changed stage; nil when it never did while the diff store existed.
    public var stageSince: Date?
    public var gate: Gate
    public var traffic: Traffic
    public var sync: Sync
    public var verdict: Verdict
    /// Most frequent first, at most the report's limit (`signaturesTotal` says how many there are in the window).
    public var signatures: [Signature]
    public var signaturesTotal: Int
    /// Most frequent first.
    public var pointers: [Pointer]
    /// Oldest first; only buckets with traffic.
    public var buckets: [Bucket]

    /// Signatures without a triage decision.
    public var untriaged: Int { self.signatures.filter { $0.triage == nil }.count }
}

// MARK: Formatting shared by the renderings

extension Report {
    /// `2026-11-27T09:35:31Z`.
    public static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { value.map { $0 < 10 ? "0\($0)" : String($0) } ?? "00" }
        return
            "\(parts.year ?? 0)-\(two(parts.month))-\(two(parts.day))T\(two(parts.hour)):\(two(parts.minute)):"
            + "\(two(parts.second))Z"
    }

    /// Reads `2026-11-27T09:35:31Z`, with or without fractional seconds.
    public static func date(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    /// `99.90%` (never rounded up to 100%), `—` for nil.
    public static func percent(_ share: Double?) -> String {
        share.map { Gates.percent($0) } ?? "—"
    }

    /// `97.00% (95% CI 91.55%–98.97%)`, or `—` without comparisons.
    public static func rateWithInterval(_ gate: RouteReport.Gate) -> String {
        guard let rate = gate.matchRate, let interval = gate.interval else { return "—" }
        return
            "\(Gates.percent(rate)) (\(Gates.percent(gate.confidence, digits: 0)) CI "
            + "\(Gates.percent(interval.lower))–\(Gates.percent(interval.upper)))"
    }

    /// A pointer as shown: `(root)` for the empty pointer.
    public static func place(_ pointer: String) -> String { pointer.isEmpty ? "(root)" : pointer }
}
