public import ArgumentParser
import Foundation
import JSON
import NIOHTTP1
import Reports

/// `strangler instances`: the proxies that route by the shared store, and which of them lag or went silent.
public struct InstancesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "instances",
        abstract: "List the proxies on the shared store: the version each routes by, and any behind or silent.",
        discussion: """
            Reads GET /admin/instances of a running proxy. Each proxy on the store reports itself every few seconds \
            (--instance-report): its id, its addresses, the table version it routes by, when it started and when it \
            last reported, by the store's clock. BEHIND: it routes by a version older than the store's head (a proxy \
            that has not applied a change; normal for at most one report interval after a change). SILENT: it has \
            not reported for three report intervals (stopped, hung, or cut off from the store). A proxy without \
            --store lists itself only.

            Exit status: 0 every instance is current, 1 some instance is behind or silent, 2 usage error, 3 proxy \
            unreachable (or its store: 503).

            Examples:
              strangler instances
              strangler instances --admin http://127.0.0.1:8091 --output json
            """
    )

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @OptionGroup public var endpoint: AdminOptions

    public init() {}

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        let body: JSONValue
        switch await self.endpoint.read("/admin/instances", command: "instances") {
        case .success(let value): body = value
        case .failure(let outcome): return outcome.outcome
        }
        let instances = body["instances"]?.arrayValue ?? []
        let flagged = instances.filter { $0["standing"]?.stringValue != "current" }
        let status: Int32 = flagged.isEmpty ? 0 : 1
        if self.output == .json { return CommandOutcome(output: body.prettyJSONText + "\n", status: status) }
        let head = body["version"]?.numberValue.map { "version \(Int($0))" } ?? "no table"
        var text = "the store's head: \(head)\n"
        guard !instances.isEmpty else {
            return CommandOutcome(output: text + "no instance has reported yet\n", status: status)
        }
        var table = TextTable(headers: ["ID", "PROXY", "ADMIN", "VERSION", "STARTED", "LAST SEEN", "STANDING"])
        for instance in instances {
            let standing = instance["standing"]?.stringValue ?? "current"
            let silent = instance["silentSeconds"]?.numberValue ?? 0
            table.rows.append([
                (instance["id"]?.stringValue ?? "") + (instance["self"]?.boolValue == true ? " (this one)" : ""),
                instance["proxy"]?.stringValue ?? "", instance["admin"]?.stringValue ?? "",
                "\(Int(instance["version"]?.numberValue ?? 0))", instance["startedAt"]?.stringValue ?? "",
                String(format: "%.1fs ago", silent),
                standing == "current" ? "current" : standing.uppercased(),
            ])
        }
        text += table.render(style: .plain)
        if !text.hasSuffix("\n") { text += "\n" }
        if !flagged.isEmpty {
            text += "\(flagged.count) instance\(flagged.count == 1 ? "" : "s") behind or silent\n"
        }
        return CommandOutcome(output: text, status: status)
    }
}

/// A read command's failure to get its answer, as the outcome it ends with.
struct ReadFailure: Error {
    var outcome: CommandOutcome
}

extension AdminOptions {
    /// `GET path` on the proxy's admin API: its JSON body, or the outcome `strangler COMMAND` ends with (the proxy
    /// unreachable: 3; a bad flag: 2).
    func read(_ path: String, command: String) async -> Result<JSONValue, ReadFailure> {
        do {
            let client = try self.client()
            return .success(try await ControlSession.call(client, .GET, path).body)
        } catch let failure as CommandFailure {
            return .failure(
                ReadFailure(
                    outcome: CommandOutcome(error: "strangler \(command): \(failure.message)\n", status: failure.status)
                ))
        } catch let failure as AdminClient.Failure {
            return .failure(
                ReadFailure(
                    outcome: CommandOutcome(
                        error: "strangler \(command): \(failure.description)\n", status: ControlExit.usage)))
        } catch {
            return .failure(
                ReadFailure(
                    outcome: CommandOutcome(error: "strangler \(command): \(error)\n", status: ControlExit.usage)))
        }
    }
}
