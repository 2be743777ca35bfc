import AdminAPI
import Foundation
import Gateway
import ProxyTestSupport
import StranglerTesting
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

/// Headless Chromium, when the machine has it (`.ci/run` installs it on Debian).
enum Chromium {
    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }()

    static let missing =
        "Chromium is not installed (apt-get install -y chromium, as .ci/run does): the HTML report is not rendered in "
        + "a browser here"

    /// The DOM of `file` after Chromium loaded and rendered it (`--dump-dom`); the browser is killed past `timeout`.
    static func dumpDOM(_ file: URL, timeout: Duration = .seconds(90)) async throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let output = profile.appendingPathComponent("dom.html")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        // In a container (often as root) Chromium needs --no-sandbox; no GPU, no first-run work, a profile of its own.
        let process = try ChildProcess(
            executable: try #require(self.executable),
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check",
                "--user-data-dir=\(profile.appendingPathComponent("profile").path)", "--dump-dom", file.absoluteString,
            ],
            output: output.path)
        let deadline = Task {
            try await Task.sleep(for: timeout)
            process.signal(SIGTERM)
        }
        // Chromium exits after dumping; wait for it off the test's threads.
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
        deadline.cancel()
        let data = (try? Data(contentsOf: output)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

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
