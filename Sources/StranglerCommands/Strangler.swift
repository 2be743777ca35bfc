public import ArgumentParser

/// The `strangler` command: every tool of the toolkit as a subcommand.
public struct Strangler: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "strangler",
        abstract: "Migrate a monolith to services one HTTP endpoint at a time, with evidence at every step.",
        discussion: """
            Start the demo CRM monolith, then the proxy in front of it:
              strangler monolith --port 8081 --seed 1000
              strangler proxy --routes routes.json --port 8080
            """,
        subcommands: [MonolithCommand.self, ServiceCommand.self, ReconcileCommand.self, ProxyCommand.self, DiffCommand.self, NoiseCommand.self, PurgeCommand.self]
    )

    public init() {}
}
