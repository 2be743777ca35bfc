import AdminAPI
import ControlPlane
import Foundation
import JSON
import Logging
import NIOConcurrencyHelpers
import Proxy
import RouteTable
import ServiceLifecycle

/// The live dashboard's state and its viewers (`GET /dashboard/events`): every route's stage and traffic, the evidence
/// the gates judge, each service's sync and instances, the last changes and the alerts. A viewer gets the whole state
/// first, then only the rows that changed.
///
/// Three clocks: the table is looked at every 100 ms (a stage flip is pushed at once), the traffic totals every
/// second (requests per second over 10 s, errors and percentiles over 60 s, per side), and the evidence
/// (`RouteOperations.evidence`: the diff store, the services' health and sync) every `evidenceInterval`, beside the
/// others. Nothing is computed while no one watches, but a reading of the traffic totals every 5 s for the windows.
final class DashboardHub: Service, DashboardFeed {
    struct Side: Equatable {
        var rps: Double
        var shadowRps: Double
        var err: Double?
        var p50: Double?
        var p99: Double?

        var json: JSONValue {
            .object([
                ("rps", .number(Self.rounded(self.rps))), ("shadowRps", .number(Self.rounded(self.shadowRps))),
                ("err", self.err.map { .number(Self.rounded($0, 4)) } ?? .null),
                ("p50", self.p50.map { .number($0) } ?? .null), ("p99", self.p99.map { .number($0) } ?? .null),
            ])
        }

        static func rounded(_ value: Double, _ digits: Double = 1) -> Double {
            let scale = pow(10, digits)
            return (value * scale).rounded() / scale
        }
    }

    struct Row: Equatable {
        var id: String
        var method: String
        var path: String
        var stage: String
        var service: String?
        var monolith: Side?
        var serviceSide: Side?
        var match: Double?
        var compared = 0
        var untriaged = 0
        var verdict = "…"
        var reason: String?

        var json: JSONValue {
            .object([
                ("id", .string(self.id)), ("method", .string(self.method)), ("path", .string(self.path)),
                ("stage", .string(self.stage)), ("service", self.service.map(JSONValue.string) ?? .null),
                (
                    "sides",
                    .object([
                        ("monolith", self.monolith?.json ?? .null), ("service", self.serviceSide?.json ?? .null),
                    ])
                ),
                ("match", self.match.map { .number(Side.rounded($0, 4)) } ?? .null),
                ("compared", .number(Double(self.compared))), ("untriaged", .number(Double(self.untriaged))),
                ("verdict", .string(self.verdict)), ("reason", self.reason.map(JSONValue.string) ?? .null),
            ])
        }
    }

    private struct Viewers {
        var next = 0
        var continuations: [Int: AsyncStream<DashboardEvent>.Continuation] = [:]
        var closed = false
    }

    private struct Sent {
        var version = -1
        var rows: [String: Row] = [:]
        var services: JSONValue = .null
        var changes: JSONValue = .null
        var alerts: JSONValue = .null
    }

    /// What the evidence loop found last.
    private struct Evidence {
        var standings: [String: RouteStanding] = [:]
        var services: JSONValue = .array([])
        var changes: JSONValue = .array([])
        var alerts: JSONValue = .array([])
    }

    private let store: RouteTableStore
    private let traffic: RouteTraffic
    private let operations: RouteOperations
    private let upstreams: @Sendable () -> JSONValue
    private let evidenceInterval: Duration
    private let logger: Logger
    private let viewers = NIOLockedValueBox(Viewers())
    private let sent = NIOLockedValueBox(Sent())
    private let evidence = NIOLockedValueBox(Evidence())
    /// Readings of the traffic totals, oldest first (every 5 s, 65 s of them).
    private let readings = NIOLockedValueBox<
        [(at: ContinuousClock.Instant, totals: [RouteTraffic.Key: TrafficCell.Totals])]
    >([])
    /// The match counts and sync lags of the last evidence readings, for the alerts.
    private let history = NIOLockedValueBox(AlertHistory())

    init(
        store: RouteTableStore, traffic: RouteTraffic, operations: RouteOperations,
        upstreams: @escaping @Sendable () -> JSONValue, evidenceInterval: Duration = .seconds(5), logger: Logger
    ) {
        self.store = store
        self.traffic = traffic
        self.operations = operations
        self.upstreams = upstreams
        self.evidenceInterval = evidenceInterval
        self.logger = logger
    }

    // MARK: Viewers

    func subscribe() -> AsyncStream<DashboardEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: DashboardEvent.self, bufferingPolicy: .bufferingNewest(64))
        // Under the push lock: what changed is sent to those watching already, then the new viewer is registered
        // and gets the state they now have, so that no change falls between a snapshot and the next push.
        self.pushing.withLockedValue { _ in
            if self.watched {
                self.pushRoutes()
                self.pushLists()
            }
            let id: Int? = self.viewers.withLockedValue { viewers in
                guard !viewers.closed else { return nil }
                let id = viewers.next
                viewers.next += 1
                viewers.continuations[id] = continuation
                return id
            }
            guard let id else {
                continuation.finish()
                return
            }
            continuation.onTermination = { [viewers] _ in
                _ = viewers.withLockedValue { $0.continuations.removeValue(forKey: id) }
            }
            continuation.yield(self.snapshotEvent())
        }
        return stream
    }

    /// Held while changes are worked out and sent (and while a viewer joins).
    private let pushing = NIOLockedValueBox(())

    private var watched: Bool { self.viewers.withLockedValue { !$0.continuations.isEmpty } }

    private func broadcast(_ event: DashboardEvent) {
        let continuations = self.viewers.withLockedValue { $0.continuations }
        for (id, continuation) in continuations {
            // A viewer too slow to take its events would miss some: its stream ends, and its browser reconnects
            // (and gets a snapshot).
            if case .dropped = continuation.yield(event) {
                continuation.finish()
                _ = self.viewers.withLockedValue { $0.continuations.removeValue(forKey: id) }
            }
        }
    }

    // MARK: Running

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tableAndTraffic() }
            group.addTask { await self.evidenceLoop() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        // The viewers' streams end, so that the admin API's graceful shutdown does not wait for them.
        let continuations = self.viewers.withLockedValue { viewers in
            viewers.closed = true
            defer { viewers.continuations = [:] }
            return Array(viewers.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }

    private func tableAndTraffic() async {
        var tick = 0
        let clock = ContinuousClock()
        while !Task.isCancelled {
            if tick % 50 == 0 { self.read() }
            if self.watched {
                let version = self.store.snapshot.version
                let versionChanged = self.sent.withLockedValue { $0.version } != version
                self.pushing.withLockedValue { _ in
                    if versionChanged || tick % 10 == 0 { self.pushRoutes() }
                    if tick % 10 == 0 { self.pushLists() }
                    if tick % 150 == 0 { self.broadcast(DashboardEvent.keepAlive) }
                }
            }
            tick += 1
            try? await clock.sleep(for: .milliseconds(100))
        }
    }

    private func evidenceLoop() async {
        let clock = ContinuousClock()
        var lastVersion = -1
        var last = clock.now - self.evidenceInterval
        while !Task.isCancelled {
            let version = self.store.snapshot.version
            if self.watched, version != lastVersion || clock.now - last >= self.evidenceInterval {
                lastVersion = version
                last = clock.now
                await self.readEvidence()
            }
            try? await clock.sleep(for: .milliseconds(200))
        }
    }

    /// Keeps a reading of the traffic totals (every 5 s, for 65 s).
    private func read() {
        let now = ContinuousClock.now
        let totals = self.traffic.snapshot()
        self.readings.withLockedValue { readings in
            readings.append((now, totals))
            while let first = readings.first, now - first.at > .seconds(66) { readings.removeFirst() }
        }
    }

    // MARK: State

    /// Every route's row now: the table's routes, their traffic, their last evidence.
    func rows() -> [Row] {
        let table = self.store.snapshot.table
        let now = ContinuousClock.now
        let current = self.traffic.snapshot()
        let readings = self.readings.withLockedValue { $0 }
        // Rates over the last 10 s (the newest reading at least 5 s old), errors and percentiles over the last 60 s.
        let rateBase = readings.last { now - $0.at >= .seconds(5) } ?? readings.first
        let windowBase = readings.first { now - $0.at <= .seconds(65) } ?? readings.first
        let standings = self.evidence.withLockedValue { $0.standings }
        return table.routes.map { route in
            func side(_ name: String) -> Side? {
                let answered = RouteTraffic.Key(route: route.id, side: name, shadow: false)
                let shadowed = RouteTraffic.Key(route: route.id, side: name, shadow: true)
                guard current[answered] != nil || current[shadowed] != nil else { return nil }
                func since(
                    _ key: RouteTraffic.Key,
                    _ base: (at: ContinuousClock.Instant, totals: [RouteTraffic.Key: TrafficCell.Totals])?
                ) -> (TrafficCell.Totals, Double) {
                    let now = current[key] ?? TrafficCell.Totals()
                    guard let base else { return (now, 1) }
                    let age = (ContinuousClock.now - base.at).components
                    let seconds = Double(age.seconds) + Double(age.attoseconds) / 1e18
                    return (now.since(base.totals[key] ?? TrafficCell.Totals()), max(1, seconds))
                }
                let (answers, rateSeconds) = since(answered, rateBase)
                let (shadows, _) = since(shadowed, rateBase)
                var (window, _) = since(answered, windowBase)
                let (shadowWindow, _) = since(shadowed, windowBase)
                window.answers += shadowWindow.answers
                window.errors += shadowWindow.errors
                window.buckets = zip(window.buckets, shadowWindow.buckets).map { $0 + $1 }
                return Side(
                    rps: Double(answers.answers) / rateSeconds, shadowRps: Double(shadows.answers) / rateSeconds,
                    err: window.answers > 0 ? Double(window.errors) / Double(window.answers) : nil,
                    p50: window.quantile(0.5), p99: window.quantile(0.99))
            }
            var row = Row(
                id: route.id, method: route.method, path: route.path.description, stage: route.stage.rawValue,
                service: route.service, monolith: side("monolith"), serviceSide: side("service"))
            if let standing = standings[route.id] {
                row.match = standing.matchRate
                row.compared = standing.evidence.compared
                row.untriaged = standing.evidence.signatures.filter { $0.decision == nil }.count
                if let next = standing.next {
                    row.verdict = next.allowed ? "ready" : "blocked"
                    row.reason = next.allowed ? "to \(next.to.rawValue)" : next.reasons.first
                } else {
                    row.verdict = route.stage == .eliminate ? "eliminated" : "no service"
                }
            }
            return row
        }
    }

    /// The state the viewers have now (``Sent``, as the last pushes left it; made now for the first viewer).
    private func snapshotEvent() -> DashboardEvent {
        let table = self.store.snapshot.table
        let sent = self.sent.withLockedValue { sent -> Sent in
            if sent.version < 0 {
                // No viewer yet: everything is worked out now.
                let evidence = self.evidence.withLockedValue { $0 }
                sent.version = self.store.snapshot.version
                sent.rows = Dictionary(self.rows().map { ($0.id, $0) }, uniquingKeysWith: { $1 })
                sent.services = evidence.services
                sent.changes = evidence.changes
                sent.alerts = evidence.alerts
            }
            return sent
        }
        let rows = table.routes.compactMap { sent.rows[$0.id] }
        func list(_ value: JSONValue) -> JSONValue { value == .null ? .array([]) : value }
        let state = JSONValue.object([
            ("version", .number(Double(sent.version))), ("at", .string(Self.timestamp(Date()))),
            ("routes", .array(rows.map(\.json))), ("services", list(sent.services)), ("changes", list(sent.changes)),
            ("alerts", list(sent.alerts)),
        ])
        return DashboardEvent(name: "snapshot", data: state.jsonText)
    }

    /// Sends the rows that changed since last sent (and the ids of routes that left the table).
    private func pushRoutes() {
        let rows = self.rows()
        let version = self.store.snapshot.version
        let (changed, removed) = self.sent.withLockedValue { sent -> ([Row], [String]) in
            var changed: [Row] = []
            var ids = Set<String>()
            for row in rows {
                ids.insert(row.id)
                if sent.rows[row.id] != row {
                    changed.append(row)
                    sent.rows[row.id] = row
                }
            }
            let removed = sent.rows.keys.filter { !ids.contains($0) }.sorted()
            for id in removed { sent.rows[id] = nil }
            let versionChanged = sent.version != version
            sent.version = version
            return changed.isEmpty && removed.isEmpty && !versionChanged ? ([], []) : (changed, removed)
        }
        guard !changed.isEmpty || !removed.isEmpty else { return }
        self.broadcast(
            DashboardEvent(
                name: "routes",
                data: JSONValue.object([
                    ("version", .number(Double(version))), ("rows", .array(changed.map(\.json))),
                    ("removed", .array(removed.map(JSONValue.string))),
                ]).jsonText))
    }

    /// Sends the services, the changes and the alerts when they changed.
    private func pushLists() {
        let evidence = self.evidence.withLockedValue { $0 }
        let due = self.sent.withLockedValue { sent -> [DashboardEvent] in
            var events: [DashboardEvent] = []
            if sent.services != evidence.services {
                sent.services = evidence.services
                events.append(DashboardEvent(name: "services", data: evidence.services.jsonText))
            }
            if sent.changes != evidence.changes {
                sent.changes = evidence.changes
                events.append(DashboardEvent(name: "changes", data: evidence.changes.jsonText))
            }
            if sent.alerts != evidence.alerts {
                sent.alerts = evidence.alerts
                events.append(DashboardEvent(name: "alerts", data: evidence.alerts.jsonText))
            }
            return events
        }
        for event in due { self.broadcast(event) }
    }

    // MARK: Evidence

    private func readEvidence() async {
        let table = self.store.snapshot.table
        var standings: [String: RouteStanding] = [:]
        do {
            for standing in try await self.operations.evidence().routes { standings[standing.id] = standing }
        } catch {
            self.logger.debug("dashboard: the evidence could not be read", metadata: ["error": "\(error)"])
        }
        let services = self.services(table: table, standings: standings)
        var changes: [JSONValue] = []
        if let page = try? await self.operations.history(limit: 20) {
            changes = page.entries.map { entry in
                var routes = entry.changes.map { "\($0.route) \($0.from.rawValue) → \($0.to.rawValue)" }
                if routes.isEmpty, let route = entry.route { routes = [route] }
                if routes.isEmpty { routes = entry.routes }
                return .object([
                    ("time", entry.time.map(JSONValue.string) ?? .null),
                    ("actor", entry.actor.map(JSONValue.string) ?? .null),
                    ("action", .string((entry.action ?? "?") + (entry.forced ? " (forced)" : ""))),
                    ("routes", .array(routes.map(JSONValue.string))),
                    ("reason", entry.reason.map(JSONValue.string) ?? .null),
                ])
            }
        }
        let alerts = self.history.withLockedValue { history in
            history.alerts(table: table, standings: standings, now: ContinuousClock.now)
        }
        self.evidence.withLockedValue { evidence in
            evidence.standings = standings
            evidence.services = services
            evidence.changes = .array(changes)
            evidence.alerts = .array(alerts.map(\.json))
        }
    }

    /// Per upstream group (the monolith and each service): its health and sync as the gates saw them, and its
    /// instances as the data plane sees them.
    private func services(table: RouteTable, standings: [String: RouteStanding]) -> JSONValue {
        var evidenceByService: [String: RouteEvidence] = [:]
        for standing in standings.values {
            if let service = standing.service, evidenceByService[service] == nil {
                evidenceByService[service] = standing.evidence
            }
        }
        var items: [JSONValue] = []
        for group in self.upstreams().arrayValue ?? [] {
            guard let name = group["name"]?.stringValue else { continue }
            let evidence = evidenceByService[name]
            let health: String =
                switch evidence?.health {
                case .ok: "ok"
                case .failed(let why): "failed: \(why)"
                case .notChecked, nil: "not checked"
                }
            let instances: [JSONValue] = (group["instances"]?.arrayValue ?? []).map { instance in
                .object([
                    ("url", instance["url"] ?? .null), ("healthy", instance["healthy"] ?? .bool(true)),
                    ("ejected", .bool((instance["ejected"] ?? .null) != .null)),
                ])
            }
            items.append(
                .object([
                    ("name", .string(name)), ("health", .string(health)),
                    ("lag", evidence?.syncLag.map { .number(Double($0)) } ?? .null),
                    ("problem", evidence?.syncProblem.map(JSONValue.string) ?? .null),
                    ("instances", .array(instances)),
                ]))
        }
        return .array(items)
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}

/// What the dashboard warns about, from the last evidence readings: a route's match rate falling (over the last
/// minute, 5 points under its rate since its last stage change, with 20 comparisons at least), a service's sync lag
/// growing (three readings in a row), and a route already in coexist or eliminate that the coexist gate would now
/// refuse (its service unhealthy or behind).
struct AlertHistory {
    struct Alert: Equatable {
        var kind: String
        var subject: String
        var text: String

        var json: JSONValue {
            .object([("kind", .string(self.kind)), ("subject", .string(self.subject)), ("text", .string(self.text))])
        }
    }

    /// Per route: (when, compared, matched) of each reading, for 5 minutes.
    var matches: [String: [(at: ContinuousClock.Instant, compared: Int, matched: Int)]] = [:]
    /// Per service: its lag at each reading (the last four).
    var lags: [String: [Int]] = [:]

    mutating func alerts(
        table: RouteTable, standings: [String: RouteStanding], now: ContinuousClock.Instant
    ) -> [Alert] {
        var alerts: [Alert] = []
        var seenServices = Set<String>()
        for route in table.routes {
            guard let standing = standings[route.id] else { continue }
            let evidence = standing.evidence
            // Match rate: the last minute against the whole epoch.
            var series = self.matches[route.id] ?? []
            if let last = series.last, evidence.compared < last.compared { series = [] }  // a new epoch
            series.append((now, evidence.compared, evidence.matched))
            series.removeAll { now - $0.at > .seconds(300) }
            self.matches[route.id] = series
            if let base = series.last(where: { now - $0.at >= .seconds(55) }) {
                let compared = evidence.compared - base.compared
                let matched = evidence.matched - base.matched
                if compared >= 20, evidence.compared > 0 {
                    let recent = Double(matched) / Double(compared)
                    let overall = Double(evidence.matched) / Double(evidence.compared)
                    if recent < overall - 0.05 {
                        alerts.append(
                            Alert(
                                kind: "match-falling", subject: route.id,
                                text:
                                    "\(route.id): the match rate fell to \(Gates.percent(recent)) over the last minute "
                                    + "(\(matched) of \(compared)), from \(Gates.percent(overall)) since its last stage "
                                    + "change"))
                    }
                }
            }
            // Lag, once per service.
            if let service = route.service, seenServices.insert(service).inserted, let lag = evidence.syncLag {
                var lags = self.lags[service] ?? []
                lags.append(lag)
                if lags.count > 4 { lags.removeFirst(lags.count - 4) }
                self.lags[service] = lags
                if lags.count == 4, zip(lags, lags.dropFirst()).allSatisfy({ $0 < $1 }) {
                    alerts.append(
                        Alert(
                            kind: "lag-growing", subject: service,
                            text:
                                "\(service): sync lag growing, \(lags.map(String.init).joined(separator: " → ")) "
                                + "events over the last readings"))
                }
            }
            // A route already moved that its gate would now refuse.
            if route.service != nil, route.stage != .transform {
                var before = route
                before.stage = .transform
                let verdict = Gates.evaluate(route: before, to: .coexist, evidence: evidence, policy: table.gates)
                if let reason = verdict.reasons.first {
                    alerts.append(
                        Alert(
                            kind: "gate-refuses", subject: route.id,
                            text:
                                "\(route.id) is in \(route.stage.rawValue), but its coexist gate would now refuse it: "
                                + reason))
                }
            }
        }
        return alerts
    }
}
