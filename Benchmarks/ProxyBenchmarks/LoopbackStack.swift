import Logging
import NIOCore
import NIOPosix
import Proxy
import RouteTable
import Synchronization

/// What one benchmark's requests go through, on 127.0.0.1 with ports chosen by the system: the origin, the proxy in
/// front of it when that is what is measured, and the client's keep-alive connections. Started by the benchmark's
/// setup, stopped by its teardown.
///
/// Threads: the client and the origin share one event loop; the proxy has its own (`--threads 1`), so that on two
/// cores the proxy's loop is not starved by the load.
final class LoopbackStack: Sendable {
    /// Whether the client talks to the proxy or straight to the origin.
    enum Path: Sendable {
        case throughProxy
        case direct
    }

    private struct Running: Sendable {
        var load: MultiThreadedEventLoopGroup
        var proxy: StartedProxy?
        var client: KeepAliveClient
    }

    private struct StartedProxy: Sendable {
        var group: MultiThreadedEventLoopGroup
        var server: Task<Void, any Error>
        var port: Int
    }

    private struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let path: Path
    let connections: Int
    private let running = Mutex<Running?>(nil)

    init(path: Path, connections: Int = 4) {
        self.path = path
        self.connections = connections
    }

    /// Starts the origin, the proxy (for `.throughProxy`) and the client, and sends one request on each connection so
    /// that every connection, the proxy's to the origin included, is open before anything is measured.
    func start() async throws {
        let load = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var proxy: StartedProxy?
        do {
            let origin = try await FixedResponseOrigin.start(group: load)
            guard let originPort = origin.localAddress?.port else { throw Failure(description: "origin has no port") }
            if self.path == .throughProxy { proxy = try await Self.startProxy(monolithPort: originPort) }
            let client = try await KeepAliveClient.connect(
                to: proxy?.port ?? originPort, connections: self.connections, group: load)
            try await client.send(requests: self.connections).get()
            self.running.withLock { $0 = Running(load: load, proxy: proxy, client: client) }
        } catch {
            if let proxy { await Self.stop(proxy) }
            try? await load.shutdownGracefully()
            throw error
        }
    }

    /// Sends `requests` requests and blocks until all are answered (the measured part of an iteration).
    func send(requests: Int) throws {
        guard let client = self.running.withLock({ $0?.client }) else { throw Failure(description: "not started") }
        try client.send(requests: requests).wait()
    }

    /// Closes the client's connections, stops the proxy (it returns once its last client connection has closed) and
    /// the origin, and shuts their event loops down.
    func stop() async throws {
        let taken = self.running.withLock { running in
            defer { running = nil }
            return running
        }
        guard let running = taken else { return }
        await running.client.close()
        if let proxy = running.proxy { await Self.stop(proxy) }
        // The origin's listener and connections close with their event loop.
        try await running.load.shutdownGracefully()
    }

    /// The proxy as `strangler proxy --threads 1` runs its data plane, in front of `monolithPort`: one route, `GET /*`
    /// in `transform` (every request to the monolith), no shadowing, the default configuration otherwise.
    private static func startProxy(monolithPort: Int) async throws -> StartedProxy {
        let routes = """
            { "monolith": "http://127.0.0.1:\(monolithPort)",
              "routes": [ { "id": "all", "method": "GET", "path": "/*", "stage": "transform" } ] }
            """
        let store = try RouteTableStore(table: try RouteTable.parse(routes), text: routes)
        var configuration = ProxyConfiguration()
        configuration.port = 0
        configuration.threads = 1
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = ProxyMetrics()
        let shared = ProxyShared(
            store: store, configuration: configuration, metrics: metrics, recorder: nil,
            connections: ConnectionLimiter(
                limit: configuration.effectiveMaxConnections, listener: "proxy", metrics: metrics),
            group: group)
        let (ports, bound) = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "proxy-benchmark") { _ in SwiftLogNoOpLogHandler() }
        let server = ProxyServer(shared: shared, group: group, logger: logger) { port, _ in bound.yield(port) }
        let task = Task {
            defer { bound.finish() }
            try await server.run()
        }
        var listening = ports.makeAsyncIterator()
        guard let port = await listening.next() else {
            // It stopped before it listened: its error says why.
            let failure: any Error
            do {
                try await task.value
                failure = Failure(description: "the proxy stopped before it listened")
            } catch {
                failure = error
            }
            try? await group.shutdownGracefully()
            throw failure
        }
        return StartedProxy(group: group, server: task, port: port)
    }

    private static func stop(_ proxy: StartedProxy) async {
        proxy.server.cancel()
        _ = try? await proxy.server.value
        // Its connections to the origin close with the loop.
        try? await proxy.group.shutdownGracefully()
    }
}
