import ControlPlane
public import DiffStore
public import Foundation
import JSON
public import RouteTable

/// What a report covers: which routes, which time window, and how much of each route.
public struct ReportOptions: Sendable {
    /// A route id, or a pattern with `*` and `?` (`contacts.*`); nil for every route.
    public var selector: String?
    /// Only the last `window` (signatures last seen, samples, buckets, traffic counters); nil for everything kept.
    public var window: ReportWindow?
    /// Newest samples shown per signature.
    public var samplesPerSignature = 3
    /// Signatures shown per route, most frequent first.
    public var signaturesPerRoute = 20
    /// Differing pointers shown per route.
    public var pointersPerRoute = 10
    /// The report's time (its `generatedAt`; the window ends here).
    public var now: Date
    /// Where a trace is shown, `{traceId}` standing for the id (``Report/traceURL``).
    public var traceURL: String?

    public init(selector: String? = nil, window: ReportWindow? = nil, now: Date = Date()) {
        self.selector = selector
        self.window = window
        self.now = now
    }
}

/// A `--trace-url` template: where a trace is shown, `{traceId}` standing for the id
/// (`http://localhost:16686/trace/{traceId}` for Jaeger).
public enum TraceURLTemplate {
    /// The template when it is one: an http or https URL naming `{traceId}`, without spaces, quotes or angle brackets
    /// (it is written into HTML and Markdown links); else why not.
    public static func check(_ text: String) -> Result<String, TraceURLProblem> {
        let lower = text.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            return .failure(TraceURLProblem(description: "must start with http:// or https://"))
        }
        guard text.contains("{traceId}") else {
            return .failure(TraceURLProblem(description: "must name {traceId}, where the trace id goes"))
        }
        guard
            text.unicodeScalars.allSatisfy({
                $0.value > 0x20 && $0.value < 0x7F && !"<>\"'`\\".unicodeScalars.contains($0)
            })
        else {
            return .failure(TraceURLProblem(description: "must be printable ASCII without spaces, quotes or < >"))
        }
        return .success(text)
    }
}

public struct TraceURLProblem: Error, CustomStringConvertible, Equatable {
    public let description: String
}

/// A `--since` duration: `45s`, `30m`, `1h`, `7d`, `2w`, or a sum such as `1h30m`.
public struct ReportWindow: Sendable, Equatable {
    public var seconds: Int
    /// As written.
    public var text: String

    /// nil when `text` is not a duration (or is zero, or over 400 days).
    public init?(_ text: String) {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400]
        var total = 0
        var digits = ""
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                guard digits.count <= 7 else { return nil }
            } else if let unit = units[character], let value = Int(digits) {
                total += value * unit
                digits = ""
            } else {
                return nil
            }
        }
        guard digits.isEmpty, total > 0, total <= 400 * 86400 else { return nil }
        self.seconds = total
        self.text = text
    }

    public static let help = "a duration such as 45s, 30m, 1h, 7d, 2w or 1h30m"
}

/// Builds a report from the route table, the evidence the gates judge, and the diff store. No network: the evidence
/// is collected before (`EvidenceCollector`), so tests build reports from known values.
public enum ReportBuilder {
    /// The routes a selector names, or why none: 404 `not_found` (an id) or `no_match` (a pattern).
    public static func select(_ selector: String?, in table: RouteTable) -> Result<[Route], ReportSelectionError> {
        guard let selector, !selector.isEmpty else { return .success(table.routes) }
        if RouteOperations.isPattern(selector) {
            let routes = table.routes.filter { RouteOperations.glob(selector, matches: $0.id) }
            return routes.isEmpty
                ? .failure(ReportSelectionError(code: "no_match", message: "no route id matches \"\(selector)\""))
                : .success(routes)
        }
        guard let route = table.route(id: selector) else {
            return .failure(ReportSelectionError(code: "not_found", message: "no route has id \"\(selector)\""))
        }
        return .success([route])
    }

    /// The report of `routes` (of `table`), with each route's evidence.
    public static func build(
        table: RouteTable, tableHash: String, routes: [Route], evidence: [String: RouteEvidence],
        store: any DiffReading, options: ReportOptions, source: String
    ) async throws -> Report {
        let now = Self.second(options.now)
        let since = options.window.map { now.addingTimeInterval(-Double($0.seconds)) }
        let window = Report.Window(since: since, duration: options.window?.text)
        let summary = try await store.summary(route: nil, pointerLimit: 50)
        var counters: [String: JSONValue] = [:]
        for item in summary["routes"]?.arrayValue ?? [] {
            if let id = item["route"]?.stringValue { counters[id] = item }
        }
        let minuteBuckets = try await store.buckets(route: nil, since: since)
        var bucketsByRoute: [String: [TimeBucket]] = [:]
        for bucket in minuteBuckets { bucketsByRoute[bucket.route, default: []].append(bucket) }
        let width = Self.bucketWidth(routes.compactMap { bucketsByRoute[$0.id] }.filter { !$0.isEmpty })
        var reports: [RouteReport] = []
        for route in routes {
            let routeEvidence = evidence[route.id] ?? RouteEvidence()
            reports.append(
                try await Self.route(
                    route, evidence: routeEvidence, policy: table.gates, counters: counters[route.id],
                    buckets: bucketsByRoute[route.id] ?? [],
                    width: width, since: since, store: store, options: options))
        }
        let privacy = Report.Privacy(redactionDefaults: table.privacy.defaults, retention: table.privacy.retentionText)
        var report = Report(
            generatedAt: now, source: source, tableHash: tableHash, window: window, bucketSeconds: width,
            routes: reports, privacy: privacy)
        report.traceURL = options.traceURL
        return report
    }

    static func route(
        _ route: Route, evidence: RouteEvidence, policy: GatePolicy, counters: JSONValue?, buckets: [TimeBucket],
        width: Int, since: Date?, store: any DiffReading,
        options: ReportOptions
    ) async throws -> RouteReport {
        var gate = RouteReport.Gate()
        gate.compared = evidence.compared
        gate.matched = evidence.matched
        gate.explained = evidence.explained
        gate.confidence = policy.eliminate.confidence
        gate.minSamples = policy.eliminate.minSamples
        gate.minMatchRate = policy.eliminate.minMatchRate

        var traffic = RouteReport.Traffic()
        func number(_ key: String) -> Int { Int(counters?[key]?.numberValue ?? 0) }
        traffic.firstSeen = counters?["firstSeen"]?.stringValue.flatMap(Report.date).map(Self.second)
        traffic.lastSeen = counters?["lastSeen"]?.stringValue.flatMap(Report.date).map(Self.second)
        if since == nil {
            traffic.counts = RouteCounts { number($0.name) }
        } else {
            for bucket in buckets { traffic.counts += bucket.counts }
        }

        var sync = RouteReport.Sync()
        sync.health = Self.probe(evidence.health)
        sync.lag = evidence.syncLag
        sync.problem = evidence.syncProblem
        sync.reconcile = evidence.reconcile
        sync.reverseSync = Self.probe(evidence.reverseSync)
        sync.undeclared = evidence.undeclared

        let verdict: RouteReport.Verdict
        if let next = Gates.next(route: route, evidence: evidence, policy: policy) {
            verdict = RouteReport.Verdict(
                status: next.allowed ? .ready : .blocked, next: next.to.rawValue, reasons: next.reasons,
                notMeasured: next.notMeasured)
        } else {
            verdict = RouteReport.Verdict(
                status: route.stage == .eliminate ? .eliminated : .noService, next: nil, reasons: [])
        }

        // Signatures: every one the store counted, those last seen in the window, with the latest triage decision.
        var triage: [String: RouteReport.Triage] = [:]
        for decision in try await store.triageDecisions(route: route.id) {
            guard decision.decision != .reset else {
                triage[decision.signature] = nil
                continue
            }
            triage[decision.signature] = RouteReport.Triage(
                decision: decision.decision.rawValue, reason: decision.reason, actor: decision.actor,
                at: Self.second(decision.decidedAt))
        }
        var sinceStageChange: [String: Int] = [:]
        for signature in evidence.signatures { sinceStageChange[signature.id] = signature.count }
        var signatures: [RouteReport.Signature] = []
        var total = 0
        for item in counters?["signatures"]?.arrayValue ?? [] {
            guard let id = item["id"]?.stringValue, let text = item["signature"]?.stringValue,
                let firstSeen = item["firstSeen"]?.stringValue.flatMap(Report.date),
                let lastSeen = item["lastSeen"]?.stringValue.flatMap(Report.date)
            else { continue }
            if let since, lastSeen < since { continue }
            total += 1
            guard signatures.count < options.signaturesPerRoute else { continue }
            let samples =
                try await store.samples(route: route.id, signature: id, limit: max(1, options.samplesPerSignature))
                .arrayValue
                ?? []
            var kept: [RouteReport.Sample] = []
            for sample in samples.prefix(options.samplesPerSignature) {
                guard let parsed = Self.sample(sample) else { continue }
                if let since, parsed.recordedAt < Self.second(since) { continue }
                kept.append(parsed)
            }
            signatures.append(
                RouteReport.Signature(
                    id: id, text: text, count: Int(item["count"]?.numberValue ?? 0),
                    sinceStageChange: sinceStageChange[id] ?? 0,
                    firstSeen: Self.second(firstSeen), lastSeen: Self.second(lastSeen),
                    entries: RouteOperations.signatureEntries(text).map {
                        RouteReport.Entry(pointer: $0.pattern, kind: $0.kind)
                    }, triage: triage[id],
                    samplesKept: Int(item["samples"]?.numberValue ?? 0), samples: kept))
        }
        let pointers = (counters?["pointers"]?.arrayValue ?? []).prefix(options.pointersPerRoute).compactMap {
            item -> RouteReport.Pointer? in
            guard let pointer = item["pointer"]?.stringValue, let kind = item["kind"]?.stringValue else { return nil }
            return RouteReport.Pointer(pointer: pointer, kind: kind, count: Int(item["count"]?.numberValue ?? 0))
        }

        return RouteReport(
            id: route.id, method: route.method, path: route.path.description, service: route.service,
            stage: route.stage.rawValue,
            stageSince: evidence.since.flatMap(Report.date).map(Self.second), gate: gate, traffic: traffic, sync: sync,
            verdict: verdict,
            signatures: signatures, signaturesTotal: total, pointers: Array(pointers),
            buckets: Self.merge(buckets, width: width))
    }

    static func probe(_ probe: RouteEvidence.Probe) -> String? {
        switch probe {
        case .ok: "ok"
        case .failed(let why): why
        case .notChecked: nil
        }
    }

    /// Whole seconds: what the JSON keeps, so that a report read back from its JSON is the same value.
    static func second(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    /// Minutes, or wider so that no route's span has more than 120 buckets.
    static func bucketWidth(_ routes: [[TimeBucket]]) -> Int {
        let span =
            routes.map { buckets in
                Int((buckets.last!.start.timeIntervalSince1970 - buckets.first!.start.timeIntervalSince1970).rounded())
                    + DiffStore.bucketSeconds
            }.max() ?? 0
        let widths = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
        return widths.first { span <= $0 * 120 } ?? 86400 * ((span / (86400 * 120)) + 1)
    }

    /// Minute buckets summed into `width`-second buckets; buckets without comparisons are left out.
    static func merge(_ buckets: [TimeBucket], width: Int) -> [RouteReport.Bucket] {
        var merged: [RouteReport.Bucket] = []
        for bucket in buckets {
            let start = Date(
                timeIntervalSince1970: (bucket.start.timeIntervalSince1970 / Double(width)).rounded(.down)
                    * Double(width))
            if let last = merged.last, last.start == start {
                merged[merged.count - 1].compared += bucket.counts.compared
                merged[merged.count - 1].matched += bucket.counts.matched
                merged[merged.count - 1].mismatched += bucket.counts.mismatched
            } else {
                merged.append(
                    RouteReport.Bucket(
                        start: start, compared: bucket.counts.compared, matched: bucket.counts.matched,
                        mismatched: bucket.counts.mismatched))
            }
        }
        return merged.filter { $0.compared > 0 }
    }

    /// A sample of `DiffStore.samples`, with its stored diff flattened into differences.
    static func sample(_ item: JSONValue) -> RouteReport.Sample? {
        guard let id = item["id"]?.numberValue, let recordedAt = item["recordedAt"]?.stringValue.flatMap(Report.date),
            let request = item["request"], let method = request["method"]?.stringValue,
            let path = request["path"]?.stringValue
        else { return nil }
        func message(_ value: JSONValue?, status: Bool) -> RouteReport.Message {
            let headers: [(name: String, value: String)] = (value?["headers"]?.arrayValue ?? []).compactMap { pair in
                guard let items = pair.arrayValue, items.count == 2, let name = items[0].stringValue,
                    let text = items[1].stringValue
                else { return nil }
                return (name, text)
            }
            let body: RouteReport.Body =
                switch value?["body"] {
                case .string(let text): .text(text)
                case .object: .base64(value?["body"]?["base64"]?.stringValue ?? "")
                default: .none
                }
            return RouteReport.Message(
                status: status ? Int(value?["status"]?.numberValue ?? 0) : nil, headers: headers, body: body)
        }
        let diff = item["diff"] ?? .null
        var differences: [RouteReport.Difference] = []
        if let status = diff["status"] {
            differences.append(
                RouteReport.Difference(
                    at: "status", kind: "changed", monolith: status["monolith"] ?? .null,
                    service: status["service"] ?? .null))
        }
        for header in diff["headers"]?.arrayValue ?? [] {
            let left = header["monolith"] ?? .null
            let right = header["service"] ?? .null
            let kind = left == .null ? "added" : right == .null ? "removed" : "changed"
            differences.append(
                RouteReport.Difference(
                    at: "header \(header["name"]?.stringValue ?? "?")", kind: kind, monolith: left, service: right))
        }
        var truncated = false
        if let body = diff["body"] {
            if body["kind"]?.stringValue == "bytes" {
                let offset = Int(body["offset"]?.numberValue ?? 0)
                let line = body["line"]?.numberValue.map { ", line \(Int($0))" } ?? ""
                let note: JSONValue = .string("differs from byte \(offset)\(line)")
                differences.append(RouteReport.Difference(at: "body", kind: "changed", monolith: note, service: note))
            } else {
                truncated = body["truncated"]?.boolValue ?? false
                for difference in body["differences"]?.arrayValue ?? [] {
                    differences.append(
                        RouteReport.Difference(
                            at: difference["pointer"]?.stringValue ?? "",
                            kind: difference["kind"]?.stringValue ?? "changed",
                            monolith: difference["monolith"] ?? .null, service: difference["service"] ?? .null))
                }
            }
        }
        return RouteReport.Sample(
            id: Int(id), recordedAt: Self.second(recordedAt), requestID: item["requestId"]?.stringValue ?? "",
            traceID: item["traceId"]?.stringValue,
            servedBy: item["servedBy"]?.stringValue ?? "",
            method: method, path: path, query: request["query"]?.stringValue, request: message(request, status: false),
            monolith: message(item["monolith"], status: true), service: message(item["service"], status: true),
            differences: differences, truncated: truncated)
    }
}

/// A selector that names no route.
public struct ReportSelectionError: Error, Sendable {
    /// `not_found` (an id) or `no_match` (a pattern).
    public var code: String
    public var message: String
}
