public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import Reports
import RouteTable

/// `strangler undo`: reverts the last change of the route table.
public struct UndoCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "undo",
        abstract: "Revert the last change of the route table (from the audit log), exactly.",
        discussion: """
            Restores the table as it was before the last change in <data>/audit.jsonl, only if the live table is still \
            the one that change left (else it refuses: someone changed it since). The undo is itself a change in the \
            audit log, so a second undo redoes. Undo passes no gate: it puts back a table that was live.

            Exit status: 0 undone, 1 refused (nothing to undo, or the table changed since), 2 usage error, 3 proxy \
            unreachable, 4 the table changed meanwhile (with --if-match).

            Example:
              strangler undo --reason "wrong route"
            """
    )

    @Option(help: "Why, for the audit log.")
    public var reason: String?

    @Option(
        name: .customLong("if-match"),
        help: ArgumentHelp("Undo only if the table's ETag is still this.", valueName: "etag"))
    public var ifMatch: String?

    @OptionGroup public var control: ControlOptions

    public init() {}

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(self.control)
            let outcome = try await session.undo(expectedHash: self.ifMatch, reason: self.reason)
            let undid = outcome.undid
            var text = "undone: \(undid.action) of \(undid.time) by \(undid.actor ?? "?")\n"
            for change in outcome.changed {
                text += "\(change.route): \(change.from.rawValue) → \(change.to.rawValue)\n"
            }
            for review in outcome.reviews { text += review.text + "\n" }
            text += "table \(outcome.table.contentHash) (\(session.target))\n"
            return CommandOutcome(output: text)
        } catch {
            return CommandOutcome(error: "strangler undo: \(error.message)\n", status: error.status)
        }
    }
}
