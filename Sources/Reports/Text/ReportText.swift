import ControlPlane
import Foundation
import JSON

/// The report for a terminal: per route its verdict and reasons, the evidence, the signatures with their newest
/// sample's differences side by side (monolith | service, the differing values in red and green on a colour terminal),
/// and the top pointers. Control characters of stored data are never printed.
package enum ReportText {
    package static func render(_ report: Report, style: TerminalStyle) -> String {
        var lines: [String] = []
        lines.append(style.paint("strangler report", .bold) + ": " + Self.clean(report.summaryText))
        lines.append(
            "from \(Self.clean(report.source)) at \(Report.timestamp(report.generatedAt)); table "
                + "\(Self.clean(report.tableHash)); \(report.windowText)"
        )
        lines.append(report.privacy.redactionDefaults ? report.privacy.text : style.paint(report.privacy.text, .red))
        for route in report.routes {
            lines.append("")
            lines += Self.route(route, style: style)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    package static func route(_ route: RouteReport, style: TerminalStyle) -> [String] {
        var head = style.paint(Self.clean(route.id), .bold) + "  \(Self.clean(route.method)) \(Self.clean(route.path))"
        if let service = route.service { head += "  service \(Self.clean(service))" }
        head += "  " + style.stage(route.stage) + (route.stageSince.map { " since \(Report.timestamp($0))" } ?? "")
        var lines = [head]
        let verdict: String =
            switch route.verdict.status {
            case .ready, .eliminated: style.paint(route.verdict.text, .green)
            case .blocked: style.paint(route.verdict.text, .red)
            case .noService: style.paint(route.verdict.text, .dim)
            }
        lines.append("  " + verdict + (route.verdict.shown.isEmpty ? "" : ":"))
        lines += route.verdict.shown.map { "    - " + Self.clean($0) }
        var facts = Report.facts(route)
        let untriaged = route.untriaged
        facts.append(
            ("Signatures", route.signaturesTotal == 0 ? "none" : "\(route.signaturesTotal) (\(untriaged) untriaged)"))
        let width = facts.map(\.0.count).max() ?? 0
        for (term, detail) in facts {
            lines.append("  " + term + String(repeating: " ", count: width - term.count + 2) + Self.clean(detail))
        }
        for (index, signature) in route.signatures.enumerated() {
            let triage =
                signature.triage.map {
                    style.paint("\($0.decision) by \(Self.clean($0.actor)): \(Self.clean($0.reason))", .green)
                }
                ?? style.paint("untriaged", .red)
            lines.append(
                "    \(index + 1). \(signature.id)  \(signature.count)× (\(signature.sinceStageChange) since the "
                    + "stage change)  \(triage)"
            )
            lines.append("       " + Self.clean(signature.text))
            lines.append(
                "       first seen \(Report.timestamp(signature.firstSeen)), last seen "
                    + "\(Report.timestamp(signature.lastSeen)); "
                    + "\(signature.samplesKept) sample\(signature.samplesKept == 1 ? "" : "s") kept")
            if let sample = signature.samples.first {
                lines.append(
                    "       sample \(sample.id): \(Self.clean(sample.target)) at "
                        + "\(Report.timestamp(sample.recordedAt)), answered by the \(Self.clean(sample.servedBy))"
                )
                var table = TextTable(headers: ["AT", "KIND", "MONOLITH", "SERVICE"])
                for difference in sample.differences {
                    table.rows.append([
                        Self.clean(Report.place(difference.at)), Self.clean(difference.kind),
                        style.paint(
                            Self.short(Report.valueText(difference.monolith, absent: difference.absentFromMonolith)),
                            .red),
                        style.paint(
                            Self.short(Report.valueText(difference.service, absent: difference.absentFromService)),
                            .green),
                    ])
                }
                if sample.truncated { table.rows.append(["…", "", "", ""]) }
                lines += table.render(style: style).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                    .map { "         " + $0 }
            }
        }
        if route.signaturesTotal > route.signatures.count {
            lines.append(
                "    … \(route.signaturesTotal - route.signatures.count) more signatures (see --format json or html)")
        }
        if !route.pointers.isEmpty {
            let pointers = route.pointers.map { "\(Self.clean(Report.place($0.pointer))) \($0.kind) \($0.count)×" }
                .joined(separator: ", ")
            lines.append("  Top pointers" + String(repeating: " ", count: max(2, width - 12 + 2)) + pointers)
        }
        return lines
    }

    /// At most 60 characters, one line.
    package static func short(_ text: String) -> String {
        let line = Self.clean(text)
        return line.count > 60 ? String(line.prefix(59)) + "…" : line
    }

    /// Control characters (ANSI escapes of a stored body, newlines) as spaces.
    package static func clean(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? " " : $0 }))
    }
}
