import NIOCore
public import RouteTable
import Synchronization

/// One version of the table as the control plane sees it: what was written, its version and its hash.
public struct LiveTable: Sendable {
    public let table: RouteTable
    /// Increases with every swap (1 for the first table).
    public let version: Int
    /// The text the table was read from (or written as).
    public let text: String
    /// `RouteTable.contentHash(of: text)`: the admin API's ETag, the CLI's `If-Match`.
    public let contentHash: String

    public init(table: RouteTable, version: Int, text: String, contentHash: String) {
        self.table = table
        self.version = version
        self.text = text
        self.contentHash = contentHash
    }
}

/// A table that can be swapped in without failing: what could refuse it (a host that does not resolve) was checked
/// by the host that made it, before anything was written. `resolved` is the host's own (the data plane's addresses).
public struct PreparedTable: Sendable {
    public let table: RouteTable
    public let text: String
    public let resolved: any Sendable
    /// The version it goes live as: a shared store's version of it; nil for the live one's plus one.
    public var version: Int?

    public init(table: RouteTable, text: String, resolved: any Sendable, version: Int? = nil) {
        self.table = table
        self.text = text
        self.resolved = resolved
        self.version = version
    }
}

/// Where the control plane's changes go live: the data plane's route table of a running proxy, or, when the CLI edits
/// routes.json with no proxy running, a ``StandaloneTable`` that serves nothing.
public protocol RouteTableHost: AnyObject, Sendable {
    /// The table in force now.
    var liveTable: LiveTable { get }
    /// Checks that `table` can be served and readies it; throws the table's problems.
    func prepare(_ table: RouteTable, text: String) throws(RouteTableError) -> PreparedTable
    /// Swaps a prepared table in (cannot fail); returns it.
    @discardableResult
    func install(_ prepared: PreparedTable) -> LiveTable
}

/// The route table of no running proxy (`strangler stage --file`, and every route command when no proxy answers): it
/// refuses what a proxy would refuse (a host that does not resolve), so routes.json never holds a table that a proxy
/// cannot load.
public final class StandaloneTable: RouteTableHost {
    private let current: Mutex<LiveTable>

    public init(table: RouteTable, text: String) throws(RouteTableError) {
        _ = try Self.resolve(table)
        self.current = Mutex(
            LiveTable(table: table, version: 1, text: text, contentHash: RouteTable.contentHash(of: text)))
    }

    public var liveTable: LiveTable { self.current.withLock { $0 } }

    public func prepare(_ table: RouteTable, text: String) throws(RouteTableError) -> PreparedTable {
        PreparedTable(table: table, text: text, resolved: try Self.resolve(table))
    }

    @discardableResult
    public func install(_ prepared: PreparedTable) -> LiveTable {
        self.current.withLock { current in
            current = LiveTable(
                table: prepared.table, version: prepared.version ?? current.version + 1, text: prepared.text,
                contentHash: RouteTable.contentHash(of: prepared.text))
            return current
        }
    }

    private static func resolve(_ table: RouteTable) throws(RouteTableError) -> [Upstream: SocketAddress] {
        try table.resolvingUpstreams { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) }
    }
}
