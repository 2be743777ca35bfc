import Foundation
import Gateway
import Hummingbird
import JSON
import Logging
import PostgresSupport
import Proxy
import ProxyTestSupport
import RouteTable
import ServiceLifecycle
import SharedStore

/// A monolith, a service, and several proxies on one shared store (each with its own data directory), for the
/// scale-out tests. Every proxy polls the store only every `poll` (60 s by default), so that a change seen sooner
/// came by notification.
struct SharedStoreHarness {
    struct Member {
        let id: String
        let proxy: ProxyApplication
        let proxyPort: Int
        let adminPort: Int
        let group: ServiceGroup
    }

    let monolith: TestUpstream
    let service: TestUpstream
    let monolithPort: Int
    let servicePort: Int
    let store: String
    let directory: URL
    let members: [Member]
    static let token = "scale-out-token"

    var a: Member { self.members[0] }
    var b: Member { self.members[1] }

    /// `items.get` (GET /items/{id}) and `items.create` (POST /items) on the service `items`, both in `stage`; with
    /// `shadowTimeout`, `items.get`'s shadows wait that long (a full parallel run can hold a test upstream's answer
    /// past the 2 s default).
    static func routes(monolith: Int, service: Int, stage: String = "transform", shadowTimeout: String? = nil) -> String
    {
        let shadow = shadowTimeout.map { #", "shadow": { "timeout": "\#($0)" }"# } ?? ""
        return """
            { "monolith": "http://127.0.0.1:\(monolith)",
              "services": { "items": "http://127.0.0.1:\(service)" },
              "routes": [
                { "id": "items.get", "method": "GET", "path": "/items/{id}", "service": "items", "stage": \
            "\(stage)"\(shadow) },
                { "id": "items.create", "method": "POST", "path": "/items", "service": "items", "stage": "\(stage)" } ] }
            """
    }

    static func run(
        store: String, proxies: Int = 2, poll: Duration = .seconds(60), report: Duration = .seconds(5),
        shadowTimeout: String? = nil, noiseShare: Double = 0, _ body: (SharedStoreHarness) async throws -> Void
    ) async throws {
        let logger = Logger(label: "scale-out")
        let monolith = TestUpstream(name: "monolith")
        let service = TestUpstream(name: "service")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-scale-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (monolithApp, monolithPort) = ProxyHarness.makeApp(monolith, logger: logger)
        let (serviceApp, servicePort) = ProxyHarness.makeApp(service, logger: logger)
        let upstreams = ServiceGroup(services: [monolithApp, serviceApp], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            let monolithPort = await monolithPort.value
            let servicePort = await servicePort.value
            let routesPath = directory.appendingPathComponent("routes.json").path
            try Self.routes(monolith: monolithPort, service: servicePort, shadowTimeout: shadowTimeout)
                .write(toFile: routesPath, atomically: true, encoding: .utf8)
            var members: [Member] = []
            var failure: (any Error)?
            do {
                for index in 0..<proxies {
                    let id = "proxy-\(Character(UnicodeScalar(UInt8(97 + index))))"
                    var configuration = ProxyConfiguration.testing(
                        routesPath: routesPath, dataDirectory: directory.appendingPathComponent(id).path,
                        token: Self.token)
                    configuration.store = store
                    configuration.storePollInterval = poll
                    configuration.instanceReportInterval = report
                    configuration.instanceID = id
                    configuration.noiseShare = noiseShare
                    // Generous: in a full parallel run a query's answer can wait seconds for a thread.
                    configuration.storeTimeout = .seconds(10)
                    let proxy = try await ProxyApplication.start(configuration: configuration, logger: logger)
                    let proxyGroup = proxy.makeServiceGroup()
                    group.addTask { try await proxy.run(proxyGroup) }
                    let ports = await proxy.listeningPorts()
                    members.append(
                        Member(
                            id: id, proxy: proxy, proxyPort: ports.proxy, adminPort: ports.admin, group: proxyGroup))
                }
                let harness = SharedStoreHarness(
                    monolith: monolith, service: service, monolithPort: monolithPort, servicePort: servicePort,
                    store: store, directory: directory, members: members)
                try await body(harness)
            } catch {
                failure = error
            }
            for member in members { await member.group.triggerGracefulShutdown() }
            await upstreams.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    /// A client of the store at `url`, as a test's own: generous timeouts (in a full parallel run a query can wait
    /// seconds for a thread).
    static func connect(_ url: String) async throws -> SharedStore {
        try await SharedStore.connect(
            try StoreLocation.parse(url), logger: Logger(label: "test"), timeout: .seconds(20),
            startTimeout: .seconds(60))
    }

    /// Flushes each proxy's recorder (`GET /admin/diffs` writes what waits), so the shared store holds every shadow
    /// that ended.
    func flushAll() async throws {
        for member in self.members { _ = try await self.admin(member, "GET", "/admin/diffs") }
    }

    /// A request to `member`'s admin API.
    func admin(
        _ member: Member, _ method: String, _ path: String, headers: [String] = [], body: String? = nil
    ) async throws -> RawResponse {
        var lines = [
            "\(method) \(path) HTTP/1.1", "Host: admin", "Connection: close", "Authorization: Bearer \(Self.token)",
        ]
        lines += headers
        if let body { lines += ["Content-Type: application/json", "Content-Length: \(body.utf8.count)"] }
        let text = lines.joined(separator: "\r\n") + "\r\n\r\n" + (body ?? "")
        guard let response = RawHTTP.parse(try await RawHTTP.send(text, port: member.adminPort).text).first else {
            throw RawHTTP.RawError.noResponse
        }
        return response
    }

    /// `member`'s ETag for the table.
    func etag(_ member: Member) async throws -> String {
        guard let etag = try await self.admin(member, "GET", "/admin/routes").header("etag") else {
            throw RawHTTP.RawError.noResponse
        }
        return etag
    }

    /// `POST /admin/routes/ROUTE/stage` through `member` with `etag` (its own when nil), forced: these tests are about
    /// the table's propagation, not the gates (whose evidence they do not make).
    func stage(_ member: Member, _ route: String, _ stage: String, etag: String? = nil) async throws -> RawResponse {
        var match = etag ?? ""
        if etag == nil { match = try await self.etag(member) }
        return try await self.admin(
            member, "POST", "/admin/routes/\(route)/stage",
            headers: ["If-Match: \(match)", "X-Strangler-Actor: tester"],
            body: #"{"stage":"\#(stage)","reason":"scale-out test","force":true}"#)
    }

    /// The stage `member` routes `route` by.
    func stageOf(_ member: Member, _ route: String) -> Stage? {
        member.proxy.store.snapshot.table.route(id: route)?.stage
    }
}
