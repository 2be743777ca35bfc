public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import NIOHTTP1

/// `strangler record --route PATTERN --out FILE.har [--limit N]`: live traffic of some routes, redacted, as HAR.
public struct RecordCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record live traffic of some routes through the running proxy, redacted, as a HAR 1.2 file.",
        discussion: """
            Asks the running proxy (POST /admin/record) for the next exchanges of the routes PATTERN names (a route \
            id, or * and ? as in `strangler stage`), in any stage, until --limit were relayed or --seconds passed, \
            and writes them as HAR 1.2: method, URL, headers and bodies of both the request and the answer, each \
            body up to the proxy's --max-compare-bytes. Personal data is redacted as in shadow samples (the table's \
            "redact" rules and the route's shadow.redact; credentials and cookies never kept). `strangler replay` \
            sends such a file (or a browser's) to a target. The file is written whole or not at all, and never over \
            an existing one without --force.

            Exit status: 0 written (an empty recording too: 0 exchanges), 2 usage error or the file exists, 3 the \
            proxy is unreachable.

            Examples:
              strangler record --route orders.get --out orders.har --limit 50
              strangler record --route 'orders.*' --out orders.har --seconds 30
            """
    )

    @Option(help: ArgumentHelp("The routes to record: an id, or a pattern with * and ?.", valueName: "pattern"))
    public var route: String

    @Option(help: ArgumentHelp("The HAR file to write.", valueName: "file.har"))
    public var out: String

    @Option(help: "Exchanges to record at most.")
    public var limit: Int = 100

    @Option(help: "Seconds to wait for them at most (up to 240).")
    public var seconds: Double = 60

    @Flag(help: "Overwrite --out if it exists.")
    public var force: Bool = false

    @OptionGroup public var endpoint: AdminOptions

    public init() {}

    public func validate() throws {
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be from 1 to 10000") }
        guard self.seconds > 0, self.seconds <= 240 else {
            throw ValidationError("--seconds must be above 0 and at most 240")
        }
        guard !self.route.isEmpty else { throw ValidationError("--route must name a route id or a pattern") }
    }

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        if !self.force, FileManager.default.fileExists(atPath: self.out) {
            return CommandOutcome(
                error: "strangler record: \(self.out) exists; pass --force to overwrite it, or --out another file\n",
                status: 2)
        }
        let answer: AdminClient.Answer
        do {
            let client = try self.endpoint.client()
            let body = JSONValue.object([
                ("route", .string(self.route)), ("limit", .number(Double(self.limit))),
                ("seconds", .number(self.seconds)),
            ])
            answer = try await client.send(.POST, "/admin/record", body: body.jsonText)
        } catch {
            return CommandOutcome(error: "strangler record: \(error.description)\n", status: error.refused ? 3 : 2)
        }
        guard answer.status == 200, let har = answer.json, let entries = har["log"]?["entries"]?.arrayValue else {
            return CommandOutcome(
                error: "strangler record: POST /admin/record answered \(answer.status): \(answer.errorMessage)\n",
                status: 2)
        }
        do {
            try RouteFile.refuseLink(self.out)
            try AtomicFile.write(har.prettyJSONText + "\n", to: self.out)
        } catch {
            return CommandOutcome(error: "strangler record: cannot write \(self.out): \(error)\n", status: 2)
        }
        return CommandOutcome(
            output:
                "\(self.out): \(entries.count) exchange\(entries.count == 1 ? "" : "s") of \(self.route) recorded "
                + "(redacted)\n")
    }
}
