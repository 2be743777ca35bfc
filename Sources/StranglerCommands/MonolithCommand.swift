public import ArgumentParser
import Logging
import Monolith
import ServiceLifecycle
import Telemetry
import UnixSignals

/// `strangler monolith`: runs the CRM monolith that the toolkit migrates.
public struct MonolithCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "monolith",
        abstract: "Run the CRM monolith (accounts, contacts, leads, deals) with its outbox event feed.",
        discussion: """
            The database is created and migrated on first start; --seed fills an empty one with deterministic demo \
            data, and is skipped when the database already has data. SIGTERM or Ctrl-C stops the server after the \
            requests in flight.

            --reverse-sync NAME=URL (repeatable) makes the monolith follow an extracted service's own event feed and \
            apply the changes clients made there to its tables (reverse sync, docs/services.md); GET \
            /reverse-sync/status shows where it is.

            Example:
              strangler monolith --port 8081 --db .strangler/monolith.sqlite --seed 1000
              strangler monolith --reverse-sync contacts=http://127.0.0.1:8082 --reverse-sync \
            deals=http://127.0.0.1:8084
            """
    )

    @Option(help: "Port to listen on (127.0.0.1).")
    public var port: Int = 8081

    @Option(help: "SQLite database file; created if missing.")
    public var db: String = ".strangler/monolith.sqlite"

    @Option(
        help: ArgumentHelp(
            "Seed N demo contacts (with proportionate accounts, leads and deals) into an empty database.",
            valueName: "N"))
    public var seed: Int = 0

    @Option(
        name: .customLong("reverse-sync"),
        help: ArgumentHelp(
            "Follow a service's own feed: contacts, leads or deals at http://host:port (repeatable).",
            valueName: "NAME=URL"))
    public var reverseSync: [String] = []

    public init() {}

    public func validate() throws {
        try PortFlags.validate([("--port", self.port)])
        guard self.seed >= 0 else { throw ValidationError("--seed must be 0 or more, not \(self.seed)") }
        guard !self.db.isEmpty else { throw ValidationError("--db must name a file") }
        _ = try self.reverseFeeds()
    }

    func reverseFeeds() throws -> [ReverseFeed] {
        var feeds: [ReverseFeed] = []
        for argument in self.reverseSync {
            let feed: ReverseFeed
            do {
                feed = try ReverseFeed(argument: argument)
            } catch {
                throw ValidationError("--reverse-sync \(argument): \(error.description)")
            }
            guard !feeds.contains(where: { $0.service == feed.service }) else {
                throw ValidationError("--reverse-sync names \(feed.service) twice")
            }
            feeds.append(feed)
        }
        return feeds
    }

    public func run() async throws {
        let logger = Logger(label: "strangler.monolith")
        var configuration = MonolithConfiguration(
            port: self.port, databasePath: self.db, seedContacts: self.seed, reverseFeeds: try self.reverseFeeds())
        if let tracing = try CommandTracing.backend(command: "monolith", defaultServiceName: "monolith", logger: logger)
        {
            configuration.tracer = tracing.tracer
            configuration.tracingExporter = tracing.service
        }
        let services = try await buildMonolithServices(configuration: configuration, logger: logger)
        // The process's one group: SIGTERM or SIGINT stops the server after its requests in flight, then reverse sync.
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
