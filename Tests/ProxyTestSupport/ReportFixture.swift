package import AdminAPI
import Diff
package import DiffStore
package import Foundation
package import Gateway
package import JSON
package import RouteTable

@testable package import ControlPlane
@testable package import Proxy
@testable package import Reports

/// A diff store with known counts, a table and evidence, for the report's tests: four routes, one per verdict.
///
/// - contacts.get (coexist): 09:00 10 of 10, 09:01 9 of 10 (an `/email` mismatch, e1, untriaged; 2 shadow errors,
///   1 timeout, 1 dropped, 3 skipped, 1 stale), 09:02 9 of 10 (a status mismatch, s2, accepted): blocked.
/// - contacts.list (coexist): 09:00 200 of 200: ready to eliminate (the table's gate: 100 samples, 90%).
/// - deals.get (eliminate), accounts.get (transform, no service).
package enum ReportFixture {
    /// 2026-11-27T09:00:00Z.
    package static let start = Date(timeIntervalSince1970: 1_795_770_000)
    /// 09:10:00, the report's time.
    package static let now = start.addingTimeInterval(600)

    package static let routes = """
        { "monolith": "http://127.0.0.1:1",
          "services": { "contacts": "http://127.0.0.1:1", "deals": "http://127.0.0.1:1" },
          "gates": { "eliminate": { "minSamples": 100, "minMatchRate": 0.9 } },
          "routes": [
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", "stage": \
        "coexist" },
            { "id": "contacts.list", "method": "GET", "path": "/contacts", "service": "contacts", "stage": "coexist" },
            { "id": "deals.get", "method": "GET", "path": "/deals/{id}", "service": "deals", "stage": "eliminate" },
            { "id": "accounts.get", "method": "GET", "path": "/accounts/{id}", "stage": "transform" } ] }
        """

    package static let monolithBody = #"{"id":"c1","email":"a@example.com","note":"<b>Tom & \"Jerry\"</b>"}"#
    package static let serviceBody = #"{"id":"c1","email":"b@example.com","note":"<b>Tom & \"Jerry\"</b>"}"#

    package static func counts(_ compared: Int, _ matched: Int) -> RouteCounts {
        var counts = RouteCounts()
        counts.compared = compared
        counts.matched = matched
        counts.mismatched = compared - matched
        return counts
    }

    package static var emailSample: DiffSample {
        DiffSample(
            route: "contacts.get", signature: "e1", recordedAt: start.addingTimeInterval(70), requestID: "req-1",
            servedBy: "monolith", method: "GET",
            path: "/contacts/c1", query: "expand=<tags>",
            requestHeaders: [("accept", "application/json"), ("authorization", "[redacted]")], requestBody: [],
            monolith: StoredResponse(
                status: 200, headers: [("content-type", "application/json")], body: Array(monolithBody.utf8)),
            service: StoredResponse(
                status: 200, headers: [("content-type", "application/json")], body: Array(serviceBody.utf8)),
            diff:
                #"{"body":{"kind":"json","differences":[{"pointer":"/email","kind":"changed","#
                + #""monolith":"a@example.com","service":"b@example.com"}],"truncated":false}}"#
        )
    }

    package static var statusSample: DiffSample {
        DiffSample(
            route: "contacts.get", signature: "s2", recordedAt: start.addingTimeInterval(130), requestID: "req-2",
            servedBy: "monolith", method: "GET",
            path: "/contacts/c2", query: nil, requestHeaders: [("accept", "application/json")], requestBody: [],
            monolith: StoredResponse(
                status: 404, headers: [("content-type", "application/json")],
                body: Array(#"{"error":{"code":"not_found"}}"#.utf8)),
            service: StoredResponse(
                status: 200, headers: [("content-type", "application/json")], body: Array(#"{"id":"c2"}"#.utf8)),
            diff: #"{"status":{"monolith":404,"service":200}}"#)
    }

    /// The batches described above, oldest first.
    package static var batches: [DiffBatch] {
        var first = DiffBatch(time: start.addingTimeInterval(10))
        first.counts["contacts.get"] = counts(10, 10)
        first.counts["contacts.list"] = counts(200, 200)

        var second = DiffBatch(time: start.addingTimeInterval(70))
        var counts = counts(10, 9)
        counts.shadowErrors = 2
        counts.timeouts = 1
        counts.dropped = 1
        counts.skipped = 3
        counts.stale = 1
        second.counts["contacts.get"] = counts
        second.count(signature: "e1", text: "/email changed", on: "contacts.get")
        second.count(pointer: "/email", kind: "changed", on: "contacts.get")
        second.samples.append(emailSample)

        var third = DiffBatch(time: start.addingTimeInterval(130))
        third.counts["contacts.get"] = Self.counts(10, 9)
        third.count(signature: "s2", text: "status changed", on: "contacts.get")
        third.count(pointer: "status", kind: "changed", on: "contacts.get")
        third.samples.append(statusSample)
        return [first, second, third]
    }

    /// The triage decision described above.
    package static let triage = TriageDecision(
        route: "contacts.get", signature: "s2", decision: .accepted, reason: "404 right after a delete: sync lag",
        actor: "alice", decidedAt: start.addingTimeInterval(200))

    /// The batches and the triage decision, in a proxy's own diff store.
    package static func fill(_ store: DiffStore) throws {
        for batch in Self.batches { try store.apply(batch) }
        try store.recordTriage(Self.triage)
    }

    /// The same, in a shared store (as proxies' flushes write them).
    package static func fill(shared store: any SharedEvidence) async throws {
        for batch in Self.batches { try await store.apply(batch, id: UUID().uuidString) }
        try await store.recordTriage(Self.triage)
    }

    /// What the collector would gather with the services healthy, in sync and reconciled: the store's counts since the
    /// last stage change, with triage.
    package static func evidence(
        _ store: any ReviewEvidence, table: RouteTable
    ) async throws -> [String: RouteEvidence] {
        var result: [String: RouteEvidence] = [:]
        for route in table.routes {
            var evidence = RouteEvidence()
            let counts = try await store.epochCounts(route: route.id)
            evidence.compared = counts.compared
            evidence.matched = counts.matched
            evidence.signatures = counts.signatures.map {
                .init(id: $0.id, text: $0.text, count: $0.count, decision: $0.decision)
            }
            if route.service != nil {
                evidence.health = .ok
                evidence.syncLag = 0
                evidence.reconcile = .init(
                    clean: true, at: "2026-11-27T09:05:00Z", summary: "40 compared; 0 missing, 0 extra, 0 differing")
            }
            result[route.id] = evidence
        }
        return result
    }

    /// The fixture's report (everything, or the last `window`).
    package static func report(window: String? = nil, selector: String? = nil) async throws -> Report {
        let store = try DiffStore.open(path: nil)
        try self.fill(store)
        return try await self.report(store: store, window: window, selector: selector)
    }

    package static func report(
        store: any ReviewEvidence, window: String? = nil, selector: String? = nil
    ) async throws -> Report {
        let table = try RouteTable.parse(Self.routes)
        var options = ReportOptions(selector: selector, window: window.flatMap(ReportWindow.init), now: Self.now)
        options.samplesPerSignature = 3
        let routes = try ReportBuilder.select(selector, in: table).get()
        return try await ReportBuilder.build(
            table: table, tableHash: "0123456789abcdef", routes: routes,
            evidence: try await Self.evidence(store, table: table), store: store, options: options,
            source: "the test store")
    }
}
