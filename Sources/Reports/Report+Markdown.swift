import ControlPlane
import Foundation
import JSON
import RouteTable

/// The Markdown report (GitHub-flavoured): pasteable into a pull request or a change ticket.
extension Report {
    public var markdown: String {
        var lines: [String] = ["# Strangler report", ""]
        lines.append(
            "Generated \(Self.timestamp(self.generatedAt)) from \(Self.markdownText(self.source)); table "
                + "\(Self.code(self.tableHash)); \(self.windowText)."
        )
        lines.append("")
        lines.append("\(self.summaryText).")
        lines.append("")
        lines.append(
            self.privacy.redactionDefaults
                ? Self.markdownText(self.privacy.text) : "**\(Self.markdownText(self.privacy.text))**")
        lines.append("")
        lines.append("| Route | Stage | Compared | Match rate | Untriaged | Sync lag | Verdict |")
        lines.append("|---|---|---:|---|---:|---:|---|")
        for route in self.routes {
            lines.append(
                "| \(Self.code(route.id)) | \(route.stage) | \(route.gate.compared) | "
                    + "\(Self.cell(Self.rateWithInterval(route.gate))) | \(route.untriaged) | "
                    + "\(Self.lagText(route)) | \(Self.mark(route.verdict)) \(Self.cell(route.verdict.text)) |")
        }
        for route in self.routes {
            lines.append("")
            lines += Self.routeMarkdown(route, traceLink: self.traceLink)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `, trace [`4bf9…`](link)` (the id alone without a link template), or nothing without a trace id.
    static func traceText(_ sample: RouteReport.Sample, _ traceLink: (String) -> String?) -> String {
        guard let traceID = sample.traceID else { return "" }
        let code = Self.code(traceID)
        return ", trace " + (traceLink(traceID).map { "[\(code)](<\($0)>)" } ?? code)
    }

    static func mark(_ verdict: RouteReport.Verdict) -> String {
        switch verdict.status {
        case .ready, .eliminated: "✅"
        case .blocked: "❌"
        case .noService: "➖"
        }
    }

    static func routeMarkdown(_ route: RouteReport, traceLink: (String) -> String? = { _ in nil }) -> [String] {
        var lines = ["## \(Self.code(route.id)): \(Self.code("\(route.method) \(route.path)"))", ""]
        lines.append(
            "\(Self.mark(route.verdict)) **\(Self.markdownText(Self.capitalised(route.verdict.text)))**"
                + (route.verdict.shown.isEmpty ? "" : ":"))
        if !route.verdict.shown.isEmpty {
            lines.append("")
            lines += route.verdict.shown.map { "- \(Self.markdownText($0))" }
        }
        // `*`, not `-`: a list of another marker, so that it does not join the reasons' list.
        lines.append("")
        lines.append(
            "* **Stage:** \(route.stage)\(route.stageSince.map { " since \(Self.timestamp($0))" } ?? "")"
                + "\(route.service.map { "; service \(Self.code($0))" } ?? "")"
        )
        for (term, detail) in Self.facts(route) { lines.append("* **\(term):** \(Self.markdownText(detail))") }
        Self.section("### Mismatch signatures", isEmpty: route.signatures.isEmpty, in: &lines) { lines in
            lines.append(
                "| # | Signature | Differences | Count | Since stage change | First seen | Last seen | Triage |")
            lines.append("|---:|---|---|---:|---:|---|---|---|")
            for (index, signature) in route.signatures.enumerated() {
                let triage = signature.triage.map { "\($0.decision) by \($0.actor): \($0.reason)" } ?? "**untriaged**"
                lines.append(
                    "| \(index + 1) | \(Self.code(signature.id)) | "
                        + Self.cell(
                            signature.entries.map { "\(Self.place($0.pointer)) \($0.kind)" }.joined(separator: ", "))
                        + " | "
                        + "\(signature.count) | \(signature.sinceStageChange) | \(Self.timestamp(signature.firstSeen)) "
                        + "| \(Self.timestamp(signature.lastSeen)) | "
                        + "\(signature.triage == nil ? triage : Self.cell(triage)) |")
            }
            if route.signaturesTotal > route.signatures.count {
                lines.append("")
                lines.append("\(route.signaturesTotal - route.signatures.count) more signatures not shown.")
            }
            if let sample = route.signatures.first?.samples.first {
                lines.append("")
                lines.append(
                    "Newest sample of \(Self.code(route.signatures[0].id)): \(Self.code(sample.target)), "
                        + "\(Self.timestamp(sample.recordedAt))\(Self.traceText(sample, traceLink)):"
                )
                lines.append("")
                lines.append("| At | Kind | Monolith | Service |")
                lines.append("|---|---|---|---|")
                for difference in sample.differences {
                    lines.append(
                        "| \(Self.code(Self.place(difference.at))) | \(difference.kind) | "
                            + "\(Self.code(Self.valueText(difference.monolith, absent: difference.absentFromMonolith)))"
                            + " | "
                            + "\(Self.code(Self.valueText(difference.service, absent: difference.absentFromService))) |"
                    )
                }
            }
        }
        Self.section("### Top differing pointers", isEmpty: route.pointers.isEmpty, in: &lines) { lines in
            lines.append("| Pointer | Kind | Count |")
            lines.append("|---|---|---:|")
            for pointer in route.pointers {
                lines.append("| \(Self.code(Self.place(pointer.pointer))) | \(pointer.kind) | \(pointer.count) |")
            }
        }
        return lines
    }

    /// A section: its `title`, then "None." when `isEmpty`, else what `body` appends.
    static func section(_ title: String, isEmpty: Bool, in lines: inout [String], body: (inout [String]) -> Void) {
        lines.append("")
        lines.append(title)
        lines.append("")
        if isEmpty { lines.append("None.") } else { body(&lines) }
    }

    /// Inline code that survives backticks and table pipes in `text`.
    static func code(_ text: String) -> String {
        let clean = Self.oneLine(text).replacingOccurrences(of: "|", with: "\\|")
        var fence = "`"
        while clean.contains(fence) { fence += "`" }
        let padding = clean.hasPrefix("`") || clean.hasSuffix("`") ? " " : ""
        return fence + padding + clean + padding + fence
    }

    /// Plain text in a table cell (pipes are escaped as everywhere).
    static func cell(_ text: String) -> String { Self.markdownText(text) }

    /// Plain text: one line, with Markdown's and HTML's active characters escaped.
    static func markdownText(_ text: String) -> String {
        var out = ""
        for character in Self.oneLine(text) {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\\", "`", "*", "_", "[", "]", "|": out += "\\" + String(character)
            default: out.append(character)
            }
        }
        return out
    }

    static func oneLine(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
    }
}
