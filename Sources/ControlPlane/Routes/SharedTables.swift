/// Where the route table lives when several proxies share it (`strangler proxy --store postgres://…`): its versions,
/// its audit log, committed as compare-and-sets. ``RouteControl`` writes through it instead of routes.json; the
/// implementation is the SharedStore module's (PostgreSQL).
public protocol SharedTables: AnyObject, Sendable {
    /// Says where the store is, without a password (`postgres://strangler@db:5432/routes`).
    var storeDescription: String { get }
    /// The table every proxy routes by now, nil when the store holds none yet.
    func head() async throws(SharedStoreFailure) -> StoredTable?
    /// The head's version and hash only: what a proxy compares with the version it routes by.
    func headVersion() async throws(SharedStoreFailure) -> (version: Int, contentHash: String)?
    /// Writes `change` as the next version if the head's hash is still `change.expectedHash` (nil: only into an empty
    /// store), with its audit entry, in one transaction; every proxy is told once it commits.
    func commit(_ change: TableCommit) async throws(SharedStoreFailure) -> CommitOutcome
    /// Appends an audit entry that changes no table (a triage decision, an erasure).
    func appendAudit(_ entry: String) async throws(SharedStoreFailure)
    /// The audit log's entries (JSON texts), oldest first.
    func auditEntries() async throws(SharedStoreFailure) -> [String]
}

/// One version of the table as the store keeps it.
public struct StoredTable: Sendable, Equatable {
    public var version: Int
    public var text: String
    public var contentHash: String

    public init(version: Int, text: String, contentHash: String) {
        self.version = version
        self.text = text
        self.contentHash = contentHash
    }
}

/// A new version for the store: its text and hash, the hash it replaces, who and why, and its audit entry.
public struct TableCommit: Sendable {
    public var text: String
    public var contentHash: String
    /// The head's hash the change was made from; nil seeds an empty store (refused as stale when it holds a table).
    public var expectedHash: String?
    public var actor: String
    public var reason: String?
    /// The audit entry, one JSON object.
    public var auditEntry: String
    /// The routes whose stage the change moves, with the stage each enters: their shared evidence starts a new epoch
    /// in the same transaction (``SharedEvidence``).
    public var epochs: [(route: String, stage: String)]

    public init(
        text: String, contentHash: String, expectedHash: String?, actor: String, reason: String?, auditEntry: String,
        epochs: [(route: String, stage: String)] = []
    ) {
        self.text = text
        self.contentHash = contentHash
        self.expectedHash = expectedHash
        self.actor = actor
        self.reason = reason
        self.auditEntry = auditEntry
        self.epochs = epochs
    }
}

public enum CommitOutcome: Sendable, Equatable {
    /// Written as `version`.
    case committed(version: Int)
    /// The head is not the table the change was made from: nothing was written. `head` is what is there now.
    case stale(head: StoredTable)
}

/// The store could not be reached or refused the operation; nothing was changed by it.
public struct SharedStoreFailure: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
