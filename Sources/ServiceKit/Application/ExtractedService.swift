import AsyncHTTPClient
public import GRDB
import HTTPTracing
public import Hummingbird
public import Logging
public import PostgresSupport
public import ServiceLifecycle
public import Tracing
import UnixSignals

/// What makes one extracted service: its name, its schema, how it projects the feed's events into its
/// tables, and its endpoints. ServiceKit supplies the rest (database, error envelope, health, sync, running).
///
/// ```swift
/// let contacts = ExtractedService(
///     name: "contacts", migrations: { SchemaMigration.register(ContactsSchema.migrations, in: &$0) },
///     projection: RecordProjection<Contact>(readModels: [.init(of: "account", table: "accounts")])
/// ) { router, database in
///     ContactRoutes.register(on: router, database: database)
/// }
/// ```
public struct ExtractedService: Sendable {
    public var name: String
    public var migrations: @Sendable (inout DatabaseMigrator) -> Void
    public var projection: any EventProjection
    public var routes: @Sendable (Router<BasicRequestContext>, ServiceDatabase) -> Void
    /// The service's tables in PostgreSQL's dialect, when it can run there (`--db postgres://…`); nil: SQLite only.
    /// Declare them only for a service whose endpoints are ``RecordRoutes`` of records that check nothing in the
    /// database (`checkReferences`, `checkDeletable`: those read SQLite) and whose projection is a
    /// ``PostgresEventProjection``.
    public var postgresMigrations: [SchemaMigration]?

    public init(
        name: String, migrations: @escaping @Sendable (inout DatabaseMigrator) -> Void, projection: any EventProjection,
        postgresMigrations: [SchemaMigration]? = nil,
        routes: @escaping @Sendable (Router<BasicRequestContext>, ServiceDatabase) -> Void
    ) {
        self.name = name
        self.migrations = migrations
        self.projection = projection
        self.postgresMigrations = postgresMigrations
        self.routes = routes
    }

    /// Opens (and migrates) the service's database at `path`, in memory when nil.
    public func openDatabase(path: String?) async throws -> ServiceDatabase {
        try await ServiceDatabase.open(path: path, origin: self.name, migrations: self.migrations)
    }

    /// Opens (and migrates) the service's schema on PostgreSQL; refused for a service that runs on SQLite only.
    public func openDatabase(postgres location: StoreLocation, logger: Logger) async throws -> ServiceDatabase {
        guard let migrations = self.postgresMigrations else {
            throw PostgresServiceFailure(
                "the \(self.name) service runs on SQLite only (its records check other tables as they change); "
                    + "give --db a file")
        }
        return try await ServiceDatabase.open(
            postgres: location, origin: self.name, migrations: migrations, logger: logger)
    }

    /// The database `configuration` names: PostgreSQL when it has a location there, else SQLite at its path.
    public func openDatabase(configuration: ServiceConfiguration, logger: Logger) async throws -> ServiceDatabase {
        if let location = configuration.postgres {
            return try await self.openDatabase(postgres: location, logger: logger)
        }
        return try await self.openDatabase(path: configuration.databasePath)
    }

    /// The service's router: its endpoints, `GET /healthz`, its own feed `GET /events` (reverse sync), and
    /// `GET /sync/status` when `sync` is given; every
    /// error in the monolith's envelope.
    public func router(
        database: ServiceDatabase, sync: FeedConsumer?, tracer: (any Tracer)? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        // Outermost: its span sees the answer the error envelope makes.
        router.add(middleware: RequestTracingMiddleware(tracer: tracer))
        router.add(middleware: ServiceErrorMiddleware())
        router.add(middleware: AcceptMiddleware())
        router.get("/healthz") { _, _ in Response.json { $0.object { $0.field("status", "ok") } } }
        if let sync {
            router.get("/sync/status") { _, _ in Response.json { sync.status.write(to: &$0) } }
        }
        ServiceFeedRoutes(database: database).register(on: router)
        self.routes(router, database)
        return router
    }

    /// The service process's long-running pieces, in start order, for its one `ServiceGroup`: with a feed, the feed's
    /// HTTP client and the consumer that keeps the database in sync; then the HTTP application. The group stops them in
    /// reverse: the server answers its requests in flight first, then the consumer stops, then its client.
    public func services(configuration: ServiceConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await self.openDatabase(configuration: configuration, logger: logger)
        // Listed first, it stops last: its connections close after everything that uses them has stopped.
        var services: [any Service] = [DatabaseService(database)]
        if let exporter = configuration.tracingExporter { services.insert(exporter, at: 0) }
        var consumer: FeedConsumer?
        if let endpoint = configuration.feed {
            // The feed's client lives as long as the process; listed first, it stops after the consumer.
            let client = HTTPClient.makeToolkitClient()
            services.append(HTTPClientService(client))
            do {
                let feedConsumer = try await FeedConsumer(
                    database: database, feed: HTTPEventFeed(endpoint, client: client, logger: logger),
                    projection: self.projection,
                    pageSize: configuration.feedPageSize, longPollSeconds: configuration.longPollSeconds,
                    logger: logger,
                    tracer: configuration.tracer)
                services.append(feedConsumer)
                consumer = feedConsumer
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
        services.append(
            Application(
                router: HeadAsGet(self.router(database: database, sync: consumer, tracer: configuration.tracer)),
                configuration: .init(
                    address: .hostname(configuration.host, port: configuration.port),
                    serverName: "strangler-\(self.name)"),
                logger: logger
            ))
        return services
    }

    /// Runs the service as `configuration` says, as its process: ``services(configuration:logger:)`` in one
    /// `ServiceGroup`, stopped gracefully on SIGTERM or SIGINT.
    public func run(configuration: ServiceConfiguration, logger: Logger) async throws {
        let services = try await self.services(configuration: configuration, logger: logger)
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Closes a service's database when its process stops (PostgreSQL's connections; nothing for SQLite).
struct DatabaseService: Service {
    let database: ServiceDatabase

    init(_ database: ServiceDatabase) {
        self.database = database
    }

    func run() async throws {
        try? await gracefulShutdown()
        self.database.close()
    }
}
