public import DiffStore
import Foundation
import JSON
import NIOCore
public import RouteTable

/// Gathers the evidence the gates judge, for the admin API and for the CLI when it edits routes.json itself:
/// the diff store's counts since each route's last stage change (with triage), each service's `GET /healthz` and
/// `GET /sync/status`, the monolith's `GET /reverse-sync/status`, and the last reconcile records in the data folder.
///
/// ```swift
/// let collector = EvidenceCollector(store: diffStore, dataDirectory: ".strangler")
/// let evidence = await collector.collect(table: table, routes: table.routes)
/// Gates.evaluate(route: route, to: .eliminate, evidence: evidence[route.id]!, policy: table.gates)
/// ```
public struct EvidenceCollector: Sendable {
    public let store: DiffStore
    public let dataDirectory: String
    /// Deadline of each HTTP probe.
    public var probeTimeout: Duration = .seconds(2)

    /// Where the table is read from, for the hints the gates print (`strangler reconcile orders --routes …`);
    /// nil: the default `routes.json`.
    public var routesPath: String?

    /// Where every proxy of a shared store counts (`--store`): the routes' counts are read there, not from `store`.
    public var shared: (any SharedEvidence)?

    public init(
        store: DiffStore, dataDirectory: String, probeTimeout: Duration = .seconds(2), routesPath: String? = nil,
        shared: (any SharedEvidence)? = nil
    ) {
        self.shared = shared
        self.store = store
        self.dataDirectory = dataDirectory
        self.probeTimeout = probeTimeout
        self.routesPath = routesPath
    }

    /// What a service said about itself.
    struct ServiceState: Sendable {
        var health: RouteEvidence.Probe = .notChecked
        var lag: Int?
        var syncProblem: String?
        /// The service's own reverse-sync probe, when it declares one.
        var reverse: RouteEvidence.Probe?
    }

    /// Evidence of each of `routes` (by id). Services are probed once each, all at the same time.
    public func collect(table: RouteTable, routes: [Route]) async -> [String: RouteEvidence] {
        let client = ProbeClient(timeout: self.probeTimeout)
        let services = Set(routes.compactMap(\.service)).sorted()
        let needsReverseSync = routes.contains {
            $0.service.map { table.probes(of: $0).reverseSync == .monolith } == true && Gates.isWrite($0.method)
        }
        async let reverse: [String: RouteEvidence.Probe] =
            needsReverseSync
            ? Self.reverseSync(monolith: table.monolith, probes: table.monolithProbes, client: client) : [:]
        // The monolith's head, read before the services' positions: a service at or past it was in sync then.
        let head =
            services.isEmpty
            ? nil : await Self.monolithHead(table.monolith, probes: table.monolithProbes, client: client)
        let states = await withTaskGroup(of: (String, ServiceState).self) { group in
            for name in services {
                guard let upstream = table.services[name] else { continue }
                let probes = table.probes(of: name)
                let writes = routes.contains { $0.service == name && Gates.isWrite($0.method) }
                group.addTask {
                    (
                        name,
                        await Self.probe(upstream, probes: probes, monolithHead: head, reverse: writes, client: client)
                    )
                }
            }
            var states: [String: ServiceState] = [:]
            for await (name, state) in group { states[name] = state }
            return states
        }
        let reverseStates = await reverse
        var result: [String: RouteEvidence] = [:]
        var storeDown = false
        var records: [String: ReconcileRecord] = [:]
        for route in routes {
            var evidence = RouteEvidence()
            // With a shared store its counts are every proxy's; one it cannot read leaves nothing counted (the gates
            // refuse, rather than judge by this proxy's share).
            var counts: EpochCounts?
            if let shared = self.shared {
                // A store that did not answer once in this collection is not asked again (each try waits for the
                // store's timeout): what it holds counts as not read.
                if !storeDown {
                    do {
                        counts = try await shared.epochCounts(route: route.id)
                    } catch {
                        counts = nil
                        storeDown = true
                    }
                }
            } else {
                counts = try? self.store.epochCounts(route: route.id)
            }
            if let counts {
                evidence.since = counts.since.map { ReconcileRecord.formatter.string(from: $0) }
                evidence.compared = counts.compared
                evidence.matched = counts.matched
                evidence.signatures = counts.signatures.map {
                    .init(id: $0.id, text: $0.text, count: $0.count, decision: $0.decision)
                }
            }
            if let service = route.service {
                let state =
                    states[service]
                    ?? ServiceState(health: .failed("service \(service) is not declared"), syncProblem: "not declared")
                let probes = table.probes(of: service)
                evidence.health = state.health
                evidence.syncLag = state.lag
                evidence.syncProblem = state.syncProblem
                if probes.health == nil { evidence.undeclared.append("health") }
                if probes.syncLag == nil { evidence.undeclared.append("syncLag") }
                let entities = table.declarations[service]?.entities ?? []
                if entities.isEmpty { evidence.undeclared.append("entities") }
                for entity in entities where records[entity.name] == nil && !storeDown {
                    switch await self.record(entity: entity.name) {
                    case .success(let record?): records[entity.name] = record
                    case .success(nil): break
                    case .failure: storeDown = true
                    }
                }
                evidence.reconcile = Self.reconcile(entities.map(\.name), records: records)
                evidence.reconcileCommand = self.reconcileCommand(entities.map(\.name))
                if Gates.isWrite(route.method) {
                    switch probes.reverseSync {
                    case .none:
                        evidence.undeclared.append("reverseSync")
                    case .service:
                        evidence.reverseSync = state.reverse ?? .notChecked
                    case .monolith:
                        if table.monolithProbes.reverseSync == .none {
                            evidence.undeclared.append("reverseSync")
                        } else {
                            evidence.reverseSync =
                                reverseStates[service] ?? reverseStates["*"]
                                ?? .failed("the monolith lists no reverse-sync feed for \(service)")
                        }
                    }
                }
            }
            result[route.id] = evidence
        }
        return result
    }

    /// The reconcile records of a service's entities as one: nil when one was never reconciled; else clean when all
    /// are, as old as the oldest. With a shared store the records are the store's (`strangler reconcile --store`),
    /// and one it cannot read counts as never reconciled.
    static func reconcile(_ entities: [String], records known: [String: ReconcileRecord]) -> RouteEvidence.Reconcile? {
        guard !entities.isEmpty else { return nil }
        var records: [(name: String, record: ReconcileRecord)] = []
        for name in entities {
            guard let record = known[name] else { return nil }
            records.append((name, record))
        }
        let oldest = records.map(\.record.time).min()!
        return .init(
            clean: records.allSatisfy(\.record.clean), at: ReconcileRecord.formatter.string(from: oldest),
            summary: records.count == 1
                ? records[0].record.summary
                : records.map { "\($0.name): \($0.record.summary)" }.joined(separator: "; "),
            age: .milliseconds(Int64(max(0, Date().timeIntervalSince(oldest)) * 1000)))
    }

    /// An entity's latest reconcile record (nil: never reconciled), from the shared store or the data directory; a
    /// failure when the store does not answer.
    func record(entity: String) async -> Result<ReconcileRecord?, SharedStoreFailure> {
        guard let shared = self.shared else {
            return .success(ReconcileRecord.read(service: entity, dataDirectory: self.dataDirectory))
        }
        do {
            return .success(try await shared.latestReconcile(entity: entity))
        } catch {
            return .failure(error)
        }
    }

    /// `strangler reconcile orders && strangler reconcile items`, with `--routes` and `--data` when they are not
    /// the defaults (`--store`, without a password, with a shared store: the gates read the records there).
    func reconcileCommand(_ entities: [String]) -> String? {
        guard !entities.isEmpty else { return nil }
        var flags = ""
        if let routesPath = self.routesPath, routesPath != "routes.json" {
            flags += " --routes " + ShellWord.quote(routesPath)
        }
        if let shared = self.shared {
            flags += " --store " + ShellWord.quote(shared.storeDescription)
        } else if self.dataDirectory != ".strangler" {
            flags += " --data " + ShellWord.quote(self.dataDirectory)
        }
        return entities.map { "strangler reconcile \(ShellWord.quote($0))\(flags)" }.joined(separator: " && ")
    }

    /// The monolith's newest event id (its events probe answers it as `head`), or nil when it cannot be read.
    static func monolithHead(_ monolith: Upstream, probes: Probes, client: ProbeClient) async -> Int? {
        guard let events = probes.events,
            let answer = try? await client.get(monolith, "\(events)?after=\(Int64.max)&limit=1"), answer.status == 200,
            let head = (try? JSONParser.parse(Array(answer.body.readableBytesView)))?["head"]?.numberValue
        else { return nil }
        return Int(head)
    }

    /// Health and sync position of a service, and its own reverse-sync probe when it declares one and `reverse`.
    /// The lag is the larger of what the service reports (against the head it saw on its last poll) and the
    /// monolith's own head minus the service's last applied event, so that a service whose consumer is stuck cannot
    /// look in sync.
    static func probe(
        _ upstream: Upstream, probes: Probes = .serviceDefaults, monolithHead: Int? = nil, reverse: Bool = false,
        client: ProbeClient
    ) async -> ServiceState {
        async let health = Self.health(upstream, path: probes.health, client: client)
        async let reverseState = Self.ownReverseSync(upstream, probes: probes, asked: reverse, client: client)
        var state = ServiceState()
        switch probes.syncLag {
        case .none: break
        case .status(let path):
            Self.readStatus(
                await Self.fetch(upstream, path, client: client), path: path, head: monolithHead, into: &state)
        case .metric(let path, let name):
            Self.readMetric(await Self.fetch(upstream, path, client: client), path: path, name: name, into: &state)
        }
        state.health = await health
        state.reverse = await reverseState
        return state
    }

    static func fetch(
        _ upstream: Upstream, _ path: String, client: ProbeClient
    ) async -> Result<
        ProbeClient.Answer, ProbeClient.Failure
    > {
        do {
            return .success(try await client.get(upstream, path))
        } catch {
            return .failure(error)
        }
    }

    static func health(_ upstream: Upstream, path: String?, client: ProbeClient) async -> RouteEvidence.Probe {
        guard let path else { return .notChecked }
        switch await self.fetch(upstream, path, client: client) {
        case .success(let answer):
            return (200..<300).contains(answer.status) ? .ok : .failed("GET \(path) answered \(answer.status)")
        case .failure(let error): return .failed("\(error)")
        }
    }

    /// A sync status document: `{"lagEvents": N, "lastEventId": N, "lastError": "…"}`.
    static func readStatus(
        _ fetched: Result<ProbeClient.Answer, ProbeClient.Failure>, path: String, head monolithHead: Int?,
        into state: inout ServiceState
    ) {
        let answer: ProbeClient.Answer
        switch fetched {
        case .success(let got): answer = got
        case .failure(let error):
            state.syncProblem = "\(error)"
            return
        }
        guard answer.status == 200, let document = try? JSONParser.parse(Array(answer.body.readableBytesView)) else {
            state.syncProblem = "GET \(path) answered \(answer.status)" + (answer.status == 200 ? " without JSON" : "")
            return
        }
        if let lag = document["lagEvents"]?.numberValue {
            state.lag = Int(lag)
        }
        if let head = monolithHead, let applied = document["lastEventId"]?.numberValue {
            state.lag = max(state.lag ?? 0, head - Int(applied))
        }
        if let error = document["lastError"]?.stringValue {
            state.syncProblem = error
        } else if state.lag == nil {
            state.syncProblem = "GET \(path) has no lagEvents yet (the monolith's head is unknown)"
        }
    }

    /// A Prometheus metric as the lag: the sum of its series' values in the text format.
    static func readMetric(
        _ fetched: Result<ProbeClient.Answer, ProbeClient.Failure>, path: String, name: String,
        into state: inout ServiceState
    ) {
        switch fetched {
        case .failure(let error): state.syncProblem = "\(error)"
        case .success(let answer) where answer.status != 200:
            state.syncProblem = "GET \(path) answered \(answer.status)"
        case .success(let answer):
            switch PrometheusText.sum(of: name, in: String(buffer: answer.body)) {
            case .success(let value): state.lag = value
            case .failure(let why): state.syncProblem = "GET \(path): \(why)"
            }
        }
    }

    /// The service's own reverse-sync probe: `{"running": true, "lastError": null}`; nil when it declares none or
    /// no write route asks.
    static func ownReverseSync(
        _ upstream: Upstream, probes: Probes, asked: Bool, client: ProbeClient
    ) async -> RouteEvidence.Probe? {
        guard asked, case .service(let path) = probes.reverseSync else { return nil }
        switch await self.fetch(upstream, path, client: client) {
        case .failure(let error): return .failed("\(error)")
        case .success(let answer):
            guard answer.status == 200, let document = try? JSONParser.parse(Array(answer.body.readableBytesView))
            else { return .failed("GET \(path) answered \(answer.status)") }
            if let error = document["lastError"]?.stringValue { return .failed("last error: \(error)") }
            if document["running"]?.boolValue != true { return .failed("GET \(path) says it is not running") }
            return .ok
        }
    }

    /// Per service: whether the monolith's reverse-sync feed from it runs without error.
    static func reverseSync(
        monolith: Upstream, probes: Probes = .monolithDefaults, client: ProbeClient
    ) async -> [String: RouteEvidence.Probe] {
        guard case .service(let path) = probes.reverseSync else { return [:] }
        let answer: ProbeClient.Answer
        do {
            answer = try await client.get(monolith, path)
        } catch {
            return ["*": .failed("\(error)")]
        }
        guard answer.status == 200, let document = try? JSONParser.parse(Array(answer.body.readableBytesView)),
            let feeds = document["feeds"]?.arrayValue
        else {
            return ["*": .failed("the monolith's GET \(path) answered \(answer.status)")]
        }
        var result: [String: RouteEvidence.Probe] = [:]
        for feed in feeds {
            guard let service = feed["service"]?.stringValue else { continue }
            if let error = feed["lastError"]?.stringValue {
                result[service] = .failed("last error: \(error)")
            } else if feed["running"]?.boolValue != true {
                result[service] = .failed("the monolith's reverse-sync feed from \(service) is not running")
            } else {
                result[service] = .ok
            }
        }
        return result
    }
}
