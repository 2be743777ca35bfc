import AsyncHTTPClient
public import Hummingbird
public import Logging
import ServiceLifecycle

/// Builds the monolith's router on `store`: every endpoint of the CRM, the event feed, `/healthz`, and
/// `/reverse-sync/status` (what `reverseSync` follows; no feeds without it).
///
/// ```swift
/// let store = try CRMStore.open(path: nil)
/// let app = Application(router: buildMonolithRouter(store: store))
/// ```
public func buildMonolithRouter(store: CRMStore, reverseSync: ReverseSync? = nil) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: ErrorEnvelopeMiddleware())

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

/// Builds the monolith application from its configuration: opens (and migrates) the database, seeds it
/// when asked and empty, serves the CRM, and follows the services' feeds given for reverse sync.
///
/// ```swift
/// let app = try await buildMonolithApplication(configuration: .init(port: 8081), logger: logger)
/// try await app.runService()
/// ```
public func buildMonolithApplication(
    configuration: MonolithConfiguration, logger: Logger
) async throws
    -> some ApplicationProtocol
{
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
    var services: [any Service] = []
    var reverseSync: ReverseSync?
    if !configuration.reverseFeeds.isEmpty {
        // The feeds' client lives as long as the application, which shuts it down after reverse sync.
        let client = FeedClient.makeHTTPClient()
        services.append(FeedHTTPClientService(client: client))
        do {
            reverseSync = try await ReverseSync(
                store: store, feeds: configuration.reverseFeeds, httpClient: client, logger: logger)
        } catch {
            try? await client.shutdown()
            throw error
        }
        services += reverseSync.map { [$0] } ?? []
    }
    return Application(
        router: HeadAsGet(buildMonolithRouter(store: store, reverseSync: reverseSync)),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "strangler-monolith"),
        services: services,
        logger: logger
    )
}
