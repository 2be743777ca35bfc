import Foundation
import Gateway
import ProxyTestSupport
import Testing

@testable import Proxy

/// The data plane's running totals per route and side (what the dashboard's rates and percentiles come from), and the
/// metrics by side.
@Suite struct RouteTrafficTests {
    @Test func quantilesAreTheBoundOfTheBucketWhereTheShareIsReached() {
        let cell = TrafficCell()
        #expect(cell.totals.quantile(0.5) == nil)
        for _ in 0..<98 { cell.record(status: 200, nanoseconds: 900_000) }  // ≤ 1 ms
        cell.record(status: 503, nanoseconds: 40_000_000)  // ≤ 50 ms
        cell.record(status: 0, nanoseconds: 120_000_000_000)  // past the last bound
        let totals = cell.totals
        #expect(totals.answers == 100)
        #expect(totals.errors == 2)
        #expect(totals.quantile(0.5) == 0.001)
        #expect(totals.quantile(0.98) == 0.001)
        #expect(totals.quantile(0.99) == 0.05)
        #expect(totals.quantile(1) == 30)
        // What happened between two readings.
        cell.record(status: 200, nanoseconds: 2_500_000)  // ≤ 3 ms
        let since = cell.totals.since(totals)
        #expect(since.answers == 1 && since.errors == 0)
        #expect(since.quantile(0.5) == 0.003)
    }

    @Test func bothSidesOfACoexistRouteAreTimedAndCounted() async throws {
        // A long shadow timeout: on a loaded machine every shadow answers, and is compared.
        let routes: (Int, Int) -> String = { monolith, service in
            ProxyHarness.routes(monolith: monolith, service: service, stage: "coexist")
                .replacingOccurrences(
                    of: #""path": "/contacts/{id}", "service": "contacts", "stage": "coexist""#,
                    with:
                        #""path": "/contacts/{id}", "service": "contacts", "stage": "coexist", "shadow": { "timeout": "60s" }"#
                )
        }
        try await ProxyHarness.run(routes: routes) { harness in
            for _ in 0..<5 {
                let answer = try await RawHTTP.get("/contacts/c1", port: harness.proxyPort)
                #expect(answer.status == 200)
            }
            let side = #"strangler_shadow_duration_seconds_count{route="contacts.get",side="service"}"#
            // Counted once each shadow's answer came (after the client's).
            #expect(await eventually { (try? await harness.metric(side)) == 5 })
            let answered =
                #"strangler_request_duration_seconds_count{route="contacts.get",stage="coexist",side="monolith"}"#
            #expect(try await harness.metric(answered) == 5)
            // Every pair compared is counted by result, and the table's routes by stage.
            await harness.proxy.recorder.flush()
            let match = try await harness.metric(
                #"strangler_shadow_comparisons_total{route="contacts.get",result="match"}"#)
            let mismatch = try await harness.metric(
                #"strangler_shadow_comparisons_total{route="contacts.get",result="mismatch"}"#)
            #expect(match + mismatch == 5)
            let text = try await harness.admin("GET", "/metrics").body
            #expect(text.contains(#"strangler_route_info{route="contacts.get",stage="coexist",service="contacts"} 1"#))
            #expect(text.contains(#"strangler_route_info{route="dead.get",stage="eliminate",service="dead"} 1"#))
            let traffic = harness.proxy.metrics.traffic.snapshot()
            #expect(traffic[.init(route: "contacts.get", side: "monolith", shadow: false)]?.answers == 5)
            #expect(traffic[.init(route: "contacts.get", side: "service", shadow: true)]?.answers == 5)
        }
    }
}
