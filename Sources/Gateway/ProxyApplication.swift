import AdminAPI
public import ControlPlane
import DiffStore
import Foundation
import Hummingbird
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
public import Proxy
import RouteTable
public import ServiceLifecycle
import UnixSignals

/// The whole proxy: the data plane, the admin API and the routes.json watcher, as one service group.
///
/// ```swift
/// var configuration = ProxyConfiguration()
/// configuration.routesPath = "routes.json"
/// let proxy = try ProxyApplication(configuration: configuration, logger: logger)
/// try await proxy.run()          // until SIGTERM or SIGINT
/// ```
public final class ProxyApplication: Service {
    public let configuration: ProxyConfiguration
    public let control: RouteControl
    public let metrics: ProxyMetrics
    /// Compares shadowed exchanges (coexist) and writes them to the diff store, `<data>/diffs.sqlite`.
    public let recorder: ShadowRecorder
    /// The admin token in force.
    public let adminToken: String
    /// The data plane's connection cap in force (`ProxyConfiguration.maxConnections`, or its default for the
    /// file-descriptor limit read at start).
    public let maxConnections: Int
    private let logger: Logger
    private let ports = NIOLockedValueBox<(proxy: Int?, admin: Int?, waiters: [CheckedContinuation<Void, Never>])>(
        (nil, nil, []))

    /// Loads and validates routes.json (a bad file stops the start with every problem listed) and the token.
    public init(configuration: ProxyConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let text: String
        do {
            try RouteFile.refuseLink(configuration.routesPath)
            text = try String(contentsOfFile: configuration.routesPath, encoding: .utf8)
        } catch let failure as RouteFile.Failure {
            throw RouteTableError(problems: [.init(path: "$", reason: failure.description)])
        } catch {
            throw RouteTableError(problems: [
                .init(path: "$", reason: "cannot read \(configuration.routesPath): \(error.localizedDescription)")
            ])
        }
        let table = try RouteTable.parse(text)
        let store = try RouteTableStore(table: table, text: text)
        self.store = store
        let diffStore = try DiffStore.open(
            path: URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("diffs.sqlite").path,
            maxSamplesPerSignature: configuration.samplesPerSignature)
        self.control = RouteControl(
            table: DataPlaneTable(store: store), routesPath: configuration.routesPath,
            dataDirectory: configuration.dataDirectory, logger: logger, diffStore: diffStore)
        self.metrics = ProxyMetrics()
        self.recorder = ShadowRecorder(
            store: diffStore, maxInFlight: configuration.maxShadowsInFlight,
            maxQueued: configuration.maxQueuedComparisons, interval: configuration.recordInterval,
            privacy: { [store] in store.snapshot.table.privacy }, logger: logger)
        self.adminToken = try configuration.adminToken ?? AdminToken.resolve(dataDirectory: configuration.dataDirectory)
        self.maxConnections = configuration.effectiveMaxConnections
    }

    /// The live route table.
    public let store: RouteTableStore

    /// Waits until both ports are bound, and returns them (useful with port 0).
    public func listeningPorts() async -> (proxy: Int, admin: Int) {
        await withCheckedContinuation { continuation in
            let ready = self.ports.withLockedValue { state in
                if state.proxy != nil, state.admin != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
        let state = self.ports.withLockedValue { $0 }
        return (state.proxy!, state.admin!)
    }

    private func bound(proxy: Int? = nil, admin: Int? = nil) {
        let waiters = self.ports.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            if let proxy { state.proxy = proxy }
            if let admin { state.admin = admin }
            guard state.proxy != nil, state.admin != nil else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs until cancelled or shut down gracefully (it handles graceful shutdown when run inside a
    /// `ServiceGroup`; `runWithSignals()` installs SIGTERM/SIGINT handling itself).
    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.configuration.threads ?? System.coreCount)
        let connections = ConnectionLimiter(limit: self.maxConnections, listener: "proxy", metrics: self.metrics)
        let adminConnections = ConnectionLimiter(
            limit: self.configuration.adminMaxConnections, listener: "admin", metrics: self.metrics)
        let shared = ProxyShared(
            store: self.store, configuration: self.configuration, metrics: self.metrics, recorder: self.recorder,
            connections: connections, group: group)
        // Connections to upstreams that leave the table close (observed until the services stop, before the loops do).
        let observation = self.store.observe { _ in shared.tableChanged() }
        shared.tableChanged()  // a swap made while the pools were being made
        let server = ProxyServer(shared: shared, group: group, logger: self.logger) { [weak self] port in
            self?.bound(proxy: port)
        }
        let admin = Application(
            router: AdminRoutes(
                control: self.control, diffStore: self.recorder.store, token: self.adminToken,
                flush: { [recorder] in await recorder.flush() },
                metrics: { [metrics] in metrics.render() }
            ).buildRouter(),
            server: .http1(
                configuration: .init(additionalChannelHandlers: [AdmissionHandler(limiter: adminConnections)])),
            configuration: .init(
                address: .hostname("127.0.0.1", port: self.configuration.adminPort), serverName: "strangler-admin"),
            onServerRunning: { [weak self] channel in self?.bound(admin: channel.localAddress?.port) },
            eventLoopGroupProvider: .shared(group),
            logger: self.logger
        )
        let watcher = RoutesWatcher(control: self.control, interval: self.configuration.watchInterval)
        let services = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the recorder goes last, after the server drained, to write what is left.
                services: [
                    .init(service: self.recorder),
                    .init(service: server),
                    .init(service: admin),
                    .init(service: watcher),
                ],
                gracefulShutdownSignals: [],
                logger: self.logger
            ))
        do {
            try await withGracefulShutdownHandler {
                try await services.run()
            } onGracefulShutdown: {
                Task { await services.triggerGracefulShutdown() }
            }
        } catch {
            self.store.stopObserving(observation)
            try? await group.shutdownGracefully()
            throw error
        }
        self.store.stopObserving(observation)
        try? await group.shutdownGracefully()
    }

    /// Runs as the process's main service: SIGTERM and SIGINT drain in-flight requests, then return.
    public func runWithSignals() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: self)], gracefulShutdownSignals: [.sigterm, .sigint], logger: self.logger))
        try await group.run()
    }
}

/// The data plane's live table as the control plane changes it: preparing resolves the upstreams (the addresses
/// the data plane connects to), installing swaps the snapshot every new request reads.
final class DataPlaneTable: RouteTableHost {
    let store: RouteTableStore

    init(store: RouteTableStore) {
        self.store = store
    }

    var liveTable: LiveTable { Self.live(self.store.snapshot) }

    func prepare(_ table: RouteTable, text: String) throws(RouteTableError) -> PreparedTable {
        PreparedTable(table: table, text: text, resolved: try RouteTableStore.prepare(table, text: text))
    }

    @discardableResult
    func install(_ prepared: PreparedTable) -> LiveTable {
        // Only this type makes the tables it installs.
        let resolved = prepared.resolved as! RouteTableStore.Prepared
        return Self.live(self.store.install(resolved))
    }

    static func live(_ snapshot: RouteTableStore.Snapshot) -> LiveTable {
        LiveTable(
            table: snapshot.table, version: snapshot.version, text: snapshot.text, contentHash: snapshot.contentHash)
    }
}
