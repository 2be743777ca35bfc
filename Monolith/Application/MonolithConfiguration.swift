public import ServiceLifecycle
public import Tracing

/// How to run the monolith.
public struct MonolithConfiguration: Sendable {
    /// Address to listen on; loopback by default.
    public var host: String
    /// Port to listen on; 8081 by default, 0 for any free port (tests).
    public var port: Int
    /// SQLite file; nil keeps the database in memory (tests).
    public var databasePath: String?
    /// Seed this many demo contacts (with proportionate accounts, leads and deals) into an empty database.
    public var seedContacts: Int
    /// The extracted services whose own feeds the monolith follows (reverse sync); none by default.
    public var reverseFeeds: [ReverseFeed]
    /// Spans for its requests and for the service events it applies (reverse sync); nil: none, and its events carry
    /// the `traceparent` their request came with.
    public var tracer: (any Tracer)?
    /// The service that exports ``tracer``'s spans: run first in the process's group, so that it stops last.
    public var tracingExporter: (any Service)?

    public init(
        host: String = "127.0.0.1", port: Int = 8081, databasePath: String? = ".strangler/monolith.sqlite",
        seedContacts: Int = 0,
        reverseFeeds: [ReverseFeed] = []
    ) {
        self.host = host
        self.port = port
        self.databasePath = databasePath
        self.seedContacts = seedContacts
        self.reverseFeeds = reverseFeeds
    }
}
