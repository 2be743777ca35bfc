public import ArgumentParser
import Foundation
import JSON
import RouteTable
import ServiceKit
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strangler traffic`: realistic CRM traffic against the proxy (or any CRM endpoint), so that a newcomer sees
/// compared samples and reports fill.
public struct TrafficCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "traffic",
        abstract: "Send realistic CRM traffic (reads and writes, mostly on a few hot accounts) through the proxy.",
        discussion: """
            First lists accounts, contacts, leads and deals through --target to learn their ids, and picks the \
            --hot-accounts accounts with the most contacts; then sends --rps requests a second for --duration, \
            open-loop (a slow target does not slow the sending; at most --max-in-flight wait for answers, the rest are \
            skipped and counted). About 72% reads (contacts by id and by account, accounts, leads, deals by stage, the \
            pipeline) and 28% writes (PATCH contacts, leads and deals; new leads and contacts; lead conversion; \
            deleting contacts it created); 80% of the requests about one record go to the hot accounts.

            A progress line on standard error (updated in place on a terminal, every 5 s otherwise), then a table per \
            operation on standard output: sent, answers by status class, errors, p50 and p99 latency (with --output \
            json, the same as one JSON object). Ctrl-C stops early and still prints the result; a second Ctrl-C quits \
            at once.

            Exit status: 0 done, 2 bad option, 3 the target cannot be reached or is not the CRM.

            Example:
              strangler traffic
              strangler traffic --rps 200 --duration 2m --target http://127.0.0.1:8080
              strangler traffic --duration 10s --output json
            """
    )

    @Option(help: ArgumentHelp("Requests per second.", valueName: "n"))
    public var rps: Int = 50

    @Option(help: ArgumentHelp("How long to send: 60s, 2m, 500ms.", valueName: "duration"))
    public var duration: String = "60s"

    @Option(help: ArgumentHelp("Where to send: the proxy (or the monolith, or a service, directly).", valueName: "url"))
    public var target: String = "http://127.0.0.1:8080"

    @Option(help: ArgumentHelp("How many accounts get most of the traffic.", valueName: "n"))
    public var hotAccounts: Int = 5

    @Option(
        help: ArgumentHelp(
            "Requests waiting for an answer at most; beyond, requests are skipped and counted.", valueName: "n"))
    public var maxInFlight: Int = 512

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    public init() {}

    /// The longest run accepted: a day.
    static let longestDuration: Duration = .seconds(86_400)

    public func validate() throws {
        guard (1...100_000).contains(self.rps) else {
            throw ValidationError("--rps must be from 1 to 100000, not \(self.rps)")
        }
        guard let duration = DurationText.parse(self.duration) else {
            throw ValidationError("--duration must be a duration such as 60s, 2m or 500ms, not \"\(self.duration)\"")
        }
        guard duration > .zero, duration <= Self.longestDuration else {
            throw ValidationError("--duration must be more than 0 and at most 1440m, not \(self.duration)")
        }
        guard FeedEndpoint(url: self.target) != nil else {
            throw ValidationError("--target must be an http URL such as http://127.0.0.1:8080, not \"\(self.target)\"")
        }
        guard (1...1000).contains(self.hotAccounts) else {
            throw ValidationError("--hot-accounts must be from 1 to 1000, not \(self.hotAccounts)")
        }
        guard (1...100_000).contains(self.maxInFlight) else {
            throw ValidationError("--max-in-flight must be from 1 to 100000, not \(self.maxInFlight)")
        }
    }

    /// The run the flags describe (after `validate()`).
    var runConfiguration: TrafficRun.Configuration {
        TrafficRun.Configuration(
            target: FeedEndpoint(url: self.target)!, rate: self.rps, duration: DurationText.parse(self.duration)!,
            hotAccounts: self.hotAccounts,
            maxInFlight: self.maxInFlight)
    }

    public func run() async throws {
        let interrupts = LockedValue(0)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let terminal = isatty(STDERR_FILENO) == 1
        let configuration = self.runConfiguration
        let status = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals {
                    if interrupts.withLock({ count in
                        count += 1
                        return count
                    }) >= 2 {
                        FileHandle.standardError.write(Data("\nstrangler traffic: stopped\n".utf8))
                        Foundation.exit(130)
                    }
                }
            }
            let status = await Self.execute(
                configuration, terminal: terminal, progressEvery: .seconds(terminal ? 0.5 : 5), format: self.output,
                output: { text, error in
                    try? (error ? FileHandle.standardError : FileHandle.standardOutput).write(
                        contentsOf: Data(text.utf8))
                },
                shouldStop: { interrupts.value > 0 })
            group.cancelAll()
            return status
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Discovers, sends and reports; returns the exit status. `output` gets text for standard output (false) or
    /// standard error (true).
    static func execute(
        _ configuration: TrafficRun.Configuration, terminal: Bool, progressEvery: Duration,
        format: OutputFormat = .table,
        output: @escaping @Sendable (String, Bool) -> Void, shouldStop: @escaping @Sendable () -> Bool = { false }
    ) async -> Int32 {
        let run = TrafficRun(configuration: configuration)
        let pools: TrafficPools
        do {
            pools = try await run.discover()
        } catch {
            output("strangler traffic: \(error)\n", true)
            return 3
        }
        output(
            "traffic: \(pools.accounts.count) accounts, \(pools.contacts.count) contacts, \(pools.leads.count) leads, "
                + "\(pools.deals.count) deals found; "
                + "hot accounts \(pools.hotAccounts.joined(separator: ", "))\n"
                + "sending \(configuration.rate) requests/s for \(DurationFormat.text(configuration.duration)) "
                + "(\(run.plannedRequests) requests) to \(configuration.target)\n", true)
        let previous = LockedValue<Progress>(Progress())
        let final = await run.run(pools: pools, progressEvery: progressEvery, shouldStop: shouldStop) { snapshot in
            let total = snapshot.total
            let rate = previous.withLock { last in
                let seconds = Self.seconds(snapshot.elapsed - last.elapsed)
                let rate = seconds > 0 ? Double(total.completed - last.completed) / seconds : 0
                last = Progress(completed: total.completed, elapsed: snapshot.elapsed)
                return rate
            }
            let line = Self.progressLine(snapshot, currentRate: rate)
            output(terminal ? "\r\u{1B}[K\(line)" : "\(line)\n", true)
        }
        if terminal { output("\n", true) }
        switch format {
        case .table: output(Self.summary(final, configuration: configuration), false)
        case .json: output(Self.summaryJSON(final, configuration: configuration).prettyJSONText + "\n", false)
        }
        return 0
    }

    private struct Progress: Sendable {
        var completed = 0
        var elapsed: Duration = .zero
    }

    /// `12.5s/60s  sent 625/3000  2xx 610  4xx 12  5xx 0  errors 3  50.1 rps  p50 2.1ms  p99 9.0ms`
    static func progressLine(_ snapshot: TrafficSnapshot, currentRate: Double) -> String {
        let total = snapshot.total
        var parts = [
            "\(DurationFormat.text(snapshot.elapsed))", "sent \(total.sent)/\(snapshot.planned)",
            "2xx \(total.classes[2])",
            "4xx \(total.classes[4])", "5xx \(total.classes[5])", "errors \(total.errors)",
            String(format: "%.1f rps", currentRate),
            "p50 \(DurationFormat.latency(total.latency.percentile(0.5)))",
            "p99 \(DurationFormat.latency(total.latency.percentile(0.99)))",
        ]
        if snapshot.skipped > 0 { parts.append("skipped \(snapshot.skipped)") }
        return parts.joined(separator: "  ")
    }

    /// The table per operation, and what the run was.
    static func summary(_ snapshot: TrafficSnapshot, configuration: TrafficRun.Configuration) -> String {
        let total = snapshot.total
        let seconds = Self.seconds(snapshot.elapsed)
        var lines: [String] = []
        let writeShare = total.sent > 0 ? Double(snapshot.writes) / Double(total.sent) * 100 : 0
        let hotShare =
            snapshot.entityRequests > 0 ? Double(snapshot.hotRequests) / Double(snapshot.entityRequests) * 100 : 0
        lines.append(
            "\(total.sent) requests in \(DurationFormat.text(snapshot.elapsed)) to \(configuration.target) "
                + String(
                    format: "(%.1f rps): %.0f%% writes, %.0f%% of record requests on the %d hot accounts",
                    seconds > 0 ? Double(total.completed) / seconds : 0, writeShare, hotShare, configuration.hotAccounts
                ))
        let header = ["operation", "sent", "2xx", "3xx", "4xx", "5xx", "errors", "p50", "p99"]
        var rows: [[String]] = []
        func row(_ name: String, _ counts: TrafficCounts) -> [String] {
            [
                name, "\(counts.sent)", "\(counts.classes[2])", "\(counts.classes[3])", "\(counts.classes[4])",
                "\(counts.classes[5])",
                "\(counts.errors)",
                DurationFormat.latency(counts.latency.percentile(0.5)),
                DurationFormat.latency(counts.latency.percentile(0.99)),
            ]
        }
        for operation in TrafficOperation.allCases {
            if let counts = snapshot.byOperation[operation], counts.sent > 0 {
                rows.append(row(operation.rawValue, counts))
            }
        }
        rows.append(row("total", total))
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for cells in [header] + rows {
            let text = cells.enumerated().map { column, cell in
                column == 0
                    ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            lines.append(text.joined(separator: "  "))
        }
        if total.classes[1] > 0 { lines.append("\(total.classes[1]) informational (1xx) answers") }
        if snapshot.skipped > 0 {
            lines.append(
                "\(snapshot.skipped) requests skipped: \(configuration.maxInFlight) were waiting for answers (the "
                    + "target is slower than --rps)"
            )
        }
        if total.sent + snapshot.skipped < snapshot.planned {
            lines.append("stopped early: \(total.sent + snapshot.skipped) of \(snapshot.planned) planned requests sent")
        }
        if let error = snapshot.lastError, total.errors > 0 { lines.append("last error: \(error)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What ``summary(_:configuration:)`` says, as JSON: `target`, `elapsedSeconds`, `planned`, `skipped`, `writes`,
    /// `hotAccounts`, `operations` (per operation, then `total`: `sent`, `classes` {`1xx`…`5xx`}, `errors`, `p50Ms`,
    /// `p99Ms`) and `lastError`.
    static func summaryJSON(_ snapshot: TrafficSnapshot, configuration: TrafficRun.Configuration) -> JSONValue {
        func counts(_ counts: TrafficCounts) -> JSONValue {
            func milliseconds(_ duration: Duration?) -> JSONValue {
                duration.map { .number((Self.seconds($0) * 1e6).rounded() / 1e3) } ?? .null
            }
            return .object([
                ("sent", .number(Double(counts.sent))),
                ("classes", .object((1...5).map { ("\($0)xx", .number(Double(counts.classes[$0]))) })),
                ("errors", .number(Double(counts.errors))),
                ("p50Ms", milliseconds(counts.latency.percentile(0.5))),
                ("p99Ms", milliseconds(counts.latency.percentile(0.99))),
            ])
        }
        var operations: [(key: String, value: JSONValue)] = []
        for operation in TrafficOperation.allCases {
            if let value = snapshot.byOperation[operation], value.sent > 0 {
                operations.append((operation.rawValue, counts(value)))
            }
        }
        operations.append(("total", counts(snapshot.total)))
        return .object([
            ("target", .string("\(configuration.target)")),
            ("elapsedSeconds", .number((Self.seconds(snapshot.elapsed) * 1000).rounded() / 1000)),
            ("planned", .number(Double(snapshot.planned))),
            ("skipped", .number(Double(snapshot.skipped))),
            ("writes", .number(Double(snapshot.writes))),
            ("hotAccounts", .number(Double(configuration.hotAccounts))),
            ("hotRequests", .number(Double(snapshot.hotRequests))),
            ("recordRequests", .number(Double(snapshot.entityRequests))),
            ("operations", .object(operations)),
            ("lastError", snapshot.lastError.map(JSONValue.string) ?? .null),
        ])
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
