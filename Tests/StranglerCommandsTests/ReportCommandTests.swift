import AdminAPI
import ArgumentParser
import DiffStore
import Foundation
import Gateway
import JSON
import ProxyTestSupport
import StranglerTesting
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports
@testable import StranglerCommands

#if canImport(FoundationXML)
import FoundationXML
#endif

/// `strangler report` parsed as the executable parses it, run at the fixture's time.
func runReport(_ arguments: [String]) async throws -> CommandOutcome {
    let command = try #require(try Strangler.parseAsRoot(["report"] + arguments) as? ReportCommand)
    return await command.outcome(now: ReportFixture.now)
}

@Suite("strangler report and GET /admin/report")
struct ReportCommandTests {
    @Test func withoutAProxyItReadsRoutesJSONAndTheStore() async throws {
        let copy = try FileCopy(routes: ReportFixture.routes)
        defer { copy.remove() }
        try ReportFixture.fill(try copy.store())

        let json = try await runReport(["--format", "json"] + copy.cli)
        #expect(json.status == 0)
        let report = try Report(json: try JSONParser.parse(json.output))
        #expect(report.source == "\(copy.routesPath) (no proxy running)")
        #expect(report.generatedAt == ReportFixture.now)
        #expect(report.routes.map(\.id) == ["contacts.get", "contacts.list", "deals.get", "accounts.get"])
        #expect(report.routes[0].gate.compared == 30 && report.routes[0].signatures.map(\.id) == ["e1", "s2"])
        // The services do not answer here (port 1): contacts.list is blocked on its sync, and says so.
        #expect(report.routes[1].verdict.status == .blocked)
        #expect(
            report.routes[1].verdict.reasons.contains {
                $0.hasPrefix("service contacts's sync lag is unknown: ") && $0.contains("connection refused")
            })

        // JUnit to a file: written, then exit 1 because routes are below their gates.
        let out = copy.directory.appendingPathComponent("gates.xml").path
        let junit = try await runReport(["--format", "junit", "--out", out] + copy.cli)
        #expect(junit.status == 1)
        #expect(
            junit.output == "junit report written to \(out): 4 routes: 2 blocked, 1 in eliminate, 1 without a service\n"
        )
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: out), options: [])
        #expect(document.rootElement()?.attribute(forName: "failures")?.stringValue == "2")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: copy.directory.path).filter { $0.contains(".tmp-") }
                .isEmpty)

        // Markdown of one route in the last hour: exit 0 whatever the verdicts.
        let markdown = try await runReport(
            ["--format", "markdown", "--route", "contacts.get", "--since", "1h"] + copy.cli)
        #expect(markdown.status == 0)
        #expect(
            markdown.output.hasPrefix(
                "# Strangler report\n\nGenerated 2026-11-27T09:10:00Z from \(copy.routesPath) (no proxy running); "
                    + "table `"
            ))
        #expect(markdown.output.contains("; window: since 2026-11-27T08:10:00Z (1h).\n\n1 route: 1 blocked.\n"))
        #expect(
            markdown.output.contains(
                "| 1 | `e1` | /email changed | 1 | 1 | 2026-11-27T09:01:10Z | 2026-11-27T09:01:10Z | **untriaged** |"))

        // Text by default, without colour off a terminal.
        let text = try await runReport(["--route", "contacts.*"] + copy.cli)
        #expect(text.status == 0)
        #expect(text.output.hasPrefix("strangler report: 2 routes: 2 blocked\n"))
        #expect(!text.output.contains("\u{1B}"))
    }

    @Test func badFlagsAndUnknownRoutesAreUsageErrors() async throws {
        #expect(await Strangler.execute(["report", "--format", "pdf"]) == 2)
        #expect(await Strangler.execute(["report", "--since", "5x"]) == 2)
        #expect(await Strangler.execute(["report", "--samples", "50"]) == 2)
        // --output is --format's other spelling, as on every reading command; two that disagree are an error.
        #expect(
            try #require(try Strangler.parseAsRoot(["report", "--output", "json"]) as? ReportCommand).chosenFormat
                == .json)
        #expect(
            try #require(
                try Strangler.parseAsRoot(["report", "--output", "json", "--format", "json"]) as? ReportCommand
            ).chosenFormat == .json)
        #expect(await Strangler.execute(["report", "--output", "json", "--format", "html"]) == 2)
        do {
            _ = try Strangler.parseAsRoot(["report", "--since", "5x"])
            Issue.record("--since 5x was accepted")
        } catch {
            #expect(Strangler.fullMessage(for: error).contains("The value '5x' is invalid for '--since <duration>'"))
        }
        do {
            _ = try Strangler.parseAsRoot(["report", "--format", "pdf"])
            Issue.record("--format pdf was accepted")
        } catch {
            #expect(Strangler.fullMessage(for: error).contains("'pdf'"))
        }

        let copy = try FileCopy(routes: ReportFixture.routes)
        defer { copy.remove() }
        let unknown = try await runReport(["--route", "nope"] + copy.cli)
        #expect(unknown.status == 2)
        #expect(unknown.error == "strangler report: no route has id \"nope\"\n")
        let pattern = try await runReport(["--route", "zz*"] + copy.cli)
        #expect(pattern.status == 2)
        #expect(pattern.error == "strangler report: no route id matches \"zz*\"\n")

        let closed = try ClosedPort()
        defer { closed.release() }
        let unreachable = try await runReport([
            "--admin", "http://127.0.0.1:\(closed.port)", "--data", copy.dataDirectory,
        ])
        #expect(unreachable.status == 3)
        #expect(unreachable.error.hasPrefix("strangler report: the proxy is unreachable: "))
    }

    @Test func theAdminPortServesTheSameHTMLBehindTheToken() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness)
            try ReportFixture.fill(harness.diffStore)

            #expect(try await harness.admin("GET", "/admin/report", token: nil).status == 401)
            #expect(try await harness.admin("GET", "/admin/report", token: "wrong").status == 401)

            let page = try await harness.admin("GET", "/admin/report")
            #expect(page.status == 200)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.header("content-security-policy") == Report.contentSecurityPolicy)
            #expect(page.body.contains(#"<polyline class="rate" points="48.0,12.0 338.0,152.0 628.0,152.0"/>"#))
            #expect(page.body.contains("&quot;email&quot;: &quot;b@example.com&quot;"))
            #expect(page.body.contains(#"<details class="signature" id="signature-e1">"#))

            // The page is the report's JSON rendered: what `strangler report --format html` writes through the proxy.
            let json = try await harness.admin("GET", "/admin/report?format=json")
            #expect(json.status == 200)
            var report = try Report(json: jsonValue(json.body))
            let title = try #require(
                page.body.components(separatedBy: "<title>Strangler report ").dropFirst().first?.components(
                    separatedBy: "</title>"
                ).first)
            report.generatedAt = try #require(Report.date(title))
            #expect(report.html == page.body)
            #expect(report.routes.map(\.id) == ["contacts.get", "contacts.list", "contacts.create", "dead.get"])

            let one = jsonValue(
                try await harness.admin("GET", "/admin/report?route=contacts.get&since=1h&format=json").body)
            #expect(one["routes"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["contacts.get"])
            #expect(one["window"]?["duration"]?.stringValue == "1h")
            let badSince = try await harness.admin("GET", "/admin/report?since=5x")
            #expect(
                badSince.status == 400 && jsonValue(badSince.body)["error"]?["code"]?.stringValue == "invalid_since")
            #expect(try await harness.admin("GET", "/admin/report?route=nope").status == 404)
            #expect(try await harness.admin("GET", "/admin/report?format=pdf").status == 400)

            // The CLI through the proxy.
            let viaCLI = try await runReport(["--format", "json"] + harness.cli)
            #expect(viaCLI.status == 0)
            let decoded = try Report(json: try JSONParser.parse(viaCLI.output))
            #expect(decoded.source == "the proxy at http://127.0.0.1:\(harness.adminPort)")
            #expect(decoded.routes[0].gate.compared == 30)
            #expect(decoded.routes[0].signatures[0].samples[0].monolith.body == .text(ReportFixture.monolithBody))
            let missing = try await runReport(["--route", "nope"] + harness.cli)
            #expect(missing.status == 2 && missing.error == "strangler report: no route has id \"nope\"\n")
        }
    }
}
