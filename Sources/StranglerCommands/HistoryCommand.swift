import AdminAPI
public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import Reports
import RouteTable

/// `strangler history [ROUTE]`: the audit log.
public struct HistoryCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show the audit log of route-table changes (all, or one route's): who, when, why, what.",
        discussion: """
            Reads <data>/audit.jsonl (through the proxy when it runs): stage changes (with FORCED when the gates were \
            overridden), undos, triage decisions and whole-table replacements, oldest first. --output json gives the \
            entries without the before/after tables (those are in the file).

            Exit status: 0 shown, 2 usage error, 3 proxy unreachable.

            Examples:
              strangler history
              strangler history contacts.get --limit 5
              strangler history --output json
            """
    )

    @Argument(help: "Only this route's entries.")
    public var route: String?

    @Option(help: "Show at most this many entries (the most recent).")
    public var limit: Int = 50

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @OptionGroup public var control: ReadingOptions

    public init() {}

    public func validate() throws {
        guard (1...10_000).contains(self.limit) else {
            throw ValidationError("--limit must be from 1 to 10000, not \(self.limit)")
        }
    }

    public func run() async throws {
        try await self.outcome(style: .detect()).finish()
    }

    func outcome(style: TerminalStyle = .plain) async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(self.control.control)
            let page = try await session.history(route: self.route, limit: self.limit)
            if self.output == .json { return CommandOutcome(output: page.json.prettyJSONText + "\n") }
            let entries = page.entries
            guard !entries.isEmpty else {
                return CommandOutcome(output: "no changes recorded\(self.route.map { " for \($0)" } ?? "")\n")
            }
            var table = TextTable(headers: ["TIME", "ACTOR", "ACTION", "CHANGE", "REASON"])
            for entry in entries {
                table.rows.append([
                    entry.time ?? "", entry.actor ?? "", Self.action(entry, style: style), Self.change(entry),
                    entry.reason ?? "",
                ])
            }
            let total = page.total
            let more = total > entries.count ? " (the last \(entries.count) of \(total); --limit shows more)" : ""
            return CommandOutcome(
                output: table.render(style: style) + "\(entries.count) entr\(entries.count == 1 ? "y" : "ies")\(more)\n"
            )
        } catch {
            return CommandOutcome(error: "strangler history: \(error.message)\n", status: error.status)
        }
    }

    static func action(_ entry: AuditRecord, style: TerminalStyle) -> String {
        let action = entry.action ?? "?"
        return entry.forced ? action + " " + style.paint("FORCED", .red) : action
    }

    /// `contacts.get transform→coexist`, `contacts.* (2): coexist`, `triage contacts.get 8c0f… accepted`, …
    static func change(_ entry: AuditRecord) -> String {
        let changes = entry.changes
        switch entry.action {
        case "triage":
            let ignore = entry.ignore
            return "\(entry.route ?? "?") \(entry.signature ?? "?") \(entry.decision ?? "")"
                + (ignore.isEmpty ? "" : " (ignore \(ignore.joined(separator: ", ")))")
        case "edit":
            let what =
                changes.isEmpty ? entry.routes.joined(separator: ", ") : changes.map(Self.move).joined(separator: ", ")
            return "edited by hand" + (what.isEmpty ? "" : ": \(what)")
        case "undo":
            let moves = changes.map(Self.move).joined(separator: ", ")
            return "undo \(entry.undoes?.action ?? "?") of \(entry.undoes?.time ?? "?")"
                + (moves.isEmpty ? "" : ": \(moves)")
        default:
            if !changes.isEmpty {
                if let pattern = entry.pattern {
                    let targets = Set(changes.map(\.to))
                    if changes.count > 2, targets.count == 1 {
                        return "\(pattern) (\(changes.count) routes) →\(targets.first!.rawValue)"
                    }
                    return "\(pattern): " + changes.map(Self.move).joined(separator: ", ")
                }
                return changes.map(Self.move).joined(separator: ", ")
            }
            let routes = entry.routes
            return routes.isEmpty ? "table replaced" : "table replaced: \(routes.joined(separator: ", "))"
        }
    }

    static func move(_ change: StageChange) -> String {
        "\(change.route) \(change.from.rawValue)→\(change.to.rawValue)"
    }
}
