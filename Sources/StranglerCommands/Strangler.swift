public import ArgumentParser
import Foundation

/// The `strangler` command: every tool of the toolkit as a subcommand.
public struct Strangler: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "strangler",
        abstract: "Migrate a monolith to services one HTTP endpoint at a time, with evidence at every step.",
        discussion: """
            Run the whole demo (the CRM monolith, three extracted services, the proxy in front), then send it traffic \
            and read the evidence:
              strangler up
              strangler traffic
              strangler routes

            In front of your own application: point routes.json's "monolith" at it, then
              strangler proxy --routes routes.json --port 8080 --admin-port 8090
            """,
        subcommands: [
            MonolithCommand.self, ServiceCommand.self, ReconcileCommand.self, ProxyCommand.self, DiffCommand.self,
            NoiseCommand.self, PurgeCommand.self, UpCommand.self, TrafficCommand.self,
            RoutesCommand.self, StageCommand.self, PromoteCommand.self, RollbackCommand.self, UndoCommand.self,
            HistoryCommand.self, TriageCommand.self, FixturesCommand.self, ReportCommand.self, InitCommand.self,
            ReplayCommand.self, RecordCommand.self, ClientsCommand.self, AccessCommand.self,
            InstancesCommand.self, StoreCommand.self,
        ]
    )

    public init() {}
}

extension Strangler {
    /// Parses and runs a command line (without the program name); returns the exit status. Usage and validation errors
    /// exit with 2, like every error the commands report (ArgumentParser's own default is 64).
    ///
    /// ```swift
    /// exit(await Strangler.execute(Array(CommandLine.arguments.dropFirst())))
    /// ```
    public static func execute(_ arguments: [String]) async -> Int32 {
        do {
            var command = try Self.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch {
            let code = Self.exitCode(for: error)
            let message = Self.fullMessage(for: error)
            if !message.isEmpty {
                let stream = code == .success ? FileHandle.standardOutput : FileHandle.standardError
                stream.write(Data((message + "\n").utf8))
            }
            return code == .validationFailure ? 2 : code.rawValue
        }
    }
}

extension Strangler {
    /// Parses a command line as `strangler` does and runs it for its outcome (output, error text, exit status)
    /// instead of printing it: the commands that report through a `CommandOutcome`. For tests and tools that drive
    /// the CLI in-process.
    static func outcome(of arguments: [String]) async throws -> CommandOutcome {
        switch try Self.parseAsRoot(arguments) {
        case let command as RoutesCommand: return await command.outcome()
        case let command as StageCommand: return await command.outcome()
        case let command as PromoteCommand: return await command.outcome()
        case let command as RollbackCommand: return await command.outcome()
        case let command as UndoCommand: return await command.outcome()
        case let command as HistoryCommand: return await command.outcome()
        case let command as TriageCommand: return await command.outcome()
        case let command as ReportCommand: return await command.outcome()
        case let command as RecordCommand: return await command.outcome()
        default: throw CommandFailure(message: "not a command with an outcome: \(arguments)", status: 2)
        }
    }
}
