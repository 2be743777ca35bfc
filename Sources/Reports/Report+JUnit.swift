import ControlPlane
import Foundation

/// The JUnit XML report, for CI: one test case per route, failing when its next move is refused by the gates (the
/// reasons are the failure), skipped when it has no service; routes ready to move or already in eliminate pass.
extension Report {
    /// Whether any route of the report is below its gate (what `strangler report --format junit` exits 1 on).
    public var hasBlockedRoutes: Bool { self.routes.contains { $0.verdict.status == .blocked } }

    public var junit: String {
        let summary = self.summary
        let timestamp = String(Self.timestamp(self.generatedAt).dropLast())  // JUnit's timestamp has no zone
        let counts =
            "tests=\"\(summary.routes)\" failures=\"\(summary.blocked)\" errors=\"0\" skipped=\"\(summary.noService)\""
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"strangler report\" \(counts) time=\"0\">\n"
        out +=
            "  <testsuite name=\"strangler.gates\" \(counts) time=\"0\" timestamp=\"\(timestamp)\" "
            + "hostname=\"strangler\">\n"
        out += "    <properties>\n"
        out += "      <property name=\"source\" value=\"\(Self.xml(self.source))\"/>\n"
        out += "      <property name=\"tableHash\" value=\"\(Self.xml(self.tableHash))\"/>\n"
        out += "      <property name=\"window\" value=\"\(Self.xml(self.windowText))\"/>\n"
        out += "    </properties>\n"
        for route in self.routes {
            out +=
                "    <testcase classname=\"strangler.gates.\(Self.xml(route.stage))\" name=\"\(Self.xml(route.id))\" "
                + "time=\"0\">\n"
            switch route.verdict.status {
            case .blocked:
                let message = "\(route.verdict.text): " + route.verdict.shown.joined(separator: "; ")
                out +=
                    "      <failure type=\"gate\" message=\"\(Self.xml(message))\">"
                    + "\(Self.xml(route.verdict.shown.map { "- " + $0 }.joined(separator: "\n")))</failure>\n"
            case .noService:
                out += "      <skipped message=\"\(Self.xml(route.verdict.text))\"/>\n"
            case .ready, .eliminated:
                break
            }
            let facts = Self.facts(route).map { "\($0.0): \($0.1)" }
            out +=
                "      <system-out>\(Self.xml(([route.verdict.text] + facts).joined(separator: "\n")))</system-out>\n"
            out += "    </testcase>\n"
        }
        out += "  </testsuite>\n</testsuites>\n"
        return out
    }

    /// Text for XML content and attributes: `& < > " '` escaped, characters XML 1.0 cannot hold dropped.
    static func xml(_ text: String) -> String {
        Self.markup(text, apostrophe: "&apos;") { scalar in
            scalar == "\n" || scalar == "\t" || scalar == "\r"
                || !(scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value))
        }
    }
}
