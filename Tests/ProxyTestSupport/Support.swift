package import AdminAPI
package import Foundation
package import Gateway
package import HTTPTypes
package import Hummingbird
package import JSON
package import Logging
package import NIOConcurrencyHelpers
package import NIOCore
package import NIOPosix
package import RouteTable
package import ServiceLifecycle
package import Testing

@testable package import ControlPlane
@testable package import Proxy
@testable package import Reports

/// Something a test opens when it is ready; upstream handlers wait on it.
package final class Gate: Sendable {
    private let state = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let arrivals = NIOLockedValueBox(0)

    /// How many requests are waiting or have passed.
    package var arrived: Int { self.arrivals.withLockedValue { $0 } }

    package func wait() async {
        self.arrivals.withLockedValue { $0 += 1 }
        await withCheckedContinuation { continuation in
            let open = self.state.withLockedValue { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    package func open() {
        let waiters = self.state.withLockedValue { state in
            state.open = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Waits for `condition` with a deadline, yielding in between (no fixed sleeps). The default deadline is an upper
/// bound, generous because in a full parallel run on two cores a test can wait seconds for a thread; a wait meant to
/// time out (a connection that must stay open) names its own.
package func eventually(
    within timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A test upstream: answers every request with JSON naming itself and echoing what it received.
/// `/slow` and `/sleep` wait for `gate`, which the harness opens only at the end (`/sleep` is for timeouts).
package struct TestUpstream {
    package let name: String

    package init(name: String) {
        self.name = name
    }
    package let gate = Gate()
    package let seenPaths = NIOLockedValueBox<[String]>([])
    /// Every request's method, path and headers (lowercase names), in arrival order.
    package let seenRequests = NIOLockedValueBox<[(method: String, path: String, headers: [String: String])]>([])
    /// Fixed JSON answers by path (any method); `{{n}}` in one is replaced by a number that grows with each answer.
    package let documents = NIOLockedValueBox<[String: String]>([:])
    private let counter = NIOLockedValueBox(0)

    package func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let upstream = self
        for method in [HTTPRequest.Method.get, .post, .patch, .delete, .head] {
            router.on("/**", method: method) { request, _ in try await upstream.answer(request) }
        }
        return router
    }

    package func answer(_ request: Request) async throws -> Response {
        var headers: [String: String] = [:]
        for field in request.headers {
            headers[field.name.canonicalName, default: ""] +=
                (headers[field.name.canonicalName] == nil ? "" : ",") + field.value
        }
        self.seenRequests.withLockedValue { $0.append((request.method.rawValue, request.uri.path, headers)) }
        guard var document = self.documents.withLockedValue({ $0[request.uri.path] }) else {
            return try await Self.echo(self.name, request, self.gate, self.seenPaths)
        }
        self.seenPaths.withLockedValue { $0.append(request.uri.path) }
        if request.uri.path.hasPrefix("/slow") { await self.gate.wait() }
        _ = try await request.body.collect(upTo: 20 * 1024 * 1024)
        if document.contains("{{n}}") {
            let n = self.counter.withLockedValue { value in
                value += 1
                return value
            }
            document = document.replacingOccurrences(of: "{{n}}", with: String(n))
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: document)))
    }

    package static func echo(
        _ name: String, _ request: Request, _ gate: Gate, _ seenPaths: NIOLockedValueBox<[String]>
    ) async throws -> Response {
        seenPaths.withLockedValue { $0.append(request.uri.path) }
        if request.uri.path.hasPrefix("/slow") { await gate.wait() }
        if request.uri.path.hasPrefix("/sleep") { await gate.wait() }
        let body = try await request.body.collect(upTo: 20 * 1024 * 1024)
        var headers: [String: String] = [:]
        for field in request.headers {
            headers[field.name.canonicalName, default: ""] +=
                (headers[field.name.canonicalName] == nil ? "" : ",") + field.value
        }
        let object: [String: Any] = [
            "upstream": name, "method": request.method.rawValue, "authority": request.head.authority ?? "",
            "uri": request.uri.description, "headers": headers, "bodyLength": body.readableBytes,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Runs upstream servers, then the proxy in front of them, and hands the test everything it needs.
package struct ProxyHarness {
    package let monolith: TestUpstream
    package let service: TestUpstream
    package let monolithPort: Int
    package let servicePort: Int
    package let proxyPort: Int
    package let adminPort: Int
    package let directory: URL
    package let proxy: ProxyApplication
    package static let token = "test-admin-token"

    package var routesPath: String { self.directory.appendingPathComponent("routes.json").path }
    /// A file holding ``token``, for the CLI's `--token-file`.
    package var tokenFile: String { self.directory.appendingPathComponent("token").path }
    package var auditPath: String { self.directory.appendingPathComponent("data/audit.jsonl").path }

    package static func routes(monolith: Int, service: Int, stage: String = "transform", extra: String = "") -> String {
        """
        { "monolith": "http://127.0.0.1:\(monolith)",
          "services": { "contacts": "http://127.0.0.1:\(service)", "dead": "http://127.0.0.1:1" },
          "routes": [
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", "stage": \
        "\(stage)" },
            { "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "contacts", "stage": \
        "eliminate" },
            { "id": "slow.get", "method": "GET", "path": "/slow/{id}", "service": "contacts", "stage": "transform" },
            { "id": "sleep.get", "method": "GET", "path": "/sleep", "service": "contacts", "stage": "eliminate", \
        "timeout": "300ms" },
            { "id": "dead.get", "method": "GET", "path": "/dead", "service": "dead", "stage": "eliminate" }\(extra) ] }
        """
    }

    /// Starts two upstreams and a proxy with the routes above, runs `body`, then shuts everything down.
    package static func run(
        stage: String = "transform", routes: ((_ monolith: Int, _ service: Int) -> String)? = nil,
        configure: (inout ProxyConfiguration) -> Void = { _ in },
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let logger = Logger(label: "test")
        let monolith = TestUpstream(name: "monolith")
        let service = TestUpstream(name: "service")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.token.write(to: directory.appendingPathComponent("token"), atomically: true, encoding: .utf8)

        // Upstreams and the proxy run in service groups and stop gracefully, proxy first: a server task that is
        // merely cancelled can be handed a connection it never serves.
        let (monolithApp, monolithPort) = Self.makeApp(monolith, logger: logger)
        let (serviceApp, servicePort) = Self.makeApp(service, logger: logger)
        let upstreams = ServiceGroup(services: [monolithApp, serviceApp], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            let monolithPort = await monolithPort.value
            let servicePort = await servicePort.value
            let routesPath = directory.appendingPathComponent("routes.json").path
            let text =
                routes?(monolithPort, servicePort)
                ?? Self.routes(monolith: monolithPort, service: servicePort, stage: stage)
            try text.write(toFile: routesPath, atomically: true, encoding: .utf8)
            var configuration = ProxyConfiguration.testing(
                routesPath: routesPath, dataDirectory: directory.appendingPathComponent("data").path, token: Self.token)
            configure(&configuration)
            let proxy = try ProxyApplication(configuration: configuration, logger: logger)
            // The proxy's one group, as its process runs it (without signals: the harness stops it).
            let proxyGroup = proxy.makeServiceGroup()
            group.addTask { try await proxy.run(proxyGroup) }
            let ports = await proxy.listeningPorts()
            let harness = ProxyHarness(
                monolith: monolith, service: service, monolithPort: monolithPort, servicePort: servicePort,
                proxyPort: ports.proxy,
                adminPort: ports.admin, directory: directory, proxy: proxy)
            var failure: (any Error)?
            do {
                try await body(harness)
            } catch {
                failure = error
            }
            monolith.gate.open()
            service.gate.open()
            await proxyGroup.triggerGracefulShutdown()
            await upstreams.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    /// A Hummingbird app for `upstream` on a free port; the port arrives once it listens.
    package static func makeApp(_ upstream: TestUpstream, logger: Logger) -> (some Service, Task<Int, Never>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: upstream.router(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        let port = Task {
            for await port in stream { return port }
            return 0
        }
        return (app, port)
    }

}

package func jsonValue(_ text: String) -> JSONValue { (try? JSONParser.parse(text)) ?? .null }

extension JSONValue {
    /// The array's element at `index`, if any.
    package func at(_ index: Int) -> JSONValue? {
        guard let items = self.arrayValue, items.indices.contains(index) else { return nil }
        return items[index]
    }
}

extension ProxyConfiguration {
    /// A proxy for a test: ports the system chooses (read them with `listeningPorts()`), the table at `routesPath`,
    /// data in `dataDirectory`, the admin token `token`, two threads, and routes.json watched every 50 ms.
    package static func testing(routesPath: String, dataDirectory: String, token: String) -> ProxyConfiguration {
        var configuration = ProxyConfiguration()
        configuration.port = 0
        configuration.adminPort = 0
        configuration.routesPath = routesPath
        configuration.dataDirectory = dataDirectory
        configuration.adminToken = token
        configuration.watchInterval = .milliseconds(50)
        configuration.threads = 2
        return configuration
    }
}
