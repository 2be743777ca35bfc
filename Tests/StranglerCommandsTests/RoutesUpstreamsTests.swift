import JSON
import Reports
import RouteTable
import Testing

@testable import StranglerCommands

@Suite("strangler routes: the instances behind each group")
struct RoutesUpstreamsTests {
    @Test func aTableWithOnePlainInstancePerGroupShowsNothingMore() throws {
        let table = try RouteTable.parse(
            #"{ "monolith": "http://127.0.0.1:1", "services": { "a": "http://127.0.0.1:2" }, "routes": [] }"#)
        #expect(RoutesCommand.renderUpstreams(table.upstreamsJSON.arrayValue ?? [], style: .plain) == "")
    }

    @Test func configuredGroupsAndUnverifiedTLSAreListed() throws {
        let table = try RouteTable.parse(
            #"{ "monolith": { "url": "https://crm.internal", "tls": { "insecure": true } }, "#
                + #""services": { "leads": { "instances": ["http://10.0.0.1:9", "http://10.0.0.2:9"], "#
                + #""balance": "least-requests", "health": { "path": "/healthz" } } }, "routes": [] }"#)
        let text = RoutesCommand.renderUpstreams(table.upstreamsJSON.arrayValue ?? [], style: .plain)
        #expect(text.contains("leads: 2 instances, least-requests, health GET /healthz every 2s"), "\(text)")
        #expect(text.contains("\n  http://10.0.0.1:9\n"), "\(text)")
        #expect(
            text.contains(
                #"warning: monolith: TLS to https://crm.internal is not verified ("tls": {"insecure": true})"#),
            "\(text)")
    }

    @Test func observedStateSaysWhoServesAndWhoDoesNotAndWhy() throws {
        let status = try JSONParser.parse(
            #"""
            [{ "name": "leads", "kind": "service", "balance": "round-robin", "health": null, "instances": [
               { "url": "http://a:1", "tls": false, "insecure": false, "healthy": true, "ejected": null, "inFlight": 2,
                 "openConnections": 3, "pending": 0, "errors": 0, "ejections": 0, "healthTransitions": 0 },
               { "url": "http://b:1", "tls": false, "insecure": false, "healthy": true,
                 "ejected": { "until": "2026-12-04T20:00:00Z", "why": "5 failures in a row, the last: answered 503" },
                 "inFlight": 0, "openConnections": 0, "pending": 0, "errors": 5, "ejections": 1,
                 "healthTransitions": 0 } ] }]
            """#)
        let text = RoutesCommand.renderUpstreams(status.arrayValue ?? [], style: .plain)
        #expect(text.contains("http://a:1  healthy; 2 in flight, 3 open connections, 0 errors, 0 ejections"), "\(text)")
        #expect(
            text.contains(
                "http://b:1  ejected until 2026-12-04T20:00:00Z (5 failures in a row, the last: answered 503); 0 in flight"
            ),
            "\(text)")
    }
}
