import Foundation
import JWTKit
package import NIOCore
import NIOSSL
public import RouteTable
import Synchronization

/// The live route table: an immutable snapshot swapped whole.
///
/// A request reads the snapshot once, at its head, and runs wholly on it; a reload or an admin change
/// builds a new snapshot and swaps it in atomically.
public final class RouteTableStore: Sendable {
    /// One version of the table, with everything the data plane needs precomputed.
    public final class Snapshot: Sendable {
        public let table: RouteTable
        /// Increases with every swap (1 for the first table).
        public let version: Int
        /// Hash of the table's file text: the admin API's ETag.
        public let contentHash: String
        /// The text the table was read from (or written as).
        public let text: String
        let addresses: [Upstream: SocketAddress]
        /// The TLS context of each `https://` instance.
        let tlsContexts: [Upstream: NIOSSLContext]
        /// The observed state of each instance.
        let states: [Upstream: InstanceState]
        /// The monolith's instances as the data plane uses them.
        let monolithBalancer: Balancer
        /// Each service's, by name.
        let serviceBalancers: [String: Balancer]
        /// The table's gateway policies (limits, identities, access rules); nil when it declares none.
        let gateway: Gateway?
        /// `"jwt"`'s key set as read (kept for a re-resolved copy of the table).
        let keySet: (set: JWKS, bytes: [UInt8])?

        init(
            table: RouteTable, version: Int, text: String, prepared: Prepared, states: [Upstream: InstanceState],
            gateway: Gateway?
        ) {
            self.table = table
            self.gateway = gateway
            self.keySet = prepared.keySet
            self.version = version
            self.text = text
            self.contentHash = RouteTable.contentHash(of: text)
            self.addresses = prepared.addresses
            self.tlsContexts = prepared.tlsContexts
            self.states = states
            func balancer(_ name: String, _ group: UpstreamGroup) -> Balancer {
                Balancer(
                    name: name, group: group, instances: group.instances.map { states[$0]! },
                    addresses: group.instances.map { prepared.addresses[$0]! },
                    tlsContexts: group.instances.map { prepared.tlsContexts[$0] })
            }
            self.monolithBalancer = balancer("monolith", table.monolithGroup)
            var services: [String: Balancer] = [:]
            for (name, group) in table.groups { services[name] = balancer("service \(name)", group) }
            self.serviceBalancers = services
        }

        /// Every balancer with its group's name (nil: the monolith), the monolith first, then by name.
        var balancers: [(name: String?, balancer: Balancer)] {
            [(nil, self.monolithBalancer)]
                + self.serviceBalancers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }

        // The data plane's lookups, made on the snapshot so that the table is read in place, not copied.
        func routing(method: String, path: UnsafeBufferPointer<UInt8>) -> (route: Route?, dropsTrailingSlash: Bool) {
            self.table.routing(method: method, path: path)
        }
        var paths: PathMode { self.table.paths }
        /// The balancer of the group a route's stage sends the answering request to.
        func balancer(for route: Route?) -> Balancer {
            guard let route, route.stage == .eliminate, let service = route.service,
                let balancer = self.serviceBalancers[service]
            else { return self.monolithBalancer }
            return balancer
        }
        /// The balancer of the service a route moves to, if it names one that is declared.
        func serviceBalancer(for route: Route) -> Balancer? { route.service.flatMap { self.serviceBalancers[$0] } }
    }

    /// The observed state of every instance of the live table, carried over from one snapshot to the next.
    private let states = Mutex<[Upstream: InstanceState]>([:])

    private let current: Mutex<Snapshot>
    /// The gateway's budgets and observations, carried over from one snapshot to the next.
    let gatewayState = GatewayState()
    private let observers = Mutex<(next: Int, bodies: [Int: @Sendable (Snapshot) -> Void])>((0, [:]))

    /// A table whose upstreams are resolved: swapping it in cannot fail. Made before anything is written, so a table
    /// that cannot be served (a host that does not resolve) is refused while the file and the live table still agree.
    public struct Prepared: Sendable {
        public let table: RouteTable
        public let text: String
        let addresses: [Upstream: SocketAddress]
        let tlsContexts: [Upstream: NIOSSLContext]
        /// `"jwt"`'s key set, read and checked (nil without `"jwt"`).
        var keySet: (set: JWKS, bytes: [UInt8])? = nil
    }

    /// Resolves every upstream of `table` once, so that connecting never waits on name resolution. `version` is the
    /// first snapshot's (a shared store's version of the table; 1 for a file).
    public init(table: RouteTable, text: String, version: Int = 1) throws(RouteTableError) {
        let prepared = try Self.prepare(table, text: text)
        let states = Self.carry([:], into: table)
        self.states.withLock { $0 = states }
        let gateway = self.gatewayState.gateway(for: prepared.table, keySet: prepared.keySet)
        self.current = Mutex(
            Snapshot(
                table: prepared.table, version: version, text: text, prepared: prepared, states: states,
                gateway: gateway))
    }

    /// The states of `table`'s instances: those already observed kept, new ones fresh.
    private static func carry(_ old: [Upstream: InstanceState], into table: RouteTable) -> [Upstream: InstanceState] {
        var states: [Upstream: InstanceState] = [:]
        for (_, _, group) in table.namedGroups {
            for upstream in group.instances where states[upstream] == nil {
                states[upstream] = old[upstream] ?? InstanceState(upstream: upstream)
            }
        }
        return states
    }

    public var snapshot: Snapshot { self.current.withLock { $0 } }

    /// Swaps in a new table; returns the new snapshot.
    @discardableResult
    public func replace(with table: RouteTable, text: String) throws(RouteTableError) -> Snapshot {
        self.install(try Self.prepare(table, text: text))
    }

    /// Swaps in a prepared table (cannot fail); returns the new snapshot. Its version is `version` (a shared store's),
    /// or the last one's plus one.
    @discardableResult
    public func install(_ prepared: Prepared, version: Int? = nil) -> Snapshot {
        let snapshot = self.current.withLock { current in
            let states = self.states.withLock { states in
                states = Self.carry(states, into: prepared.table)
                return states
            }
            current = Snapshot(
                table: prepared.table, version: version ?? current.version + 1, text: prepared.text, prepared: prepared,
                states: states, gateway: self.gatewayState.gateway(for: prepared.table, keySet: prepared.keySet))
            return current
        }
        for observer in self.observers.withLock({ Array($0.bodies.values) }) { observer(snapshot) }
        return snapshot
    }

    /// Resolves the table's upstreams (a host that does not resolve is a problem of the table, named by its place).
    public static func prepare(_ table: RouteTable, text: String) throws(RouteTableError) -> Prepared {
        let addresses = try table.resolvingUpstreams {
            try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port)
        }
        var keySet: (set: JWKS, bytes: [UInt8])?
        if let jwt = table.gateway.jwt {
            switch TokenVerifier.readKeySet(jwt) {
            case .success(let read): keySet = (read.0, read.1)
            case .failure(let error): throw error
            }
        }
        return Prepared(
            table: table, text: text, addresses: addresses, tlsContexts: try Self.tlsContexts(of: table),
            keySet: keySet)
    }

    /// The TLS context of every `https://` instance, one per distinct setting (a file that cannot be read, or a
    /// certificate and key that do not go together, is a problem of the table named by its place).
    static func tlsContexts(of table: RouteTable) throws(RouteTableError) -> [Upstream: NIOSSLContext] {
        var contexts: [Upstream: NIOSSLContext] = [:]
        var made: [UpstreamTLS?: NIOSSLContext] = [:]
        var problems: [RouteTableError.Problem] = []
        for (path, _, group) in table.namedGroups {
            for upstream in group.instances where upstream.isTLS {
                if let context = made[upstream.tls] {
                    contexts[upstream] = context
                    continue
                }
                switch Self.tlsContext(upstream.tls ?? UpstreamTLS()) {
                case .success(let context):
                    made[upstream.tls] = context
                    contexts[upstream] = context
                case .failure(let failure):
                    if !problems.contains(where: { $0.path == "\(path).tls.\(failure.key)" }) {
                        problems.append(.init(path: "\(path).tls.\(failure.key)", reason: failure.reason))
                    }
                }
            }
        }
        guard problems.isEmpty else { throw RouteTableError(problems: problems) }
        return contexts
    }

    struct TLSProblem: Error {
        var key: String
        var reason: String
    }

    /// A client TLS context for `settings`: the system's trust store or `ca`, full verification (host name included)
    /// unless `insecure`, the client certificate when given, and ALPN `http/1.1`.
    static func tlsContext(_ settings: UpstreamTLS) -> Result<NIOSSLContext, TLSProblem> {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        if settings.insecure { configuration.certificateVerification = .none }
        func readable(_ file: String, key: String) -> TLSProblem? {
            FileManager.default.isReadableFile(atPath: file)
                ? nil : TLSProblem(key: key, reason: "\"\(file)\" cannot be read (no such file, or no permission)")
        }
        if let ca = settings.ca {
            if let problem = readable(ca, key: "ca") { return .failure(problem) }
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(ca)
                guard !roots.isEmpty else {
                    return .failure(TLSProblem(key: "ca", reason: "\"\(ca)\" holds no PEM certificate"))
                }
                configuration.trustRoots = .certificates(roots)
            } catch {
                return .failure(TLSProblem(key: "ca", reason: "\"\(ca)\" is not a PEM certificate file (\(error))"))
            }
        }
        if let cert = settings.cert, let key = settings.key {
            if let problem = readable(cert, key: "cert") ?? readable(key, key: "key") { return .failure(problem) }
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert)
                guard !chain.isEmpty else {
                    return .failure(TLSProblem(key: "cert", reason: "\"\(cert)\" holds no PEM certificate"))
                }
                configuration.certificateChain = chain.map { .certificate($0) }
            } catch {
                return .failure(TLSProblem(key: "cert", reason: "\"\(cert)\" is not a PEM certificate file (\(error))"))
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                return .failure(TLSProblem(key: "key", reason: "\"\(key)\" is not a PEM private key (\(error))"))
            }
        }
        do {
            return .success(try NIOSSLContext(configuration: configuration))
        } catch {
            let key = settings.cert == nil ? "ca" : "key"
            return .failure(
                TLSProblem(key: key, reason: "cannot be used for TLS (\(error)); does the key match the certificate?"))
        }
    }

    /// Resolves the live table's host names again; when one resolves elsewhere now, swaps in the same table with the
    /// new addresses (connections to the old address close as they come free) and returns the new snapshot. A name
    /// that no longer resolves keeps its last address.
    @discardableResult
    package func resolveAgain(
        _ resolve: (Upstream) throws -> SocketAddress = {
            try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port)
        }
    ) -> Snapshot? {
        let current = self.snapshot
        var addresses = current.addresses
        var moved = false
        for upstream in current.addresses.keys where upstream.hostIsName {
            guard let address = try? resolve(upstream), address != addresses[upstream] else { continue }
            addresses[upstream] = address
            moved = true
        }
        guard moved else { return nil }
        let prepared = Prepared(
            table: current.table, text: current.text, addresses: addresses, tlsContexts: current.tlsContexts,
            keySet: current.keySet)
        // Installed only if no other table came meanwhile (that one was resolved when it was prepared).
        guard self.snapshot === current else { return nil }
        return self.install(prepared)
    }

    /// Calls `body` with each new snapshot after it is swapped in, until `stopObserving` with the returned key.
    public func observe(_ body: @escaping @Sendable (Snapshot) -> Void) -> Int {
        self.observers.withLock { observers in
            defer { observers.next += 1 }
            observers.bodies[observers.next] = body
            return observers.next
        }
    }

    public func stopObserving(_ key: Int) {
        self.observers.withLock { _ = $0.bodies.removeValue(forKey: key) }
    }
}
