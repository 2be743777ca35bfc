import AdminAPI
import ContactsService
import DealsService
import Diff
import Foundation
import Gateway
import Hummingbird
import JSON
import LeadsService
import Logging
import Monolith
import PostgresSupport
import Proxy
import ProxyTestSupport
import RouteTable
import ServiceKit
import ServiceLifecycle
import StranglerTesting

@testable import ControlPlane
@testable import Reports

/// The whole system in-process, every server on a real socket on port 0: the monolith (in-memory database), the
/// contacts, leads and deals services (each its own in-memory database and feed consumer), reverse sync from the
/// services to the monolith, and the proxy in front with the repository's routes.json (its monolith and service
/// URLs pointed at these ports).
///
/// Sync is stepped by `settle()` (deterministic), or runs in the background with `backgroundSync` (as in production).
struct Stack: Sendable {
    struct Service: Sendable {
        let name: String
        let database: ServiceDatabase
        let consumer: FeedConsumer
        let endpoint: HTTPEndpoint
    }

    let store: CRMStore
    let monolith: HTTPEndpoint
    let services: [String: Service]
    let reverse: ReverseSync
    let proxy: HTTPEndpoint
    let admin: ProxyAdmin
    /// The table the proxy runs (the repository's, with these ports).
    let routesText: String
    let directory: URL

    static let logger = Logger(label: "parity") { _ in SwiftLogNoOpLogHandler() }
    static let token = "parity-admin-token"

    func service(_ name: String) -> Service { self.services[name]! }

    /// Every service applies the monolith's feed to its head; the monolith applies every service's own feed (reverse
    /// sync); repeated until neither direction has anything left.
    func settle() async throws {
        for _ in 0..<20 {
            for service in self.services.values { try await service.consumer.catchUp() }
            var applied = 0
            for name in self.services.keys.sorted() { applied += try await self.reverse.step(service: name) }
            if applied == 0 { return }
        }
        throw HarnessError("sync did not settle after 20 rounds")
    }

    /// The harness with the proxy's route table and this stack's settle.
    func harness(mode: ParityHarness.Mode = .lockstep) throws -> ParityHarness {
        let stack = self
        return ParityHarness(routes: try RouteTable.parse(self.routesText), mode: mode) { try await stack.settle() }
    }

    /// The repository's routes.json with this stack's URLs.
    static func routes(monolith: Int, services: [String: Int]) throws -> String {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("routes.json")
        let document = try JSONParser.parse(Array(try Data(contentsOf: file)))
        var members = document.objectValue ?? []
        for index in members.indices {
            switch members[index].key {
            case "monolith": members[index].value = .string("http://127.0.0.1:\(monolith)")
            case "services":
                members[index].value = .object(
                    services.keys.sorted().map { ($0, .string("http://127.0.0.1:\(services[$0]!)")) })
            default: break
            }
        }
        return JSONValue.object(members).prettyJSONText
    }

    /// Starts everything, runs `body`, stops everything (the proxy first, then the servers).
    /// With `leadsOnPostgres`, the leads service keeps its tables in a fresh PostgreSQL database (the others stay on
    /// SQLite in memory).
    static func run(
        backgroundSync: Bool = false, leadsOnPostgres: Bool = false, _ body: @Sendable (Stack) async throws -> Void
    ) async throws {
        let leadsDatabase = leadsOnPostgres ? try await PostgresServer.shared().freshDatabase() : nil
        let logger = Self.logger
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-parity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let store = try await CRMStore.open(path: nil)
        let (monolithApp, monolithPort) = Self.app(
            router: buildMonolithRouter(store: store), name: "strangler-monolith")
        let servers = ServiceGroup(services: [monolithApp], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await servers.run() }
            let feed = FeedEndpoint(host: "127.0.0.1", port: await monolithPort.value)

            var services: [String: Service] = [:]
            var groups: [ServiceGroup] = []
            for extracted in [ExtractedService.contacts, .leads, .deals] {
                let database =
                    if extracted.name == "leads", let leadsDatabase {
                        try await extracted.openDatabase(
                            postgres: try StoreLocation.parse(leadsDatabase), logger: logger)
                    } else {
                        try await extracted.openDatabase(path: nil)
                    }
                let consumer = try await FeedConsumer(
                    database: database, feed: HTTPEventFeed(feed), projection: extracted.projection, pageSize: 200,
                    longPollSeconds: 1, logger: logger)
                let (app, port) = Self.app(
                    router: extracted.router(database: database, sync: consumer), name: "strangler-\(extracted.name)")
                let serviceGroup = ServiceGroup(services: backgroundSync ? [app, consumer] : [app], logger: logger)
                group.addTask { try await serviceGroup.run() }
                groups.append(serviceGroup)
                services[extracted.name] = Service(
                    name: extracted.name, database: database, consumer: consumer,
                    endpoint: HTTPEndpoint(port: await port.value))
            }
            let reverse = try await ReverseSync(
                store: store,
                feeds: try services.values.map { try ReverseFeed(service: $0.name, url: $0.endpoint.description) },
                longPollSeconds: 1,
                logger: logger)
            let reverseGroup = ServiceGroup(services: backgroundSync ? [reverse] : [], logger: logger)
            if backgroundSync { group.addTask { try await reverseGroup.run() } }

            let routesText = try Self.routes(monolith: feed.port, services: services.mapValues(\.endpoint.port))
            let routesPath = directory.appendingPathComponent("routes.json").path
            try routesText.write(toFile: routesPath, atomically: true, encoding: .utf8)
            let configuration = ProxyConfiguration.testing(
                routesPath: routesPath, dataDirectory: directory.appendingPathComponent("data").path, token: Self.token)
            let proxy = try ProxyApplication(configuration: configuration, logger: logger)
            let proxyGroup = proxy.makeServiceGroup()
            group.addTask { try await proxy.run(proxyGroup) }
            let ports = await proxy.listeningPorts()

            let stack = Stack(
                store: store, monolith: HTTPEndpoint(port: feed.port), services: services, reverse: reverse,
                proxy: HTTPEndpoint(port: ports.proxy),
                admin: ProxyAdmin(HTTPEndpoint(port: ports.admin), token: Self.token), routesText: routesText,
                directory: directory)
            var failure: (any Error)?
            do {
                try await body(stack)
            } catch {
                failure = error
            }
            await proxyGroup.triggerGracefulShutdown()
            if backgroundSync { await reverseGroup.triggerGracefulShutdown() }
            for serviceGroup in groups { await serviceGroup.triggerGracefulShutdown() }
            await servers.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    /// A Hummingbird app on a free port; the port arrives once it listens.
    static func app(
        router: Router<BasicRequestContext>, name: String
    ) -> (some ServiceLifecycle.Service, Task<Int, Never>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: name),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Self.logger)
        let port = Task {
            for await port in stream { return port }
            return 0
        }
        return (app, port)
    }
}

extension HTTPTestClient {
    /// Sends a request and requires `status`; returns the answer's JSON.
    @discardableResult
    func json(
        _ method: String, _ target: String, _ body: String? = nil, to endpoint: HTTPEndpoint, status: Int
    ) async throws -> JSONValue {
        let headers: [(name: String, value: String)] = body == nil ? [] : [("Content-Type", "application/json")]
        let answer = try await self.send(
            HTTPRequestData(method: method, target: target, headers: headers, body: Array((body ?? "").utf8)),
            to: endpoint)
        guard answer.status == status else {
            throw HarnessError("\(method) \(target) answered \(answer), not \(status)")
        }
        return answer.json ?? .null
    }
}

/// A small CRM made on the monolith before a scenario: accounts, contacts (one with a deal), leads in every state,
/// deals in several stages. Its ids are the scenarios' variables.
struct SampleData {
    static func create(
        on monolith: HTTPEndpoint, client: HTTPTestClient = HTTPTestClient()
    ) async throws -> [String: String] {
        func create(_ path: String, _ json: String) async throws -> String {
            try await client.json("POST", path, json, to: monolith, status: 201)["id"]?.stringValue ?? ""
        }
        var ids: [String: String] = [:]
        ids["acme"] = try await create("/accounts", #"{"name":"Acme","domain":"acme.example.com"}"#)
        ids["globex"] = try await create("/accounts", #"{"name":"Globex"}"#)
        ids["ada"] = try await create(
            "/contacts",
            #"{"accountId":"\#(ids["acme"]!)","firstName":"Ada","lastName":"Lovelace","email":"Ada@Acme.example.com","#
                + #""phone":"+44 (20) 7946-0000","title":"Countess","tags":["vip","math","vip"]}"#
        )
        ids["grace"] = try await create(
            "/contacts",
            #"{"accountId":"\#(ids["acme"]!)","firstName":"Grace \"Amazing\" \\ Hopper","lastName":"Hopper","#
                + #""email":"grace@acme.example.com","title":"Rear Admiral – ✓"}"#
        )
        ids["linus"] = try await create(
            "/contacts",
            #"{"accountId":"\#(ids["globex"]!)","firstName":"Linus","lastName":"","email":"linus@globex.example.com"}"#)
        ids["gone"] = try await create(
            "/contacts",
            #"{"accountId":"\#(ids["globex"]!)","firstName":"Gone","lastName":"Soon","#
                + #""email":"gone@globex.example.com"}"#
        )
        for index in 0..<5 {
            _ = try await create(
                "/contacts",
                #"{"accountId":"\#(ids["globex"]!)","firstName":"Page\#(index)","lastName":"Filler","#
                    + #""email":"page\#(index)@globex.example.com"}"#
            )
        }
        ids["deal"] = try await create(
            "/deals",
            #"{"accountId":"\#(ids["acme"]!)","contactId":"\#(ids["ada"]!)","name":"Engine","amount":100000,"#
                + #""currency":"GBP","stage":"proposal"}"#
        )
        ids["kernel"] = try await create(
            "/deals",
            #"{"accountId":"\#(ids["globex"]!)","contactId":"\#(ids["linus"]!)","name":"Kernel","amount":250,"#
                + #""currency":"EUR","stage":"prospecting","expectedCloseDate":"2028-02-29"}"#
        )
        ids["won"] = try await create(
            "/deals", #"{"accountId":"\#(ids["acme"]!)","name":"Done","amount":99,"currency":"USD","stage":"won"}"#)
        try await client.json(
            "PATCH", "/deals/\(ids["kernel"]!)", #"{"stage":"negotiation"}"#, to: monolith, status: 200)
        try await client.json(
            "PATCH", "/contacts/\(ids["grace"]!)", #"{"phone":"555-12345","tags":["navy"]}"#, to: monolith, status: 200)
        try await client.json("DELETE", "/contacts/\(ids["gone"]!)", to: monolith, status: 204)

        ids["fresh"] = try await create("/leads", #"{"name":"Fresh Lead","email":"fresh@lead.example.com"}"#)
        ids["working"] = try await create(
            "/leads",
            #"{"name":"Wanda \"W\" Working","email":"wanda@work.example.com","company":"Work Co","source":"fair","#
                + #""status":"working","score":42}"#
        )
        ids["converted"] = try await create(
            "/leads", #"{"name":"Conny Verted","email":"conny@convert.example.com","company":"Convert Ltd"}"#)
        ids["lostLead"] = try await create("/leads", #"{"name":"Del Eted","email":"del@lead.example.com"}"#)
        for index in 0..<4 {
            _ = try await create(
                "/leads", #"{"name":"Lead \#(index)","email":"lead\#(index)@lead.example.com","status":"qualified"}"#)
        }
        try await client.json(
            "PATCH", "/leads/\(ids["fresh"]!)", #"{"score":7,"source":null}"#, to: monolith, status: 200)
        try await client.json(
            "POST", "/leads/\(ids["converted"]!)/convert",
            #"{"createDeal":{"name":"First","amount":500,"currency":"EUR","stage":"proposal"}}"#, to: monolith,
            status: 200)
        try await client.json("DELETE", "/leads/\(ids["lostLead"]!)", to: monolith, status: 204)
        return ids
    }
}
