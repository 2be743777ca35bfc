import AdminAPI
import Foundation
import Gateway
import ProxyTestSupport
import StranglerTesting
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

@Suite("Report: in a real browser")
struct ReportBrowserTests {
    @Test(.enabled(if: Chromium.executable != nil, Comment(rawValue: Chromium.missing)))
    func theHTMLReportRendersInHeadlessChromium() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("report.html")
        try Report.write(try await ReportFixture.report().html, to: file.path)

        let dom = try await Chromium.dumpDOM(file)
        #expect(dom.contains("<h1>Strangler report</h1>"), "Chromium rendered nothing: \(dom.prefix(500))")
        // The chart, as the browser parsed it (SVG inside HTML).
        #expect(dom.contains(#"<svg class="match-rate""#))
        #expect(dom.contains(#"<polyline class="rate" points="48.0,12.0 338.0,152.0 628.0,152.0"></polyline>"#))
        #expect(dom.contains(#"<polyline class="rate" points="338.0,12.0"></polyline>"#))
        #expect(dom.components(separatedBy: "<circle class=\"point\"").count == 5)
        // The signatures as expandable sections, with their samples: the request and both answers, as text.
        #expect(dom.components(separatedBy: "<details class=\"signature\"").count == 3)
        #expect(dom.contains("<code>GET /contacts/c1?expand=&lt;tags&gt;</code>"))
        #expect(dom.contains(#""email": "a@example.com""#))
        #expect(dom.contains(#""email": "b@example.com""#))
        #expect(dom.contains(#""note": "&lt;b&gt;Tom &amp; \"Jerry\"&lt;/b&gt;""#))
        #expect(dom.contains("<h5>Monolith answered 404</h5>"))
        // Stored markup stays text: the browser made no element of it.
        #expect(!dom.contains("<b>Tom"))
        #expect(!dom.contains("<tags>"))
    }
}
