import NIOCore
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

        init(table: RouteTable, version: Int, text: String, addresses: [Upstream: SocketAddress]) {
            self.table = table
            self.version = version
            self.text = text
            self.contentHash = RouteTable.contentHash(of: text)
            self.addresses = addresses
        }

        // The data plane's lookups, made on the snapshot so that the table is read in place, not copied.
        func routing(method: String, path: UnsafeBufferPointer<UInt8>) -> (route: Route?, dropsTrailingSlash: Bool) {
            self.table.routing(method: method, path: path)
        }
        var paths: PathMode { self.table.paths }
        func upstream(for route: Route?) -> Upstream { self.table.upstream(for: route) }
        func serviceUpstream(for route: Route) -> Upstream? { self.table.serviceUpstream(for: route) }
        var monolith: Upstream { self.table.monolith }
    }

    private let current: Mutex<Snapshot>
    private let observers = Mutex<(next: Int, bodies: [Int: @Sendable (Snapshot) -> Void])>((0, [:]))

    /// A table whose upstreams are resolved: swapping it in cannot fail. Made before anything is written, so a table
    /// that cannot be served (a host that does not resolve) is refused while the file and the live table still agree.
    public struct Prepared: Sendable {
        public let table: RouteTable
        public let text: String
        let addresses: [Upstream: SocketAddress]
    }

    /// Resolves every upstream of `table` once, so that connecting never waits on name resolution.
    public init(table: RouteTable, text: String) throws(RouteTableError) {
        let prepared = try Self.prepare(table, text: text)
        self.current = Mutex(
            Snapshot(table: prepared.table, version: 1, text: text, addresses: prepared.addresses))
    }

    public var snapshot: Snapshot { self.current.withLock { $0 } }

    /// Swaps in a new table; returns the new snapshot.
    @discardableResult
    public func replace(with table: RouteTable, text: String) throws(RouteTableError) -> Snapshot {
        self.install(try Self.prepare(table, text: text))
    }

    /// Swaps in a prepared table (cannot fail); returns the new snapshot.
    @discardableResult
    public func install(_ prepared: Prepared) -> Snapshot {
        let snapshot = self.current.withLock { current in
            current = Snapshot(
                table: prepared.table, version: current.version + 1, text: prepared.text, addresses: prepared.addresses)
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
        return Prepared(table: table, text: text, addresses: addresses)
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
