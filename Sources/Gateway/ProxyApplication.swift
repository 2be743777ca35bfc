import AdminAPI
public import ControlPlane
import DiffStore
import Foundation
import Hummingbird
import HummingbirdCore
import JSON
public import Logging
import NIOCore
public import NIOPosix
import NIOSSL
public import PostgresSupport
public import Proxy
import RouteTable
public import ServiceLifecycle
public import SharedStore
import Synchronization
public import UnixSignals

/// The whole proxy: the data plane, the admin API, the routes.json watcher and the shadow recorder, as the services
/// of the process's one `ServiceGroup`.
///
/// ```swift
/// var configuration = ProxyConfiguration()
/// configuration.routesPath = "routes.json"
/// let proxy = try ProxyApplication(configuration: configuration, logger: logger)
/// try await proxy.runWithSignals()          // until SIGTERM or SIGINT
/// ```
///
/// To run the proxy beside other services, put ``services`` in the process's group and hand the group to
/// ``run(_:)``, which releases the event loops once the group has returned:
///
/// ```swift
/// let group = ServiceGroup(services: proxy.services + [other], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await proxy.run(group)
/// ```
public final class ProxyApplication: Sendable {
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
    /// The live route table.
    public let store: RouteTableStore
    /// The data plane's shared state (its pools, for a test's diagnosis).
    package let dataPlane: ProxyShared
    /// The shared store the table lives in (`ProxyConfiguration.store`); nil: routes.json and the data directory.
    public let sharedStore: SharedStore?
    /// Whether the shared store answers (nil without one).
    let storeHealth: StoreHealth?
    /// The proxy's long-running pieces in start order: the recorder, the data plane, the admin API, the routes.json
    /// watcher, the presence record (and, with TLS, the certificates' watcher). A `ServiceGroup` stops them in
    /// reverse: the watchers and the admin API first, then the data plane once its requests in flight are answered, and
    /// the recorder last, to write what the drained requests left.
    public let services: [any Service]
    /// The event loops of the data plane and the admin API (`ProxyConfiguration.threads`, one per core by default):
    /// they outlive the services, and ``shutdown()`` releases them once the group running the services has returned.
    public let eventLoopGroup: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let ports: ListeningPorts
    private let observation: Int
    /// The TLS contexts served (data plane, admin API), reloaded by the ``CertificateWatcher``.
    private let certificates: [ServerTLSContext]
    /// `https` when the admin API speaks TLS, else `http`.
    private let adminScheme: String

    /// Loads and validates routes.json (a bad file stops the start with every problem listed), the token and the TLS
    /// certificates and keys (one that cannot be served stops it with a ``TLSCertificateError`` naming the file),
    /// opens the diff store, and makes the event loops and the services (nothing listens before the services run).
    /// `reloadSignals` (`strangler proxy`: SIGHUP) reload the certificates at once; they are also reloaded when their
    /// files change.
    ///
    /// With `configuration.store` use ``start(configuration:logger:reloadSignals:)``, which reads the table from it.
    public convenience init(configuration: ProxyConfiguration, logger: Logger, reloadSignals: [UnixSignal] = []) throws
    {
        if let store = configuration.store {
            throw SharedStoreFailure(
                "the table is in the shared store \(store): open it with ProxyApplication.start(configuration:logger:)")
        }
        let text = try Self.readRoutes(configuration.routesPath)
        try self.init(
            configuration: configuration, logger: logger, reloadSignals: reloadSignals, text: text, version: 1,
            shared: nil)
    }

    /// Opens the proxy: with `configuration.store`, connects to the shared store (creating or migrating its schema),
    /// and routes by its head; a store that holds no table yet is seeded from routes.json. Without a store, as
    /// ``init(configuration:logger:reloadSignals:)``.
    public static func start(
        configuration: ProxyConfiguration, logger: Logger, reloadSignals: [UnixSignal] = []
    ) async throws -> ProxyApplication {
        guard let url = configuration.store else {
            return try ProxyApplication(configuration: configuration, logger: logger, reloadSignals: reloadSignals)
        }
        let location = try StoreLocation.parse(url)
        let shared = try await SharedStore.connect(location, logger: logger, timeout: configuration.storeTimeout)
        do {
            let head = try await Self.head(of: shared, seed: configuration.routesPath, logger: logger)
            // Every proxy of the store redacts with the store's key: a value has one token in every sample, and one
            // erasure (`strangler purge --store … --subject`) finds them all.
            let key = try await shared.redactionKey()
            return try ProxyApplication(
                configuration: configuration, logger: logger, reloadSignals: reloadSignals, text: head.text,
                version: head.version, shared: shared, redactionKey: key)
        } catch {
            shared.close()
            throw error
        }
    }

    /// The store's head; an empty store is seeded from the routes file (validated first), audited as `seed`. Two
    /// proxies seeding at once: one writes, the other takes what it wrote.
    static func head(of shared: SharedStore, seed routesPath: String, logger: Logger) async throws -> StoredTable {
        if let head = try await shared.head() { return head }
        let text: String
        do {
            text = try Self.readRoutes(routesPath)
        } catch let error as RouteTableError {
            throw SharedStoreFailure(
                "the store \(shared.location) holds no route table yet, and \(routesPath) cannot seed it: "
                    + error.description)
        }
        let table = try RouteTable.parse(text)
        let actor = (try? FileManager.default.attributesOfItem(atPath: routesPath)[.ownerAccountName]) as? String
        let entry = JSONValue.object([
            ("time", .string(ISO8601DateFormatter().string(from: Date()))), ("actor", .string(actor ?? "unknown")),
            ("reason", .string("the store's first table, from \(routesPath)")), ("action", .string("seed")),
            ("file", .string(routesPath)), ("after", table.document),
        ])
        let outcome = try await shared.commit(
            TableCommit(
                text: text, contentHash: RouteTable.contentHash(of: text), expectedHash: nil,
                actor: actor ?? "unknown", reason: "seeded from \(routesPath)", auditEntry: entry.jsonText))
        switch outcome {
        case .committed(let version):
            logger.notice(
                "the shared store's first table, from the routes file",
                metadata: ["store": "\(shared.location)", "file": "\(routesPath)", "version": "\(version)"])
            return StoredTable(version: version, text: text, contentHash: RouteTable.contentHash(of: text))
        case .stale(let head):
            return head
        }
    }

    static func readRoutes(_ path: String) throws -> String {
        do {
            try RouteFile.refuseLink(path)
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch let failure as RouteFile.Failure {
            throw RouteTableError(problems: [.init(path: "$", reason: failure.description)])
        } catch {
            throw RouteTableError(problems: [
                .init(path: "$", reason: "cannot read \(path): \(error.localizedDescription)")
            ])
        }
    }

    private init(
        configuration: ProxyConfiguration, logger: Logger, reloadSignals: [UnixSignal], text: String, version: Int,
        shared: SharedStore?, redactionKey: [UInt8]? = nil
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.sharedStore = shared
        let sharedStore = shared
        let health = shared.map { StoreHealth(location: $0.location.description, logger: logger) }
        self.storeHealth = health
        let table = try RouteTable.parse(text)
        // Two proxies on one data directory would write the same diff store, audit log and presence record: the
        // second is refused before it binds anything.
        if let other = try ProxyPresence.live(in: configuration.dataDirectory), other.pid != getpid() {
            throw DataDirectoryInUse(
                description:
                    "another proxy (pid \(other.pid), admin API \(other.admin)) uses the data directory "
                    + "\(configuration.dataDirectory); stop it, or pass another --data")
        }
        let store = try RouteTableStore(table: table, text: text, version: version)
        self.store = store
        let diffStore = try DiffStore.open(
            path: URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("diffs.sqlite").path,
            maxSamplesPerSignature: configuration.samplesPerSignature)
        let control = RouteControl(
            table: DataPlaneTable(store: store), routesPath: configuration.routesPath,
            dataDirectory: configuration.dataDirectory, logger: logger, diffStore: diffStore, shared: shared)
        self.control = control
        let metrics = ProxyMetrics()
        self.metrics = metrics
        let recorder = ShadowRecorder(
            store: diffStore, maxInFlight: configuration.maxShadowsInFlight,
            maxQueued: configuration.maxQueuedComparisons, interval: configuration.recordInterval,
            privacy: { [store] in store.snapshot.table.privacy },
            notCompared: { [metrics] route, reason in metrics.shadowNotCompared(route: route, reason: reason.rawValue)
            },
            compared: { [metrics] route, result in metrics.shadowCompared(route: route, result: result) },
            shared: shared, redactionKey: redactionKey, logger: logger)
        self.recorder = recorder
        let adminToken = try configuration.adminToken ?? AdminToken.resolve(dataDirectory: configuration.dataDirectory)
        self.adminToken = adminToken
        self.maxConnections = configuration.effectiveMaxConnections
        // Certificates and keys are read and checked before anything listens: a bad one stops the start, naming the
        // file.
        if configuration.tlsPort != nil, configuration.tls == nil {
            throw TLSCertificateError(description: "a TLS port needs a certificate and a key (--tls-cert, --tls-key)")
        }
        let tls = try configuration.tls.map { files throws(TLSCertificateError) in
            try ServerTLSContext(files: files, listener: "proxy", logger: logger)
        }
        let adminTLS = try configuration.adminTLS.map { files throws(TLSCertificateError) in
            try ServerTLSContext(files: files, listener: "admin", logger: logger)
        }
        let adminScheme = adminTLS == nil ? "http" : "https"
        self.adminScheme = adminScheme

        // Made last: nothing above may fail once there are threads to release.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads ?? System.coreCount)
        self.eventLoopGroup = group
        let connections = ConnectionLimiter(limit: self.maxConnections, listener: "proxy", metrics: metrics)
        let adminConnections = ConnectionLimiter(
            limit: configuration.adminMaxConnections, listener: "admin", metrics: metrics)
        let capture = TrafficRecorder(redactionKey: redactionKey ?? diffStore.redactionKey) { [store] in
            store.snapshot.table
        }
        let shared = ProxyShared(
            store: store, configuration: configuration, metrics: metrics, recorder: recorder, connections: connections,
            capture: capture, group: group)
        self.dataPlane = shared
        // Connections to upstreams that leave the table close (observed until shutdown(), before the loops stop).
        self.observation = store.observe { snapshot in
            shared.tableChanged()
            Self.warnAboutUnverifiedTLS(snapshot.table, logger: logger)
        }
        shared.tableChanged()  // a swap made while the pools were being made
        Self.warnAboutUnverifiedTLS(table, logger: logger)
        let ports = ListeningPorts(expectsTLS: tls != nil)
        self.ports = ports
        let server = ProxyServer(shared: shared, group: group, tls: tls, logger: logger) { port, secure in
            // `port` is the proxy's port whether it speaks TLS or not; a second listener is the TLS port.
            if secure { ports.bound(tls: port) }
            if !secure || configuration.tlsPort == nil { ports.bound(proxy: port) }
        }
        let adminHTTP = HTTP1Channel.Configuration(additionalChannelHandlers: [
            AdmissionHandler(limiter: adminConnections)
        ])
        let adminServer: HTTPServerBuilder =
            if let adminTLS {
                .init { responder in
                    ReloadingTLSChannel(HTTP1Channel(responder: responder, configuration: adminHTTP), tls: adminTLS)
                }
            } else {
                .http1(configuration: adminHTTP)
            }
        let instances: @Sendable () async throws(ControlError) -> JSONValue = {
            [control, ports] () async throws(ControlError) -> JSONValue in
            try await Self.instances(
                shared: sharedStore, control: control, ports: ports, adminScheme: adminScheme,
                configuration: configuration)
        }
        var storeStatus: (@Sendable () -> JSONValue)? = nil
        if let health {
            let host = control.table
            storeStatus = { [recorder] in
                health.json(version: host.liveTable.version, evidence: recorder.sharedBacklog ?? SharedBacklog())
            }
        }
        let dashboard = DashboardHub(
            store: store, traffic: metrics.traffic,
            operations: RouteOperations(
                control: control, diffStore: diffStore, flush: { [recorder] in await recorder.flushShared() }),
            upstreams: { [store] in store.upstreamStatus() }, logger: logger)
        let admin = Application(
            router: AdminRoutes(
                control: control, diffStore: diffStore, token: adminToken,
                flush: { [recorder] in await recorder.flushShared() },
                metrics: { [metrics, recorder, store] in
                    metrics.render() + ProxyMetrics.routeInfo(store.snapshot.table)
                        + (health?.prometheus(evidence: recorder.sharedBacklog ?? SharedBacklog()) ?? "")
                },
                record: { pattern, limit, within in
                    HAR.document(await capture.record(pattern: pattern, limit: limit, within: within))
                },
                unmatched: { [shared] in
                    let (groups, overflow) = shared.unmatched.snapshot()
                    return .object([
                        (
                            "groups",
                            .array(
                                groups.map {
                                    .object([
                                        ("method", .string($0.method)), ("template", .string($0.template)),
                                        ("count", .number(Double($0.count))), ("example", .string($0.example)),
                                    ])
                                })
                        ),
                        ("overflow", .number(Double(overflow))),
                    ])
                },
                upstreams: { [store] in store.upstreamStatus() },
                access: { [store] in store.accessReport() },
                instances: instances,
                storeStatus: storeStatus,
                traceURL: configuration.traceURL,
                dashboard: dashboard, secureCookies: adminTLS != nil
            ).buildRouter(),
            server: adminServer,
            configuration: .init(
                address: .hostname("127.0.0.1", port: configuration.adminPort), serverName: "strangler-admin"),
            onServerRunning: { channel in ports.bound(admin: channel.localAddress?.port) },
            eventLoopGroupProvider: .shared(group),
            logger: logger
        )
        let watcher: any Service =
            if let sharedStore, let health {
                TableFollower(
                    control: control, store: sharedStore, poll: configuration.storePollInterval, health: health,
                    logger: logger)
            } else {
                RoutesWatcher(control: control, interval: configuration.watchInterval)
            }
        let presence = PresenceService(
            ports: ports, adminScheme: self.adminScheme, routesPath: configuration.routesPath,
            dataDirectory: configuration.dataDirectory, logger: logger)
        self.certificates = [tls, adminTLS].compactMap { $0 }
        let checker = HealthChecker(store: store, metrics: metrics, group: group, logger: logger)
        let resolver = UpstreamResolver(store: store, logger: logger)
        // The dashboard after the admin API: it stops first, ending its viewers' streams, so that the admin API's
        // graceful shutdown does not wait for them.
        var services: [any Service] = [recorder, checker, resolver, server, admin, dashboard, watcher, presence]
        if let exporter = configuration.tracing?.exporter { services.insert(exporter, at: 0) }
        if let sharedStore, let health {
            services.append(
                InstanceReporter(
                    control: control, store: sharedStore,
                    identity: { [ports, adminScheme] in
                        await Self.identity(ports: ports, adminScheme: adminScheme, configuration: configuration)
                    },
                    interval: configuration.instanceReportInterval, health: health, logger: logger))
        }
        if !self.certificates.isEmpty {
            services.append(
                CertificateWatcher(
                    contexts: self.certificates, interval: configuration.certificateWatchInterval,
                    signals: reloadSignals, logger: logger))
        }
        self.services = services
    }

    /// This proxy's id and addresses among the instances, once its ports are bound (nil if cancelled first).
    static func identity(
        ports: ListeningPorts, adminScheme: String, configuration: ProxyConfiguration
    ) async -> (id: String, proxy: String, admin: String)? {
        guard let bound = await ports.bothBound() else { return nil }
        let admin = "\(adminScheme)://127.0.0.1:\(bound.admin)"
        let id = configuration.instanceID ?? "\(ProcessInfo.processInfo.hostName):\(bound.admin)"
        return (id, "\(configuration.host):\(bound.proxy)", admin)
    }

    /// `GET /admin/instances`: every proxy on the shared store and how each stands; without a store, this one.
    static func instances(
        shared: SharedStore?, control: RouteControl, ports: ListeningPorts, adminScheme: String,
        configuration: ProxyConfiguration
    ) async throws(ControlError) -> JSONValue {
        let silentAfter =
            3 * Double(configuration.instanceReportInterval.components.seconds)
            + 3 * Double(configuration.instanceReportInterval.components.attoseconds) / 1e18
        let identity = await Self.identity(ports: ports, adminScheme: adminScheme, configuration: configuration)
        guard let shared else {
            let live = control.table.liveTable
            let record = identity.map {
                InstanceRecord(
                    id: $0.id, proxy: $0.proxy, admin: $0.admin, host: ProcessInfo.processInfo.hostName,
                    pid: Int(ProcessInfo.processInfo.processIdentifier), version: live.version,
                    contentHash: live.contentHash, startedAt: Date())
            }
            return InstanceListing(
                headVersion: live.version, headHash: live.contentHash, silentAfter: silentAfter,
                instances: record.map { [$0] } ?? [], selfID: identity?.id
            ).json
        }
        do {
            return try await shared.instances(silentAfter: silentAfter, selfID: identity?.id).json
        } catch {
            throw ControlError(.storeUnavailable, error.description)
        }
    }

    /// Waits until both ports are bound, and returns them (useful with port 0); (0, 0) when the waiting task is
    /// cancelled first. With `tlsPort`, the TLS listener is bound too by then (``listeningTLSPort()``).
    public func listeningPorts() async -> (proxy: Int, admin: Int) {
        guard let ports = await self.ports.bothBound() else { return (0, 0) }
        return (ports.proxy, ports.admin)
    }

    /// The port that speaks TLS for client traffic once bound: `tlsPort`'s listener, or the proxy's port when that one
    /// speaks TLS; nil without TLS (or when the waiting task is cancelled first).
    public func listeningTLSPort() async -> Int? {
        await self.ports.bothBound()?.tls
    }

    /// The admin API's URL once it listens: `http://127.0.0.1:PORT`, or `https://` with `adminTLS` (as `proxy.json`
    /// says).
    public func adminURL() async -> String {
        "\(self.adminScheme)://127.0.0.1:\(await self.listeningPorts().admin)"
    }

    /// Rereads every certificate and key now, as SIGHUP does (a replacement that does not load is refused and logged,
    /// and the one in force stays); true when every one in force is the files' contents.
    @discardableResult
    public func reloadCertificates() -> Bool {
        // Every one is reloaded, whatever the others do.
        let outcomes = self.certificates.map { $0.reload() }
        return outcomes.allSatisfy { outcome in
            if case .refused = outcome { return false }
            return true
        }
    }

    /// The process's one group: ``services``, stopped gracefully on `gracefulShutdownSignals` (none: only by
    /// `triggerGracefulShutdown()`, as tests do).
    /// Logs a warning for every `https://` instance whose certificate is not verified (`"tls": {"insecure": true}`).
    static func warnAboutUnverifiedTLS(_ table: RouteTable, logger: Logger) {
        for (path, _, group) in table.namedGroups {
            for instance in group.instances where instance.tls?.insecure == true {
                logger.warning(
                    "TLS to an upstream is not verified (\"tls\": {\"insecure\": true})",
                    metadata: ["upstream": "\(instance.url)", "at": "\(path).tls.insecure"])
            }
        }
    }

    public func makeServiceGroup(gracefulShutdownSignals: [UnixSignal] = []) -> ServiceGroup {
        ServiceGroup(services: self.services, gracefulShutdownSignals: gracefulShutdownSignals, logger: self.logger)
    }

    /// Runs `group` (one holding ``services``) until it returns, then ``shutdown()``: the event loops stop only once
    /// every service has.
    public func run(_ group: ServiceGroup) async throws {
        do {
            try await group.run()
        } catch {
            try? await self.shutdown()
            throw error
        }
        try await self.shutdown()
    }

    /// Runs as the process: SIGTERM and SIGINT drain the requests in flight, then the recorder writes what is left,
    /// and it returns.
    public func runWithSignals() async throws {
        try await self.run(self.makeServiceGroup(gracefulShutdownSignals: [.sigterm, .sigint]))
    }

    /// Releases what the services ran on: stops following table changes and shuts the event loops down. Call it once
    /// the group running ``services`` has returned (``run(_:)`` does), or when they were never run.
    public func shutdown() async throws {
        self.store.stopObserving(self.observation)
        self.sharedStore?.close()
        try await self.eventLoopGroup.shutdownGracefully()
    }
}

/// Says where the proxy is (``ProxyPresence``, in the data directory) from the moment both ports are bound until the
/// group stops, so that the CLI finds its admin API and leaves the routes file it serves alone.
private struct PresenceService: Service {
    let ports: ListeningPorts
    let adminScheme: String
    let routesPath: String
    let dataDirectory: String
    let logger: Logger

    func run() async throws {
        let ports = self.ports
        guard let bound = await cancelWhenGracefulShutdown({ await ports.bothBound() }) else { return }
        let presence = ProxyPresence(
            admin: "\(self.adminScheme)://127.0.0.1:\(bound.admin)", pid: getpid(),
            routes: ProxyPresence.canonicalPath(self.routesPath))
        do {
            try presence.write(in: self.dataDirectory)
        } catch {
            let path = ProxyPresence.path(in: self.dataDirectory)
            self.logger.warning(
                "cannot write \(path): \(error); the CLI finds this proxy only with --admin or STRANGLER_ADMIN")
            return
        }
        defer { presence.remove(from: self.dataDirectory) }
        try? await gracefulShutdown()
    }
}

/// The ports the data plane and the admin API listen on, once bound (and the TLS listener's, when there is one);
/// ``bothBound()`` waits for them.
final class ListeningPorts: Sendable {
    typealias Ports = (proxy: Int, admin: Int, tls: Int?)
    private typealias Waiter = CheckedContinuation<Ports?, Never>
    private struct State {
        var proxy: Int?
        var admin: Int?
        var tls: Int?
        var waiters: [UInt64: Waiter] = [:]
        /// Waits cancelled before their continuation was in `waiters`.
        var cancelled: Set<UInt64> = []
        var lastID: UInt64 = 0
    }
    private let state = Mutex(State())
    /// A TLS listener is among those to wait for.
    private let expectsTLS: Bool

    init(expectsTLS: Bool) {
        self.expectsTLS = expectsTLS
    }

    /// Every port, once bound; nil when the waiting task is cancelled first.
    func bothBound() async -> (proxy: Int, admin: Int, tls: Int?)? {
        let id = self.state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Waiter) in
                let now = self.state.withLock { state -> Ports?? in
                    if let ports = self.complete(state) { return .some(ports) }
                    if state.cancelled.remove(id) != nil { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> Waiter? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelled.insert(id)
                return nil
            }
            waiter?.resume(returning: nil)
        }
    }

    private func complete(_ state: State) -> Ports? {
        guard let proxy = state.proxy, let admin = state.admin, !self.expectsTLS || state.tls != nil else { return nil }
        return (proxy, admin, state.tls)
    }

    func bound(proxy: Int? = nil, admin: Int? = nil, tls: Int? = nil) {
        let (waiters, ports) = self.state.withLock { state -> ([Waiter], Ports?) in
            if let proxy { state.proxy = proxy }
            if let admin { state.admin = admin }
            if let tls { state.tls = tls }
            guard let ports = self.complete(state) else { return ([], nil) }
            defer { state.waiters.removeAll() }
            return (Array(state.waiters.values), ports)
        }
        if let ports { for waiter in waiters { waiter.resume(returning: ports) } }
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
        return Self.live(self.store.install(resolved, version: prepared.version))
    }

    static func live(_ snapshot: RouteTableStore.Snapshot) -> LiveTable {
        LiveTable(
            table: snapshot.table, version: snapshot.version, text: snapshot.text, contentHash: snapshot.contentHash)
    }
}

/// A proxy already runs on the data directory a new one was given.
public struct DataDirectoryInUse: Error, CustomStringConvertible {
    public var description: String
}
