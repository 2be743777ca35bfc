import Foundation
import JSON
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane

/// An application that is not the demo: the gates ask it only what routes.json says it has.
@Suite("Gates: probes as the application declares them")
struct ProbeDeclarationTests {
    static func routes(monolith: Int, service: Int) -> String {
        """
        { "monolith": { "url": "http://127.0.0.1:\(monolith)", "probes": { "reverseSync": null, "events": null } },
          "services": {
            "orders": { "url": "http://127.0.0.1:\(service)",
                        "probes": { "health": null, "reverseSync": null,
                                    "syncLag": { "metrics": "/metrics", "name": "orders_sync_lag_events" } },
                        "entities": {} } },
          "routes": [
            { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "service": "orders", "stage": "transform" },
            { "id": "orders.create", "method": "POST", "path": "/orders", "service": "orders", "stage": "transform" } ] }
        """
    }

    static func metrics(lag: Int) -> String {
        """
        # HELP orders_sync_lag_events Events of the monolith not applied yet.
        # TYPE orders_sync_lag_events gauge
        orders_sync_lag_events_total 999
        orders_sync_lag_events{partition="0",note="a } in a label"} \(lag / 2)
        orders_sync_lag_events{partition="1"} \(lag - lag / 2) 1700000000000
        """
    }

    @Test func aMetricLagIsMeasuredAndUndeclaredProbesAreNotMeasuredNorAsked() async throws {
        try await ProxyHarness.run(routes: Self.routes) { harness in
            harness.service.documents.withLockedValue { $0["/metrics"] = Self.metrics(lag: 150) }
            let refused = try await harness.stage("orders.get", "coexist")
            #expect(refused.status == 409)
            let refusal = jsonValue(refused.body)["error"]?["refusals"]?.at(0)
            #expect(
                refusal?["reasons"]
                    == .array([.string("service orders is 150 events behind the monolith (at most 99 allowed)")]))

            harness.service.documents.withLockedValue { $0["/metrics"] = Self.metrics(lag: 3) }
            let moved = try await harness.stage("orders.get", "coexist")
            #expect(moved.status == 200, "\(moved.body)")
            let body = jsonValue(moved.body)
            let note = JSONValue.string("no health probe declared for orders")
            #expect(body["notMeasured"]?.at(0)?["notMeasured"] == .array([note]))
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(entry["notMeasured"]?.at(0)?["route"]?.stringValue == "orders.get")
            #expect(entry["notMeasured"]?.at(0)?["notMeasured"]?.at(0) == note)

            // The write route: no reverse sync and no entities declared, so neither blocks eliminate; both say so.
            let evidence = try await harness.admin("GET", "/admin/evidence?route=orders.create")
            let standing = jsonValue(evidence.body)["routes"]?.at(0)
            #expect(standing?["undeclared"] == .array(["health", "entities", "reverseSync"].map(JSONValue.string)))
            #expect(standing?["syncLag"]?.numberValue == 3)

            let asked = harness.service.seenRequests.withLockedValue { $0.map(\.path) }
            #expect(!asked.contains("/healthz") && !asked.contains("/sync/status"))
            let monolithAsked = harness.monolith.seenRequests.withLockedValue { $0.map(\.path) }
            #expect(!monolithAsked.contains("/reverse-sync/status") && !monolithAsked.contains("/events"))
        }
    }

    @Test func aMetricThatIsMissingOrNotANumberLeavesTheLagUnknown() {
        #expect(PrometheusText.sum(of: "lag", in: "lag 4\nlag{a=\"b\"} 2.5\nlagging 100\n") == .success(7))
        #expect(PrometheusText.sum(of: "lag", in: "# lag 4\nother 1") == .failure(.init("no metric lag in the answer")))
        #expect(PrometheusText.sum(of: "lag", in: "lag NaN") == .failure(.init("lag is NaN, not a count of events")))
        #expect(PrometheusText.sum(of: "lag", in: "lag{a=\"b\" 4") == .failure(.init("a malformed lag line")))
        #expect(PrometheusText.sum(of: "lag", in: "lag -3") == .failure(.init("lag is -3.0, not a count")))
    }
}

extension PrometheusText.Failure: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.description == rhs.description }
}
