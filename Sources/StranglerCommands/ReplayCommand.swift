public import ArgumentParser
import AsyncHTTPClient
import Foundation
import Gateway
import JSON
import NIOCore
import NIOHTTP1
import ServiceKit

/// `strangler replay FILE.har --target URL [--rate N]`: sends a HAR's requests to a target, and says what came back.
public struct ReplayCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay the requests of a HAR file (strangler record's, or a browser's) against a target.",
        discussion: """
            Each entry's method, path and query, headers and body go to the target in the file's order (the \
            target's path, if any, is put before each path; Host, Content-Length and hop-by-hop headers are set \
            anew; HTTP/2 pseudo-headers are left out). Without --rate one request at a time, each after the \
            previous answer; with --rate N, N a second on a fixed schedule, up to --concurrency at once. A progress \
            line on a terminal, then a summary: status counts, how many answered with the recorded status, latency \
            percentiles and errors (--output json for one JSON object).

            Exit status: 0 every request answered, 1 some got no answer (refused, reset, timed out), 2 usage error \
            or a file that is not HAR.

            Examples:
              strangler replay orders.har --target http://127.0.0.1:8080
              strangler replay exported-from-chrome.har --target http://127.0.0.1:8080 --rate 50
            """
    )

    @Argument(help: ArgumentHelp("The HAR file.", valueName: "file.har"))
    public var file: String

    @Option(help: "Where to send the requests: http://host:port[/prefix].")
    public var target: String

    @Option(help: "Requests a second (default: one after another, as fast as answered).")
    public var rate: Double?

    @Option(help: "Requests waiting for an answer at most, with --rate.")
    public var concurrency: Int = 32

    @Option(help: "Deadline of each request, in seconds.")
    public var timeout: Double = 30

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    public init() {}

    public func validate() throws {
        guard Self.base(self.target) != nil else {
            throw ValidationError(
                "--target must be an http(s) URL such as http://127.0.0.1:8080, not \"\(self.target)\"")
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a number above 0") }
        guard self.concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard self.timeout > 0, self.timeout.isFinite else { throw ValidationError("--timeout must be above 0") }
    }

    /// `http://host:port/prefix` without a trailing slash; nil when not an http(s) URL without query.
    static func base(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.query == nil, components.fragment == nil
        else { return nil }
        var base = text
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Headers a replayed request does not carry as recorded.
    static let dropped: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
        "proxy-connection", "trailer",
    ]

    /// One request's outcome.
    struct Result: Sendable {
        var status: Int?
        var recorded: Int
        var seconds: Double
        var error: String?
    }

    public func run() async throws {
        let entries: [HAR.Entry]
        do {
            entries = try HAR.read(self.file)
        } catch {
            FileHandle.standardError.write(Data("strangler replay: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let summary = await self.replay(entries)
        switch self.output {
        case .table: print(summary.text(file: self.file, target: self.target))
        case .json: print(summary.json.prettyJSONText)
        }
        if summary.errors > 0 { throw ExitCode(1) }
    }

    func replay(_ entries: [HAR.Entry], client: HTTPClient = .toolkit) async -> ReplaySummary {
        let base = Self.base(self.target)!
        let progress = ReplayProgress(total: entries.count, terminal: isatty(STDERR_FILENO) == 1)
        let start = ContinuousClock.now
        var results: [Result] = []
        results.reserveCapacity(entries.count)
        if let rate = self.rate {
            results = await withTaskGroup(of: (Int, Result).self) { group in
                var collected: [(Int, Result)] = []
                var running = 0
                for (index, entry) in entries.enumerated() {
                    let due = start + .milliseconds(Int64((Double(index) / rate * 1000).rounded()))
                    if running >= self.concurrency, let done = await group.next() {
                        collected.append(done)
                        progress.add(done.1)
                        running -= 1
                    }
                    try? await Task.sleep(until: due, clock: .continuous)
                    let timeout = self.timeout
                    group.addTask { (index, await Self.send(entry, base: base, client: client, timeout: timeout)) }
                    running += 1
                }
                for await done in group {
                    collected.append(done)
                    progress.add(done.1)
                }
                return collected.sorted { $0.0 < $1.0 }.map(\.1)
            }
        } else {
            for entry in entries {
                let result = await Self.send(entry, base: base, client: client, timeout: self.timeout)
                results.append(result)
                progress.add(result)
            }
        }
        progress.finish()
        let elapsed = ContinuousClock.now - start
        return ReplaySummary(
            results: results,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    static func send(_ entry: HAR.Entry, base: String, client: HTTPClient, timeout: Double) async -> Result {
        var request = HTTPClientRequest(url: base + entry.target)
        request.method = HTTPMethod(rawValue: entry.method)
        for header in entry.request.headers where !Self.dropped.contains(header.name.lowercased()) {
            request.headers.add(name: header.name, value: header.value)
        }
        if !entry.request.body.isEmpty { request.body = .bytes(ByteBuffer(bytes: entry.request.body)) }
        let started = ContinuousClock.now
        func seconds() -> Double {
            let elapsed = ContinuousClock.now - started
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            _ = try await response.body.collect(upTo: 64 << 20)
            return Result(status: Int(response.status.code), recorded: entry.status, seconds: seconds())
        } catch {
            return Result(
                status: nil, recorded: entry.status, seconds: seconds(),
                error: "\(entry.method) \(entry.target): \(ProbeText.describe(error))")
        }
    }
}

/// What a replay found.
struct ReplaySummary: Sendable {
    var results: [ReplayCommand.Result]
    var seconds: Double

    var errors: Int { self.results.filter { $0.error != nil }.count }
    var asRecorded: Int { self.results.filter { $0.status == $0.recorded }.count }

    /// Status → count, in order of status.
    var statuses: [(status: Int, count: Int)] {
        Dictionary(grouping: self.results.compactMap(\.status), by: { $0 }).map { ($0.key, $0.value.count) }.sorted {
            $0.status < $1.status
        }
    }

    /// The latency at `share` (0–1) of the answered requests, in milliseconds (nearest rank).
    func percentile(_ share: Double) -> Double? {
        let sorted = self.results.filter { $0.status != nil }.map(\.seconds).sorted()
        guard !sorted.isEmpty else { return nil }
        let rank = max(0, min(sorted.count - 1, Int((share * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[rank] * 1000
    }

    func text(file: String, target: String) -> String {
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f ms", $0) } ?? "—" }
        let rate = self.seconds > 0 ? String(format: "%.1f/s", Double(self.results.count) / self.seconds) : "—"
        var classes: [String: Int] = [:]
        for (status, count) in self.statuses { classes["\(status / 100)xx", default: 0] += count }
        let counts = self.statuses.map { "\($0.status) ×\($0.count)" }.joined(separator: ", ")
        let byClass = classes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        var status = "status: " + (counts.isEmpty ? "none" : counts)
        if !byClass.isEmpty { status += " (" + byClass + ")" }
        status += "; \(self.asRecorded) of \(self.results.count) as recorded"
        let duration = String(format: "%.2f s", self.seconds)
        let latency =
            "latency: p50 " + ms(self.percentile(0.5)) + ", p90 " + ms(self.percentile(0.9)) + ", p99 "
            + ms(self.percentile(0.99)) + ", max " + ms(self.percentile(1))
        var lines: [String] = [
            "replayed \(self.results.count) requests from \(file) to \(target) in \(duration) (\(rate))", status,
            latency,
            "errors: \(self.errors)",
        ]
        lines += self.results.compactMap(\.error).prefix(10).map { "  \($0)" }
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        return .object([
            ("requests", .number(Double(self.results.count))),
            ("seconds", number(self.seconds)),
            ("statuses", .object(self.statuses.map { (String($0.status), .number(Double($0.count))) })),
            ("asRecorded", .number(Double(self.asRecorded))),
            (
                "latencyMs",
                .object([
                    ("p50", number(self.percentile(0.5))), ("p90", number(self.percentile(0.9))),
                    ("p99", number(self.percentile(0.99))), ("max", number(self.percentile(1))),
                ])
            ),
            ("errors", .array(self.results.compactMap(\.error).map(JSONValue.string))),
        ])
    }
}

/// The progress line of a replay on a terminal (`\r`-rewritten, at most 10 times a second); nothing otherwise.
final class ReplayProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let terminal: Bool
    private var done = 0
    private var failed = 0
    private var last = ContinuousClock.now - .seconds(1)

    init(total: Int, terminal: Bool) {
        self.total = total
        self.terminal = terminal
    }

    func add(_ result: ReplayCommand.Result) {
        guard self.terminal else { return }
        self.lock.lock()
        defer { self.lock.unlock() }
        self.done += 1
        if result.error != nil { self.failed += 1 }
        let now = ContinuousClock.now
        guard now - self.last >= .milliseconds(100) || self.done == self.total else { return }
        self.last = now
        FileHandle.standardError.write(Data("\r\(self.done)/\(self.total) answered, \(self.failed) failed".utf8))
    }

    func finish() {
        if self.terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Words for a client error.
enum ProbeText {
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .deadlineExceeded { return "no answer within the deadline" }
        let text = "\(error)"
        return text.contains("refused") ? "connection refused" : text
    }
}
