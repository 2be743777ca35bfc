public import ArgumentParser
import Logging
import Hummingbird
import Monolith

/// `strangler monolith`: runs the CRM monolith that the toolkit migrates.
public struct MonolithCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "monolith",
        abstract: "Run the CRM monolith (accounts, contacts, leads, deals) with its outbox event feed.",
        discussion: """
            The database is created and migrated on first start; --seed fills an empty one with deterministic
            demo data, and is skipped when the database already has data. SIGTERM or Ctrl-C stops the server
            after the requests in flight.

            Example:
              strangler monolith --port 8081 --db .strangler/monolith.sqlite --seed 1000
            """
    )

    @Option(help: "Port to listen on (127.0.0.1).")
    public var port: Int = 8081

    @Option(help: "SQLite database file; created if missing.")
    public var db: String = ".strangler/monolith.sqlite"

    @Option(help: ArgumentHelp("Seed N demo contacts (with proportionate accounts, leads and deals) into an empty database.", valueName: "N"))
    public var seed: Int = 0

    public init() {}

    public func validate() throws {
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be from 0 to 65535, not \(self.port)") }
        guard self.seed >= 0 else { throw ValidationError("--seed must be 0 or more, not \(self.seed)") }
        guard !self.db.isEmpty else { throw ValidationError("--db must name a file") }
    }

    public func run() async throws {
        let logger = Logger(label: "strangler.monolith")
        let app = try await buildMonolithApplication(
            configuration: MonolithConfiguration(port: self.port, databasePath: self.db, seedContacts: self.seed),
            logger: logger
        )
        try await app.runService()
    }
}
