import ControlPlane
import DiffStore
import Foundation
public import JSON
import RouteTable

/// The HTML report: one self-contained page (inline style, inline SVG, no script, no fetch of anything), every value
/// escaped. Per route: the verdict, the evidence, the match rate over time as an SVG chart, and the signatures as
/// `<details>` sections with their samples' request and both answers.
extension Report {
    /// What the page may load: nothing but its own inline style (also in a `<meta>` of the page, so a saved file keeps
    /// it).
    public static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

    public var html: String {
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(Self.escape(Self.contentSecurityPolicy))">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Strangler report \(Self.escape(Self.timestamp(self.generatedAt)))</title>
            <style>\(Self.style)</style>
            </head>
            <body>
            <header>
            <h1>Strangler report</h1>
            <p class="meta">Generated \(Self.escape(Self.timestamp(self.generatedAt))) from \
            \(Self.escape(self.source)); table <code>\(Self.escape(self.tableHash))</code>; \
            \(Self.escape(self.windowText)).</p>
            <p class="summary">\(Self.escape(self.summaryText)).</p>
            <p class="privacy\(self.privacy.redactionDefaults ? "" : " off")">\(Self.escape(self.privacy.text))</p>
            </header>

            """
        out += self.overviewHTML
        for route in self.routes {
            out += Self.routeHTML(route, bucketSeconds: self.bucketSeconds, traceLink: self.traceLink)
        }
        out += "</body>\n</html>\n"
        return out
    }

    /// `window: since 2026-11-27T09:00:00Z (1h)` or `window: everything kept`.
    public var windowText: String {
        guard let since = self.window.since else { return "window: everything kept" }
        return "window: since \(Self.timestamp(since))\(self.window.duration.map { " (\($0))" } ?? "")"
    }

    var overviewHTML: String {
        var out =
            "<table class=\"overview\">\n<thead><tr><th>Route</th><th>Stage</th><th>Compared</th><th>Match rate</th>"
            + "<th>Untriaged</th><th>Sync lag</th><th>Verdict</th></tr></thead>\n<tbody>\n"
        for route in self.routes {
            out += "<tr><td><a href=\"#\(Self.anchor(route.id))\"><code>\(Self.escape(route.id))</code></a></td>"
            out += "<td><span class=\"stage \(Self.escape(route.stage))\">\(Self.escape(route.stage))</span></td>"
            out +=
                "<td class=\"number\">\(route.gate.compared)</td><td>\(Self.escape(Self.rateWithInterval(route.gate)))"
                + "</td>"
            out +=
                "<td class=\"number\">\(route.untriaged)</td><td class=\"number\">"
                + "\(Self.escape(Self.lagText(route)))</td>"
            out +=
                "<td class=\"verdict \(route.verdict.status.rawValue)\">\(Self.escape(route.verdict.text))</td></tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }

    /// The sync lag as shown: events, `?` when unknown, `—` without a service.
    public static func lagText(_ route: RouteReport) -> String {
        guard route.service != nil else { return "—" }
        return route.sync.lag.map(String.init) ?? "?"
    }

    static func routeHTML(
        _ route: RouteReport, bucketSeconds: Int, traceLink: (String) -> String? = { _ in nil }
    ) -> String {
        let id = Self.escape(route.id)
        var out = "<section class=\"route\" id=\"\(Self.anchor(route.id))\">\n"
        out += "<h2><code>\(id)</code> <small>\(Self.escape(route.method)) \(Self.escape(route.path))"
        out += route.service.map { " → service \(Self.escape($0))" } ?? ""
        out += "</small> <span class=\"stage \(Self.escape(route.stage))\">\(Self.escape(route.stage))</span></h2>\n"
        out +=
            "<p class=\"verdict \(route.verdict.status.rawValue)\">\(Self.escape(Self.capitalised(route.verdict.text)))"
            + "</p>\n"
        if !route.verdict.shown.isEmpty {
            out +=
                "<ul class=\"reasons\">\n" + route.verdict.shown.map { "<li>\(Self.escape($0))</li>\n" }.joined()
                + "</ul>\n"
        }
        out += "<dl class=\"facts\">\n"
        for (term, detail) in Self.facts(route) {
            out += "<dt>\(Self.escape(term))</dt><dd>\(Self.escape(detail))</dd>\n"
        }
        out += "</dl>\n"
        out += "<h3>Match rate over time</h3>\n" + Self.chart(route, bucketSeconds: bucketSeconds)
        out += "<h3>Mismatch signatures</h3>\n"
        if route.signatures.isEmpty {
            out += "<p class=\"none\">None.</p>\n"
        } else {
            for (index, signature) in route.signatures.enumerated() {
                out += Self.signatureHTML(signature, rank: index + 1, traceLink: traceLink)
            }
            let hidden = route.signaturesTotal - route.signatures.count
            if hidden > 0 {
                out += "<p class=\"more\">\(hidden) more signatures not shown.</p>\n"
            }
        }
        out += "<h3>Top differing pointers</h3>\n"
        if route.pointers.isEmpty {
            out += "<p class=\"none\">None.</p>\n"
        } else {
            out +=
                "<table class=\"pointers\"><thead><tr><th>Pointer</th><th>Kind</th><th>Count</th></tr></thead><tbody>\n"
            for pointer in route.pointers {
                out +=
                    "<tr><td><code>\(Self.escape(Self.place(pointer.pointer)))</code></td><td>"
                    + "\(Self.escape(pointer.kind))</td><td class=\"number\">\(pointer.count)</td></tr>\n"
            }
            out += "</tbody></table>\n"
        }
        return out + "</section>\n"
    }

    /// The evidence of a route as (term, detail) lines: the same facts in text, Markdown and HTML.
    public static func facts(_ route: RouteReport) -> [(String, String)] {
        var facts: [(String, String)] = []
        let since = route.stageSince.map { "since \(Self.timestamp($0))" } ?? "so far"
        let gate = route.gate
        var compared = "\(gate.compared) \(since): \(gate.matched) matched, \(gate.mismatched) mismatched"
        if gate.compared > 0 { compared += "; match rate \(Self.rateWithInterval(gate))" }
        facts.append(("Compared", compared))
        if gate.explained > 0 {
            facts.append(
                (
                    "Triaged",
                    "\(Self.plural(gate.explained, "mismatch", "mismatches")) of triaged signatures counted as "
                        + "matched: gate lower bound \(Self.percent(gate.gateLowerBound))"
                ))
        }
        if route.service != nil, route.verdict.status != .eliminated {
            facts.append(
                (
                    "Eliminate gate",
                    "at least \(gate.minSamples) compared, lower bound at least \(Gates.percent(gate.minMatchRate))"
                ))
        }
        let traffic = route.traffic
        facts.append(
            (
                "Shadow traffic",
                "\(traffic.compared) compared, \(traffic.matched) matched, \(traffic.mismatched) mismatched; "
                    + "\(Self.plural(traffic.shadowErrors, "shadow error", "shadow errors")), "
                    + "\(Self.plural(traffic.timeouts, "timeout", "timeouts")), "
                    + "\(traffic.dropped) dropped, \(traffic.skipped) skipped, \(traffic.stale) stale"
            ))
        let notCompared = traffic.counts.notCompared
        if !notCompared.isEmpty {
            facts.append(("Not compared", notCompared.map { "\($0.count) \($0.reason)" }.joined(separator: ", ")))
        }
        if route.service != nil {
            let undeclared = route.sync.undeclared
            var sync =
                undeclared.contains("syncLag")
                ? "lag not measured (no syncLag probe)"
                : "lag " + (route.sync.lag.map { "\($0) event\($0 == 1 ? "" : "s")" } ?? "unknown")
            if let problem = route.sync.problem, !undeclared.contains("syncLag") { sync += " (\(problem))" }
            if undeclared.contains("health") {
                sync += "; health not measured"
            } else if let health = route.sync.health {
                sync += "; health \(health)"
            }
            if undeclared.contains("entities") {
                sync += "; no entities to reconcile"
            } else if let reconcile = route.sync.reconcile {
                sync +=
                    "; last reconcile \(reconcile.clean ? "clean" : "not clean") at \(reconcile.at) "
                    + "(\(reconcile.summary))"
            } else {
                sync += "; never reconciled"
            }
            if let reverse = route.sync.reverseSync { sync += "; reverse sync \(reverse)" }
            facts.append(("Sync", sync))
        }
        return facts
    }

    static func signatureHTML(
        _ signature: RouteReport.Signature, rank: Int, traceLink: (String) -> String? = { _ in nil }
    ) -> String {
        let triage =
            signature.triage.map { "\($0.decision) by \($0.actor) at \(Self.timestamp($0.at)): \($0.reason)" }
            ?? "untriaged"
        var out = "<details class=\"signature\" id=\"signature-\(Self.escape(signature.id))\">\n"
        out +=
            "<summary><span class=\"rank\">\(rank).</span> <code>\(Self.escape(signature.id))</code> <span "
            + "class=\"count\">\(signature.count)×</span> "
        out +=
            "<span class=\"triage \(signature.triage == nil ? "untriaged" : "triaged")\">"
            + "\(Self.escape(signature.triage?.decision ?? "untriaged"))</span> "
        out += "<span class=\"text\">\(Self.escape(signature.text))</span></summary>\n"
        out +=
            "<p>\(signature.count) in all, \(signature.sinceStageChange) since the last stage change; first seen "
            + "\(Self.escape(Self.timestamp(signature.firstSeen))), "
        out +=
            "last seen \(Self.escape(Self.timestamp(signature.lastSeen))); "
            + "\(Self.plural(signature.samplesKept, "sample", "samples")) kept.</p>\n"
        out += "<p class=\"triage\">Triage: \(Self.escape(triage))</p>\n"
        out +=
            "<ul class=\"entries\">"
            + signature.entries.map {
                "<li><code>\(Self.escape(Self.place($0.pointer)))</code> \(Self.escape($0.kind))</li>"
            }.joined() + "</ul>\n"
        for sample in signature.samples { out += Self.sampleHTML(sample, traceLink: traceLink) }
        return out + "</details>\n"
    }

    static func sampleHTML(_ sample: RouteReport.Sample, traceLink: (String) -> String? = { _ in nil }) -> String {
        var out = "<div class=\"sample\">\n"
        out += "<h4>Sample \(sample.id): <code>\(Self.escape(sample.target))</code></h4>\n"
        var trace = ""
        if let traceID = sample.traceID {
            let code = "<code>\(Self.escape(traceID))</code>"
            trace =
                ", trace "
                + (traceLink(traceID).map { "<a href=\"\(Self.escape($0))\" rel=\"noreferrer\">\(code)</a>" } ?? code)
        }
        out +=
            "<p>Recorded \(Self.escape(Self.timestamp(sample.recordedAt))), request <code>"
            + "\(Self.escape(sample.requestID))</code>\(trace), answered by the \(Self.escape(sample.servedBy)).</p>\n"
        out +=
            "<table class=\"differences\"><thead><tr><th>At</th><th>Kind</th><th>Monolith</th><th>Service</th></tr>"
            + "</thead><tbody>\n"
        for difference in sample.differences {
            out +=
                "<tr><td><code>\(Self.escape(Self.place(difference.at)))</code></td><td>"
                + "\(Self.escape(difference.kind))</td>"
            out +=
                "<td class=\"monolith\"><code>"
                + "\(Self.escape(Self.valueText(difference.monolith, absent: difference.absentFromMonolith)))"
                + "</code></td>"
            out +=
                "<td class=\"service\"><code>"
                + "\(Self.escape(Self.valueText(difference.service, absent: difference.absentFromService)))</code>"
                + "</td></tr>\n"
        }
        if sample.truncated { out += "<tr><td colspan=\"4\">… more differences not listed</td></tr>\n" }
        out += "</tbody></table>\n"
        out += "<div class=\"exchange\">\n"
        out +=
            "<div class=\"request\"><h5>Request</h5><pre>"
            + "\(Self.escape(Self.messageText(sample.request, firstLine: sample.target)))</pre></div>\n"
        out +=
            "<div class=\"monolith\"><h5>Monolith answered \(sample.monolith.status ?? 0)</h5><pre>"
            + "\(Self.escape(Self.messageText(sample.monolith, firstLine: nil)))</pre></div>\n"
        out +=
            "<div class=\"service\"><h5>Service answered \(sample.service.status ?? 0)</h5><pre>"
            + "\(Self.escape(Self.messageText(sample.service, firstLine: nil)))</pre></div>\n"
        out += "</div>\n</div>\n"
        return out
    }

    /// A differing value as one line: its JSON text (`null` for a JSON null), or `(absent)` on the side a difference of
    /// kind `added` or `removed` does not have it.
    public static func valueText(_ value: JSONValue, absent: Bool = false) -> String {
        absent ? "(absent)" : value.jsonText
    }

    /// Headers, a blank line, and the body (JSON bodies indented).
    static func messageText(_ message: RouteReport.Message, firstLine: String?) -> String {
        var lines: [String] = []
        if let firstLine { lines.append(firstLine) }
        if let status = message.status { lines.append("HTTP \(status)") }
        lines += message.headers.map { "\($0.name): \($0.value)" }
        switch message.body {
        case .none: break
        case .text(let text):
            lines.append("")
            if let document = try? JSONParser.parse(text), document.objectValue != nil || document.arrayValue != nil {
                lines.append(String(document.prettyJSONText.dropLast()))
            } else {
                lines.append(text)
            }
        case .base64(let data):
            lines.append("")
            lines.append("(\(Data(base64Encoded: data)?.count ?? 0) bytes, not UTF-8; base64) \(data)")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: The chart

    /// Geometry of the chart (SVG user units).
    enum Chart {
        static let (width, height) = (640.0, 180.0)
        /// The margins around the plot: the axis labels are in the left and bottom ones.
        static let (left, right, top, bottom) = (48.0, 12.0, 12.0, 28.0)
        static var plotWidth: Double { Self.width - Self.left - Self.right }
        static var plotHeight: Double { Self.height - Self.top - Self.bottom }

        /// The lowest rate on the axis: 90% when every bucket is at or above it, else 50%, else 0.
        static func floor(_ rates: [Double]) -> Double {
            let lowest = rates.min() ?? 1
            return lowest >= 0.9 ? 0.9 : lowest >= 0.5 ? 0.5 : 0
        }

        /// Each bucket's point: x by time from the first bucket to the last (the middle for one), y by match rate.
        static func points(_ buckets: [RouteReport.Bucket]) -> [(x: Double, y: Double)] {
            guard let first = buckets.first, let last = buckets.last else { return [] }
            let floor = Self.floor(buckets.compactMap(\.matchRate))
            let span = last.start.timeIntervalSince(first.start)
            return buckets.map { bucket in
                let x =
                    span > 0
                    ? Self.left + bucket.start.timeIntervalSince(first.start) / span * Self.plotWidth
                    : Self.left + Self.plotWidth / 2
                return (x, Self.y(bucket.matchRate ?? 0, floor: floor))
            }
        }

        static func y(_ rate: Double, floor: Double) -> Double {
            Self.top + (1 - (rate - floor) / (1 - floor)) * Self.plotHeight
        }

        static func number(_ value: Double) -> String { String(format: "%.1f", value) }
    }

    /// An inline SVG line chart of the route's match rate per bucket, with the gate's threshold dashed.
    static func chart(_ route: RouteReport, bucketSeconds: Int) -> String {
        guard let first = route.buckets.first, let last = route.buckets.last else {
            return "<p class=\"none\">No comparisons in the window.</p>\n"
        }
        let number = Chart.number
        let points = Chart.points(route.buckets)
        let floor = Chart.floor(route.buckets.compactMap(\.matchRate))
        let label =
            "Match rate of \(route.id) per \(Self.duration(bucketSeconds)), from \(Self.timestamp(first.start)) to "
            + "\(Self.timestamp(last.start))"
        let (left, top, right, bottom) = (
            number(Chart.left), number(Chart.top), number(Chart.left + Chart.plotWidth),
            number(Chart.top + Chart.plotHeight)
        )
        let size = (Int(Chart.width), Int(Chart.height))
        var out = "<figure class=\"chart\">\n"
        out +=
            Self.tag(
                "svg",
                [
                    ("class", "match-rate"), ("xmlns", "http://www.w3.org/2000/svg"),
                    ("viewBox", "0 0 \(size.0) \(size.1)"), ("width", "\(size.0)"),
                    ("height", "\(size.1)"), ("role", "img"), ("aria-label", label),
                ]) + "\n"
        out +=
            Self.tag(
                "rect",
                [
                    ("class", "plot"), ("x", left), ("y", top), ("width", number(Chart.plotWidth)),
                    ("height", number(Chart.plotHeight)),
                ], "") + "\n"
        let axisX = number(Chart.left - 4)
        out +=
            Self.tag(
                "text", [("class", "axis"), ("x", axisX), ("y", number(Chart.top + 4)), ("text-anchor", "end")], "100%")
            + "\n"
        out +=
            Self.tag(
                "text", [("class", "axis"), ("x", axisX), ("y", bottom), ("text-anchor", "end")],
                "\(Int((floor * 100).rounded()))%") + "\n"
        if route.gate.minMatchRate >= floor, route.gate.minMatchRate < 1 {
            let y = number(Chart.y(route.gate.minMatchRate, floor: floor))
            let title = Self.tag("title", [], "gate: \(Gates.percent(route.gate.minMatchRate))")
            out +=
                Self.tag(
                    "line", [("class", "threshold"), ("x1", left), ("y1", y), ("x2", right), ("y2", y)], raw: title)
                + "\n"
        }
        out +=
            Self.tag(
                "polyline",
                [
                    ("class", "rate"),
                    ("points", points.map { "\(number($0.x)),\(number($0.y))" }.joined(separator: " ")),
                ], "") + "\n"
        for (bucket, point) in zip(route.buckets, points) {
            let title = Self.tag(
                "title", [],
                "\(Self.timestamp(bucket.start)): \(Self.percent(bucket.matchRate)) (\(bucket.matched) of "
                    + "\(bucket.compared))"
            )
            out +=
                Self.tag(
                    "circle", [("class", "point"), ("cx", number(point.x)), ("cy", number(point.y)), ("r", "3")],
                    raw: title) + "\n"
        }
        let baseline = number(Chart.height - 8)
        out +=
            Self.tag(
                "text", [("class", "axis"), ("x", left), ("y", baseline), ("text-anchor", "start")],
                Self.timestamp(first.start)) + "\n"
        out +=
            Self.tag(
                "text", [("class", "axis"), ("x", right), ("y", baseline), ("text-anchor", "end")],
                Self.timestamp(last.start)) + "\n"
        let buckets = Self.plural(route.buckets.count, "bucket", "buckets")
        out += "</svg>\n" + Self.tag("figcaption", [], "\(label); \(buckets) with comparisons.") + "\n</figure>\n"
        return out
    }

    /// An element with escaped attribute values: open only when `text` and `raw` are nil, self-closed when `text` is
    /// empty, else with `text` escaped (or `raw` as is) and the closing tag.
    static func tag(
        _ name: String, _ attributes: [(String, String)], _ text: String? = nil, raw: String? = nil
    ) -> String {
        let open = "<\(name)" + attributes.map { " \($0.0)=\"\(Self.escape($0.1))\"" }.joined()
        if let raw { return open + ">" + raw + "</\(name)>" }
        guard let text else { return open + ">" }
        return text.isEmpty ? open + "/>" : open + ">" + Self.escape(text) + "</\(name)>"
    }

    /// `1 minute`, `5 minutes`, `1 hour`, `1 day`.
    static func duration(_ seconds: Int) -> String {
        let (value, unit) =
            seconds % 86400 == 0
            ? (seconds / 86400, "day") : seconds % 3600 == 0 ? (seconds / 3600, "hour") : (seconds / 60, "minute")
        return value == 1 ? "1 \(unit)" : "\(value) \(unit)s"
    }

    // MARK: Escaping

    /// Text for HTML content and attribute values: `& < > " '` escaped, control characters dropped.
    public static func escape(_ text: String) -> String {
        Self.markup(text, apostrophe: "&#39;") { scalar in
            scalar == "\n" || scalar == "\t" || !(scalar.value < 0x20 || scalar.value == 0x7F)
        }
    }

    /// `text` with the five markup characters escaped (`'` as `apostrophe`) and the scalars `keeps` refuses dropped:
    /// what HTML and JUnit's XML share.
    static func markup(_ text: String, apostrophe: String, keeps: (Unicode.Scalar) -> Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += apostrophe
            default: if keeps(scalar) { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// An id attribute for a route: `route-` and the id with anything but letters, digits, `.`, `-` and `_` as `_`.
    static func anchor(_ id: String) -> String {
        "route-"
            + String(
                id.unicodeScalars.map { scalar in
                    (scalar.properties.isAlphabetic && scalar.isASCII) || ("0"..."9").contains(scalar) || scalar == "."
                        || scalar == "-" || scalar == "_"
                        ? Character(scalar) : "_"
                })
    }

    /// `1 timeout`, `2 timeouts`.
    static func plural(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }

    /// The text with its first letter in upper case.
    public static func capitalised(_ text: String) -> String { text.prefix(1).uppercased() + text.dropFirst() }

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 \
        1rem;color:#1d1f23;background:#fff}
        h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.25rem;border-top:1px solid \
        #d5d8de;padding-top:1.2rem;margin-top:2rem}h2 small{font-weight:normal;color:#555}
        h3{font-size:1rem;margin:1.2rem 0 .4rem}h4,h5{margin:.6rem 0 .3rem}code,pre{font:12.5px/1.4 \
        ui-monospace,Menlo,Consolas,monospace}
        table{border-collapse:collapse;margin:.4rem 0}th,td{border:1px solid #d5d8de;padding:.25rem \
        .5rem;text-align:left;vertical-align:top}th{background:#f3f4f6}
        td.number{text-align:right}.meta,.summary,.privacy{color:#444;margin:.2rem \
        0}.privacy.off{color:#991b1b;font-weight:600}
        .stage{display:inline-block;border-radius:.6rem;padding:0 \
        .5rem;font-size:.8rem;background:#e5e7eb}.stage.coexist{background:#fef3c7}.stage.eliminate{background:#d1fae5}
        .verdict.ready,.verdict.eliminated{color:#065f46;font-weight:600}.verdict.blocked{color:#991b1b;\
        font-weight:600}.verdict.no-service{color:#555}
        dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.facts \
        dt{font-weight:600}dl.facts dd{margin:0}
        svg.match-rate{max-width:100%;height:auto}svg .plot{fill:#fafafa;stroke:#d5d8de}svg \
        .rate{fill:none;stroke:#2563eb;stroke-width:2}
        svg .point{fill:#2563eb}svg .threshold{stroke:#dc2626;stroke-dasharray:4 3}svg .axis{font-size:10px;fill:#555}
        details.signature{border:1px solid #d5d8de;border-radius:.3rem;margin:.4rem 0;padding:.3rem \
        .6rem}details.signature summary{cursor:pointer}
        .triage.untriaged{color:#991b1b;font-weight:600}.triage.triaged{color:#065f46}
        .exchange{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:.6rem}.exchange \
        pre{background:#f6f7f9;padding:.5rem;overflow:auto;max-height:24rem;white-space:pre-wrap;word-break:break-all}
        td.monolith code{color:#991b1b}td.service code{color:#065f46}.none,.more{color:#555}
        @media print{details.signature{break-inside:avoid}}
        """
}
