public import ArgumentParser
import ContactsService
import DealsService
import LeadsService
import Logging
import PostgresSupport
import ServiceKit
import Telemetry

/// `strangler service <name>`: runs an extracted service, synced from the monolith's event feed.
public struct ServiceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "service",
        abstract:
            "Run an extracted service (contacts, leads, deals) on its own database, kept in sync by the monolith's "
            + "event feed.",
        discussion: """
            The service backfills from the start of the feed (or from its checkpoint), then tails it with long polls; \
            GET /sync/status says how far behind it is. Writes honour Strangler-Dry-Run: 1. SIGTERM or Ctrl-C stops it \
            after the requests in flight.

            --db names a SQLite file, or, for leads, a PostgreSQL database (postgres://USER@HOST:PORT/DB): the \
            service's tables go in a schema named after it (created and migrated at start), so it can share a \
            database with the proxies' --store. Give the password in PGPASSWORD rather than in the URL.

            Examples:
              strangler service contacts --port 8082 --db .strangler/contacts.sqlite --feed http://127.0.0.1:8081
              strangler service leads --db postgres://strangler@127.0.0.1:5432/crm
            """
    )

    /// The services that exist so far.
    static let services: [String: ExtractedService] = ["contacts": .contacts, "leads": .leads, "deals": .deals]

    @Argument(help: ArgumentHelp("The service to run: contacts, leads or deals.", valueName: "name"))
    public var name: String

    @Option(help: "Port to listen on (127.0.0.1); contacts 8082, leads 8083, deals 8084 by default.")
    public var port: Int?

    @Option(
        help: ArgumentHelp(
            "SQLite database file, created if missing (default .strangler/<name>.sqlite); or, for leads, a PostgreSQL "
                + "database: postgres://USER@HOST:PORT/DB."))
    public var db: String?

    @Option(help: "The monolith's base URL, whose GET /events the service follows.")
    public var feed: String = "http://127.0.0.1:8081"

    @Option(help: .hidden)
    public var feedPageSize: Int = 500

    public init() {}

    public func validate() throws {
        guard Self.services[self.name] != nil else {
            throw ValidationError(
                "<name> must be one of: \(Self.services.keys.sorted().joined(separator: ", ")), not \"\(self.name)\"")
        }
        if let port { try PortFlags.validate([("--port", port)]) }
        if let db, db.isEmpty { throw ValidationError("--db must name a file or a postgres:// URL") }
        if let location = try self.postgres(), ServiceCommand.services[self.name]?.postgresMigrations == nil {
            throw ValidationError(
                "--db \(location): the \(self.name) service runs on SQLite only (its records check other tables as "
                    + "they change); give --db a file")
        }
        guard (1...1000).contains(self.feedPageSize) else {
            throw ValidationError("--feed-page-size must be from 1 to 1000, not \(self.feedPageSize)")
        }
        guard FeedEndpoint(url: self.feed) != nil else {
            throw ValidationError("--feed must be an http URL such as http://127.0.0.1:8081, not \"\(self.feed)\"")
        }
    }

    /// The PostgreSQL database `--db` names, if it is a postgres:// URL (nil for a file); refused when the URL is
    /// not one.
    func postgres() throws -> StoreLocation? {
        guard let db, let scheme = db.split(separator: ":", maxSplits: 1).first?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else { return nil }
        do {
            return try StoreLocation.parse(db)
        } catch {
            throw ValidationError("--db \(error.description)")
        }
    }

    /// The configuration the flags describe.
    var serviceConfiguration: ServiceConfiguration {
        get throws {
            let postgres = try self.postgres()
            return ServiceConfiguration(
                name: self.name, port: self.port,
                databasePath: postgres == nil
                    ? self.db ?? ServiceConfiguration.defaultDatabasePath(for: self.name) : nil,
                postgres: postgres,
                feed: FeedEndpoint(url: self.feed), feedPageSize: self.feedPageSize)
        }
    }

    public func run() async throws {
        guard let service = Self.services[self.name] else { throw ValidationError("unknown service \(self.name)") }
        let logger = Logger(label: "strangler.\(self.name)")
        var configuration = try self.serviceConfiguration
        if let tracing = try CommandTracing.backend(command: "service", defaultServiceName: self.name, logger: logger) {
            configuration.tracer = tracing.tracer
            configuration.tracingExporter = tracing.service
        }
        try await service.run(configuration: configuration, logger: logger)
    }
}
