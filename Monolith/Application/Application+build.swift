import AsyncHTTPClient
import HTTPTracing
public import Hummingbird
public import Logging
public import ServiceLifecycle
public import Tracing

/// Builds the monolith's router on `store`: every endpoint of the CRM, the event feed, `/healthz`, and
/// `/reverse-sync/status` (what `reverseSync` follows; no feeds without it).
///
/// ```swift
/// let store = try CRMStore.open(path: nil)
/// let app = Application(router: buildMonolithRouter(store: store))
/// ```
public func buildMonolithRouter(
    store: CRMStore, reverseSync: ReverseSync? = nil, tracer: (any Tracer)? = nil
) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    // Outermost: its span sees the answer the error envelope makes.
    router.add(middleware: RequestTracingMiddleware(tracer: tracer))
    router.add(middleware: ErrorEnvelopeMiddleware())
    router.add(middleware: AcceptMiddleware())

    router.get("/healthz") { _, _ in
        JSONResponse.make { writer in
            writer.beginObject()
            writer.field("status", "ok")
            writer.endObject()
        }
    }

    EntityRoutes<Account, BasicRequestContext>(store: store).register(on: router)
    EntityRoutes<Contact, BasicRequestContext>(store: store).register(on: router)
    EntityRoutes<Lead, BasicRequestContext>(store: store).register(on: router)
    EntityRoutes<Deal, BasicRequestContext>(store: store).register(on: router)

    let accountKind = Account.kind
    router.get("/accounts/{id}/contacts") { request, context in
        let id = try request.entityID(context, noun: accountKind.noun)
        return try await EntityRoutes<Contact, BasicRequestContext>(store: store).list(
            request, where: ("accountId", id), parent: accountKind)
    }
    router.get("/accounts/{id}/deals") { request, context in
        let id = try request.entityID(context, noun: accountKind.noun)
        return try await EntityRoutes<Deal, BasicRequestContext>(store: store).list(
            request, where: ("accountId", id), parent: accountKind)
    }
    router.post("/leads/{id}/convert") { request, context in
        try await LeadConversion(store: store).handle(request, context)
    }
    router.get("/pipeline") { _, _ in try await PipelineRoutes(store: store).handle() }
    router.get("/events") { request, _ in try await EventRoutes(store: store).handle(request) }
    router.get("/reverse-sync/status") { _, _ in
        JSONResponse.make { writer in
            if let reverseSync {
                reverseSync.writeStatus(to: &writer)
            } else {
                writer.beginObject()
                writer.key("feeds")
                writer.beginArray()
                writer.endArray()
                writer.endObject()
            }
        }
    }
    return router
}

/// Builds the monolith's HTTP application from its configuration: opens (and migrates) the database, seeds it when
/// asked and empty, and serves the CRM. Reverse sync is not in it: it runs beside the application, as one of
/// ``buildMonolithServices(configuration:logger:)`` (this is for tests, which run the application alone).
///
/// ```swift
/// let app = try await buildMonolithApplication(configuration: .init(port: 0), logger: logger)
/// try await app.test(.live) { client in … }
/// ```
public func buildMonolithApplication(
    configuration: MonolithConfiguration, logger: Logger
) async throws
    -> some ApplicationProtocol
{
    precondition(
        configuration.reverseFeeds.isEmpty, "reverse sync runs beside the application: use buildMonolithServices")
    let store = try await openMonolithStore(configuration: configuration, logger: logger)
    return monolithApplication(store: store, reverseSync: nil, configuration: configuration, logger: logger)
}

/// The monolith process's long-running pieces, in start order, for its one `ServiceGroup`: with `--reverse-sync`,
/// the feeds' HTTP client and reverse sync, then the HTTP application. The group stops them in reverse: the server
/// answers its requests in flight first, then reverse sync stops, then the client it used.
///
/// ```swift
/// let services = try await buildMonolithServices(configuration: .init(port: 8081), logger: logger)
/// try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
public func buildMonolithServices(configuration: MonolithConfiguration, logger: Logger) async throws -> [any Service] {
    let store = try await openMonolithStore(configuration: configuration, logger: logger)
    var services: [any Service] = configuration.tracingExporter.map { [$0] } ?? []
    var reverseSync: ReverseSync?
    if !configuration.reverseFeeds.isEmpty {
        // The feeds' client lives as long as the process; listed first, it stops after reverse sync.
        let client = FeedClient.makeHTTPClient()
        services.append(FeedHTTPClientService(client: client))
        do {
            let sync = try await ReverseSync(
                store: store, feeds: configuration.reverseFeeds, httpClient: client, logger: logger,
                tracer: configuration.tracer)
            services.append(sync)
            reverseSync = sync
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
    services.append(
        monolithApplication(store: store, reverseSync: reverseSync, configuration: configuration, logger: logger))
    return services
}

/// Opens (and migrates) the database, and seeds it when asked and empty.
private func openMonolithStore(configuration: MonolithConfiguration, logger: Logger) async throws -> CRMStore {
    let store = try await CRMStore.open(path: configuration.databasePath)
    if configuration.seedContacts > 0 {
        let report = try await Seeder(contacts: configuration.seedContacts).seed(store)
        if let report {
            logger.info(
                "seeded demo data",
                metadata: [
                    "contacts": "\(report.contacts)", "accounts": "\(report.accounts)", "leads": "\(report.leads)",
                    "deals": "\(report.deals)",
                ]
            )
        } else {
            logger.info("database already has data; not seeding")
        }
    }
    return store
}

private func monolithApplication(
    store: CRMStore, reverseSync: ReverseSync?, configuration: MonolithConfiguration, logger: Logger
) -> some ApplicationProtocol & Service {
    Application(
        router: HeadAsGet(buildMonolithRouter(store: store, reverseSync: reverseSync, tracer: configuration.tracer)),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "strangler-monolith"),
        logger: logger
    )
}
