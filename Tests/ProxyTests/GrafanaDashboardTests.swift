import Foundation
import Gateway
import JSON
import ProxyTestSupport
import Testing

/// `docs/grafana/strangler.json` imports as is and asks only for metrics the proxy exports (and documents).
@Suite struct GrafanaDashboardTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func metrics(in expression: String) -> Set<String> {
        var names = Set<String>()
        var rest = Substring(expression)
        while let start = rest.range(of: "strangler_") {
            let name = rest[start.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            var base = String(name)
            for suffix in ["_bucket", "_count", "_sum"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
            names.insert(base)
            rest = rest[name.endIndex...]
        }
        return names
    }

    @Test func everyPanelAsksForMetricsTheProxyExports() async throws {
        let text = try String(
            contentsOf: Self.root.appendingPathComponent("docs/grafana/strangler.json"), encoding: .utf8)
        let dashboard = try JSONParser.parse(text)
        #expect(dashboard["title"]?.stringValue == "Strangler")
        // Importable anywhere: the data source is chosen at import (an input and a variable), never a fixed uid.
        #expect(dashboard["__inputs"]?.arrayValue?.first?["pluginId"]?.stringValue == "prometheus")
        let variables = dashboard["templating"]?["list"]?.arrayValue ?? []
        #expect(
            variables.contains { $0["type"]?.stringValue == "datasource" && $0["name"]?.stringValue == "datasource" })
        let panels = dashboard["panels"]?.arrayValue ?? []
        #expect(panels.count >= 10)
        var used = Set<String>()
        for panel in panels {
            #expect(panel["datasource"]?["uid"]?.stringValue == "${datasource}", "\(panel["title"]?.stringValue ?? "")")
            for target in panel["targets"]?.arrayValue ?? [] {
                used.formUnion(Self.metrics(in: target["expr"]?.stringValue ?? ""))
            }
        }
        // Every metric documented…
        let documented = try ["proxy.md", "upstreams.md", "shadow.md"].map {
            try String(contentsOf: Self.root.appendingPathComponent("docs/\($0)"), encoding: .utf8)
        }.joined()
        for name in used.sorted() { #expect(documented.contains("`\(name)"), "\(name) is not in docs/proxy.md") }
        // …and those of traffic and comparisons in a live proxy's answer after coexist traffic.
        try await ProxyHarness.run(stage: "coexist") { harness in
            for _ in 0..<3 { _ = try await RawHTTP.get("/contacts/c1", port: harness.proxyPort) }
            _ = try await RawHTTP.get("/dead", port: harness.proxyPort)
            _ = await eventually {
                (try? await harness.admin("GET", "/metrics").body.contains("strangler_shadow_duration")) == true
            }
            await harness.proxy.recorder.flush()
            let exported = try await harness.admin("GET", "/metrics").body
            for name in [
                "strangler_requests_total", "strangler_request_duration_seconds", "strangler_shadow_duration_seconds",
                "strangler_shadow_comparisons_total", "strangler_route_info", "strangler_upstream_errors_total",
                "strangler_open_connections",
            ] {
                #expect(used.contains(name), "the dashboard does not show \(name)")
                #expect(exported.contains("# TYPE \(name) "), "\(name) is not exported")
            }
        }
    }
}
