public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import NIOHTTP1
public import Reports
import RouteTable

/// `strangler report`: the diff report of every route (or some), for a terminal, a script, a pull request, a browser
/// or a CI pipeline.
public struct ReportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "report",
        abstract:
            "Report what shadow traffic showed per route, and whether each route may move on (text, json, markdown, "
            + "html, junit).",
        discussion: """
            Per route: stage; compared samples since its last stage change and the match rate with its 95% confidence \
            interval (Wilson); mismatch signatures by count with their pointers, first and last seen, triage and \
            newest samples; the top differing pointers; shadow errors, timeouts, drops, skips and stale pairs; the \
            sync lag; and the gates' verdict on its next move ("ready to eliminate", or every reason it is not). Asks \
            the proxy's admin API (GET /admin/report); with no proxy running, reads routes.json and \
            <data>/diffs.sqlite itself.

            --since limits signatures (last seen), samples, the chart's buckets and the shadow traffic counters to \
            that window; the gate's counts are always since the route's last stage change. Colours only on a terminal, \
            never with NO_COLOR. docs/reports.md describes every format and the JSON schema.

            Exit status: 0 written (any format; junit: no route below its gate), 1 junit with a route below its gate \
            (the report is written first), 2 usage error (bad flag, unknown route, bad token), 3 proxy unreachable.

            Examples:
              strangler report
              strangler report --route 'contacts.*' --since 1h --format html --out report.html
              strangler report --format junit --out gates.xml    # CI: fails while a route is below its gate
            """
    )

    @Option(help: ArgumentHelp("Only this route, or the routes a pattern names (contacts.*).", valueName: "id|pattern"))
    public var route: String?

    @Option(help: ArgumentHelp("Only this recent window: \(ReportWindow.help).", valueName: "duration"))
    public var since: ReportSince?

    @Option(help: ArgumentHelp("text, json, markdown, html or junit.", valueName: "format"))
    public var format: ReportFormat = .text

    @Option(
        help: ArgumentHelp(
            "The same as --format, as every reading command spells it (--output json).", valueName: "format"))
    public var output: ReportFormat?

    @Option(
        help: ArgumentHelp("Write the report to this file (atomically) instead of standard output.", valueName: "file"))
    public var out: String?

    @Option(help: "Newest samples per signature (0 to 20).")
    public var samples: Int = 3

    @Option(
        help: ArgumentHelp(
            "Link samples' traces here, {traceId} standing for the id (default: the proxy's --trace-url, else "
                + "STRANGLER_TRACE_URL).",
            valueName: "url"))
    public var traceUrl: String?

    @OptionGroup public var control: ReadingOptions

    public init() {}

    public func validate() throws {
        guard (0...20).contains(self.samples) else {
            throw ValidationError("--samples must be from 0 to 20, not \(self.samples)")
        }
        if let out, out.isEmpty { throw ValidationError("--out needs a file name") }
        if let template = self.traceURLTemplate, case .failure(let problem) = TraceURLTemplate.check(template) {
            throw ValidationError(
                "\(self.traceUrl == nil ? "STRANGLER_TRACE_URL" : "--trace-url") \(problem) (\(template))")
        }
        if let output, self.format != .text, output != self.format {
            throw ValidationError(
                "--output \(output.rawValue) and --format \(self.format.rawValue) disagree: give one of them")
        }
    }

    /// `--trace-url`, else `STRANGLER_TRACE_URL` (empty: none).
    var traceURLTemplate: String? {
        let text = self.traceUrl ?? ProcessInfo.processInfo.environment["STRANGLER_TRACE_URL"]
        return text?.isEmpty == false ? text : nil
    }

    /// `--output` or `--format`.
    var chosenFormat: ReportFormat { self.output ?? self.format }

    public func run() async throws {
        try await self.outcome(style: .detect()).finish()
    }

    func outcome(style: TerminalStyle = .plain, now: Date = Date()) async -> CommandOutcome {
        var options = ReportOptions(selector: self.route, window: self.since?.window, now: now)
        options.samplesPerSignature = self.samples
        options.traceURL = self.traceURLTemplate
        var report: Report
        do {
            let session = try await ControlSession.open(self.control.control)
            report = try await session.report(options)
            // The flag (or the environment) wins over the proxy's.
            if let template = self.traceURLTemplate { report.traceURL = template }
        } catch {
            return CommandOutcome(error: "strangler report: \(error.message)\n", status: error.status)
        }
        let text: String =
            switch self.chosenFormat {
            case .text: ReportText.render(report, style: self.out == nil ? style : .plain)
            case .json: report.json.prettyJSONText
            case .markdown: report.markdown
            case .html: report.html
            case .junit: report.junit
            }
        let status = self.chosenFormat == .junit && report.hasBlockedRoutes ? ControlExit.refused : ControlExit.done
        guard let out else { return CommandOutcome(output: text, status: status) }
        do {
            try Report.write(text, to: out)
        } catch {
            return CommandOutcome(error: "strangler report: cannot write \(out): \(error)\n", status: ControlExit.usage)
        }
        return CommandOutcome(
            output: "\(self.chosenFormat.rawValue) report written to \(out): \(report.summaryText)\n", status: status)
    }
}

/// `--format`.
public enum ReportFormat: String, ExpressibleByArgument, Sendable, CaseIterable {
    case text, json, markdown, html, junit
}

/// `--since`: a duration (`30m`, `1h`, `7d`).
public struct ReportSince: ExpressibleByArgument, Sendable {
    public let window: ReportWindow

    public init?(argument: String) {
        guard let window = ReportWindow(argument) else { return nil }
        self.window = window
    }

    public static var defaultCompletionKind: CompletionKind { .list(["30m", "1h", "1d", "7d"]) }
}

extension ControlSession {
    /// The report, from the proxy's `GET /admin/report?format=json`, or built here from routes.json and the diff store.
    func report(_ options: ReportOptions) async throws(CommandFailure) -> Report {
        switch self.mode {
        case .proxy(let client):
            let query = Self.query([
                "format": "json", "route": options.selector, "since": options.window?.text,
                "samples": String(options.samplesPerSignature),
            ])
            let answer = try await Self.call(client, .GET, "/admin/report" + query)
            do {
                var report = try Report(json: answer.body)
                report.source = self.target
                return report
            } catch {
                throw CommandFailure(
                    message: "the proxy's report cannot be read: \(error.message)", status: ControlExit.usage)
            }
        case .file(let operations):
            do {
                return try await operations.report(options, source: self.target)
            } catch {
                throw CommandFailure(error)
            }
        }
    }
}
