public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import Reports
public import RouteTable

extension Stage: ExpressibleByArgument {}

/// The flags of the commands that change a route's stage.
public struct StageChangeOptions: ParsableArguments {
    @Option(help: "Why, for the audit log (required with --force).")
    public var reason: String?

    @Flag(
        help: "Move even if the gates refuse (needs --reason; the audit entry says it was forced and what it overrode)."
    )
    public var force: Bool = false

    @Option(
        name: .customLong("if-match"),
        help: ArgumentHelp(
            "Change only if the table's ETag is still this (as `strangler routes --output json` shows as hash); "
                + "default: the table as read just before.",
            valueName: "etag"))
    public var ifMatch: String?

    public init() {}

    public func validate() throws {
        if self.force, (self.reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--force needs --reason TEXT (the audit log records why the gates were overridden)")
        }
    }
}

/// What `promote` and `rollback` take: a route, and the flags of a stage change.
public struct StepOptions: ParsableArguments {
    @Argument(help: "The route id.")
    public var route: String

    @OptionGroup public var change: StageChangeOptions
    @OptionGroup public var control: ControlOptions

    public init() {}

    /// Moves the route to the stage `move` gives for its current one (a usage error, `otherwise`, when there is none).
    func run(command: String, to move: (Stage) -> Stage?, otherwise: String) async -> CommandOutcome {
        let id = self.route
        let flags = self.control.placeFlags
        return await StageRun.run(command: command, control: self.control, options: self.change) {
            table throws(CommandFailure) in
            guard let stage = move(try StageRun.stage(of: id, in: table, flags: flags)) else {
                throw CommandFailure(message: "\(id) \(otherwise)", status: ControlExit.usage)
            }
            return (id, stage)
        }
    }
}

/// What `stage`, `promote` and `rollback` share: read the table (its ETag), work out the move, send it, print the
/// outcome.
enum StageRun {
    static func run(
        command: String, control: ControlOptions, options: StageChangeOptions,
        target: (JSONValue) throws(CommandFailure) -> (selector: String, stage: Stage)
    ) async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(control)
            let read = try await session.table()
            let (selector, stage) = try target(read.table.document)
            let change = try await session.stage(
                selector: selector, to: stage, expectedHash: options.ifMatch ?? read.contentHash,
                reason: options.reason, force: options.force)
            return Self.report(
                change, selector: selector, stage: stage, target: session.target, flags: control.placeFlags)
        } catch {
            return Self.report(command: command, error)
        }
    }

    /// A refused or failed command: the message, then every refusal of the gates with its reasons.
    static func report(command: String, _ failure: CommandFailure) -> CommandOutcome {
        var text = "strangler \(command): \(failure.message)\n"
        for refusal in failure.refusal?.refusals ?? [] {
            text += "  \(refusal.route) \(refusal.from.rawValue) → \(refusal.to.rawValue):\n"
            for reason in refusal.reasons { text += "    - \(reason)\n" }
            for note in refusal.notMeasured { text += "    - not measured: \(note)\n" }
        }
        return CommandOutcome(error: text, status: failure.status)
    }

    static func report(
        _ change: TableChange, selector: String, stage: Stage, target: String, flags: String = ""
    ) -> CommandOutcome {
        guard !change.changed.isEmpty else {
            return CommandOutcome(output: "nothing to change: \(selector) already in \(stage.rawValue)\n")
        }
        var text = ""
        for move in change.changed { text += "\(move.route): \(move.from.rawValue) → \(move.to.rawValue)\n" }
        for verdict in change.notMeasured {
            for note in verdict.notMeasured { text += "  \(verdict.route): not measured: \(note)\n" }
        }
        if change.forced {
            text += "FORCED past the gates (recorded in the audit log):\n"
            for refusal in change.overridden {
                for reason in refusal.reasons { text += "  \(refusal.route): \(reason)\n" }
            }
        }
        text += "table \(change.table.contentHash) (\(target)); undo with: strangler undo\(flags)\n"
        return CommandOutcome(output: text)
    }

    /// The route's current stage in a table document.
    static func stage(of id: String, in table: JSONValue, flags: String = "") throws(CommandFailure) -> Stage {
        guard let route = table["routes"]?.arrayValue?.first(where: { $0["id"]?.stringValue == id }) else {
            throw CommandFailure(
                message: "no route has id \"\(id)\" (strangler routes\(flags) lists them)", status: ControlExit.usage)
        }
        guard let stage = route["stage"]?.stringValue.flatMap(Stage.init(rawValue:)) else {
            throw CommandFailure(message: "route \(id) has no valid stage", status: ControlExit.usage)
        }
        return stage
    }
}

/// `strangler stage ROUTE|PATTERN STAGE --reason TEXT [--force]`.
public struct StageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract:
            "Move a route, or a group of routes (a pattern such as 'contacts.*'), to a stage: all or none, gated by "
            + "evidence.",
        discussion: """
            Every move is judged by the gates (routes.json "gates"; docs/gates.md): transform → coexist needs the \
            service healthy and in sync; coexist → eliminate needs enough compared samples, a match rate whose 95% \
            lower bound reaches 99.9%, no untriaged mismatch signature, zero sync lag and a clean last reconcile (and \
            for writes, dry-run comparisons and reverse sync); leaving eliminate needs reverse sync for writes. A \
            group moves in one table change and one audit entry, or not at all. --force overrides the gates, with a \
            reason.

            Exit status: 0 moved (or nothing to change), 1 refused by a gate, 2 usage or validation error, 3 proxy \
            unreachable, 4 the table changed meanwhile (another operator): read it again.

            Examples:
              strangler stage contacts.get coexist --reason "service deployed, backfilled"
              strangler stage 'contacts.*' coexist --reason "contacts reads"
              strangler stage deals.update eliminate --force --reason "incident 42: monolith down"
            """
    )

    @Argument(
        help: ArgumentHelp("A route id, or a pattern of ids (* any characters, ? one).", valueName: "route|pattern"))
    public var selector: String

    @Argument(help: ArgumentHelp("transform, coexist or eliminate.", valueName: "stage"))
    public var stage: Stage

    @OptionGroup public var change: StageChangeOptions
    @OptionGroup public var control: ControlOptions

    public init() {}

    public func validate() throws {
        guard (self.change.reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == false else {
            throw ValidationError("strangler stage needs --reason TEXT (it goes to the audit log)")
        }
    }

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        let (selector, stage) = (self.selector, self.stage)
        return await StageRun.run(command: "stage", control: self.control, options: self.change) { _ in
            (selector, stage)
        }
    }
}

/// `strangler promote ROUTE`: to the next stage.
public struct PromoteCommand: StepCommand {
    public static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Move a route to its next stage (transform → coexist → eliminate), gated by evidence.",
        discussion: """
            The same as `strangler stage ROUTE <next stage>`; the gates are those of docs/gates.md.

            Exit status: 0 moved, 1 refused by a gate, 2 usage error (unknown route, already in eliminate), 3 proxy \
            unreachable, 4 the table changed meanwhile.

            Examples:
              strangler promote contacts.get
              strangler promote contacts.get --reason "1 week in coexist, 99.97% lower bound"
            """
    )

    static var move: StepMove { (\.next, "is in eliminate already: there is no next stage") }

    @OptionGroup public var step: StepOptions

    public init() {}
}

/// `strangler rollback ROUTE`: to the previous stage.
public struct RollbackCommand: StepCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Move a route back to its previous stage (eliminate → coexist → transform).",
        discussion: """
            Going back from coexist is always allowed; leaving eliminate is allowed for reads, and for writes only \
            while the reverse sync (service → monolith) runs, so that the monolith has every write the service took.

            Exit status: 0 moved, 1 refused by a gate, 2 usage error (unknown route, already in transform), 3 proxy \
            unreachable, 4 the table changed meanwhile.

            Examples:
              strangler rollback contacts.get --reason "p99 latency doubled"
              strangler rollback contacts.create --force --reason "reverse sync down, monolith must take writes now"
            """
    )

    static var move: StepMove { (\.previous, "is in transform already: there is no previous stage") }

    @OptionGroup public var step: StepOptions

    public init() {}
}

/// The stage a step command moves a route to, and what it says when there is none.
typealias StepMove = (to: KeyPath<Stage, Stage?>, otherwise: String)

/// `promote` and `rollback`: one step along the stages, with the options of ``StepOptions``.
protocol StepCommand: AsyncParsableCommand {
    static var move: StepMove { get }
    var step: StepOptions { get }
}

extension StepCommand {
    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        let move = Self.move
        return await self.step.run(
            command: Self.configuration.commandName ?? "step", to: { $0[keyPath: move.to] }, otherwise: move.otherwise)
    }
}
