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

    /// What a service said about itself.
    struct ServiceState: Sendable {
        var health: RouteEvidence.Probe = .notChecked
        var lag: Int?
        var syncProblem: String?
    }

    /// Evidence of each of `routes` (by id). Services are probed once each, all at the same time.
    public func collect(table: RouteTable, routes: [Route]) async -> [String: RouteEvidence] {
        let client = ProbeClient(timeout: self.probeTimeout)
        let services = Set(routes.compactMap(\.service)).sorted()
        let needsReverseSync = routes.contains { $0.service != nil && Gates.isWrite($0.method) }
        async let reverse: [String: RouteEvidence.Probe] =
            needsReverseSync ? Self.reverseSync(monolith: table.monolith, client: client) : [:]
        // The monolith's head, read before the services' positions: a service at or past it was in sync then.
        let head = services.isEmpty ? nil : await Self.monolithHead(table.monolith, client: client)
        let states = await withTaskGroup(of: (String, ServiceState).self) { group in
            for name in services {
                guard let upstream = table.services[name] else { continue }
                group.addTask { (name, await Self.probe(upstream, monolithHead: head, client: client)) }
            }
            var states: [String: ServiceState] = [:]
            for await (name, state) in group { states[name] = state }
            return states
        }
        let reverseStates = await reverse
        var result: [String: RouteEvidence] = [:]
        for route in routes {
            var evidence = RouteEvidence()
            if let counts = try? self.store.epochCounts(route: route.id) {
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
                evidence.health = state.health
                evidence.syncLag = state.lag
                evidence.syncProblem = state.syncProblem
                if let record = ReconcileRecord.read(service: service, dataDirectory: self.dataDirectory) {
                    evidence.reconcile = .init(
                        clean: record.clean, at: ReconcileRecord.formatter.string(from: record.time),
                        summary: record.summary,
                        age: .milliseconds(Int64(max(0, Date().timeIntervalSince(record.time)) * 1000)))
                }
                if Gates.isWrite(route.method) {
                    evidence.reverseSync =
                        reverseStates[service] ?? reverseStates["*"]
                        ?? .failed("the monolith lists no reverse-sync feed for \(service)")
                }
            }
            result[route.id] = evidence
        }
        return result
    }

    /// The monolith's newest event id (`GET /events` answers it as `head`), or nil when it cannot be read.
    static func monolithHead(_ monolith: Upstream, client: ProbeClient) async -> Int? {
        guard let answer = try? await client.get(monolith, "/events?after=\(Int64.max)&limit=1"), answer.status == 200,
            let head = (try? JSONParser.parse(Array(answer.body.readableBytesView)))?["head"]?.numberValue
        else { return nil }
        return Int(head)
    }

    /// Health and sync position of a service. The lag is the larger of what the service reports (against the head it
    /// saw on its last poll) and the monolith's own head minus the service's last applied event, so that a service
    /// whose consumer is stuck cannot look in sync.
    static func probe(_ upstream: Upstream, monolithHead: Int? = nil, client: ProbeClient) async -> ServiceState {
        async let health = client.get(upstream, "/healthz")
        async let sync = client.get(upstream, "/sync/status")
        var state = ServiceState()
        do {
            let answer = try await health
            state.health = (200..<300).contains(answer.status) ? .ok : .failed("GET /healthz answered \(answer.status)")
        } catch {
            state.health = .failed("\(error)")
        }
        do {
            let answer = try await sync
            guard answer.status == 200, let document = try? JSONParser.parse(Array(answer.body.readableBytesView))
            else {
                state.syncProblem = "GET /sync/status answered \(answer.status)"
                return state
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
                state.syncProblem = "GET /sync/status has no lagEvents yet (the monolith's head is unknown)"
            }
        } catch {
            state.syncProblem = "\(error)"
        }
        return state
    }

    /// Per service: whether the monolith's reverse-sync feed from it runs without error.
    static func reverseSync(monolith: Upstream, client: ProbeClient) async -> [String: RouteEvidence.Probe] {
        let answer: ProbeClient.Answer
        do {
            answer = try await client.get(monolith, "/reverse-sync/status")
        } catch {
            return ["*": .failed("\(error)")]
        }
        guard answer.status == 200, let document = try? JSONParser.parse(Array(answer.body.readableBytesView)),
            let feeds = document["feeds"]?.arrayValue
        else {
            return ["*": .failed("the monolith's GET /reverse-sync/status answered \(answer.status)")]
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
