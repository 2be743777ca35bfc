public import Foundation
public import PostgresSupport
public import ServiceLifecycle
public import Tracing

/// How to run one extracted service: where it listens, where its database is, and which feed it follows.
///
/// ```swift
/// let configuration = try ServiceConfiguration(name: "contacts", feed: "http://127.0.0.1:8081")
/// // port 8082, database .strangler/contacts.sqlite
/// ```
public struct ServiceConfiguration: Sendable {
    /// The default port of each extracted service.
    public static let defaultPorts: [String: Int] = ["contacts": 8082, "leads": 8083, "deals": 8084]

    /// `contacts`, `leads` or `deals`: names the database file, the `Server` header and the logs.
    public var name: String
    /// Address to listen on; loopback by default.
    public var host: String
    /// Port to listen on; 0 for any free port (tests).
    public var port: Int
    /// SQLite file; nil keeps the database in memory (tests). Unused when ``postgres`` is set.
    public var databasePath: String?
    /// The PostgreSQL database the service keeps its tables in (schema named after the service), instead of SQLite.
    public var postgres: StoreLocation?
    /// The monolith's event feed to follow; nil runs without sync (tests that apply events themselves).
    public var feed: FeedEndpoint?
    /// Most events fetched (and applied in one transaction) at a time.
    public var feedPageSize: Int
    /// How long one long poll of the feed waits for a new event, in seconds (the monolith allows up to 30).
    public var longPollSeconds: Int
    /// Spans for its requests and for the events it applies from the feed; nil: none, and its own events carry the
    /// `traceparent` their request came with.
    public var tracer: (any Tracer)?
    /// The service that exports ``tracer``'s spans: run first in the process's group, so that it stops last.
    public var tracingExporter: (any Service)?

    public init(
        name: String,
        host: String = "127.0.0.1",
        port: Int? = nil,
        databasePath: String? = nil,
        postgres: StoreLocation? = nil,
        feed: FeedEndpoint? = nil,
        feedPageSize: Int = 500,
        longPollSeconds: Int = 25
    ) {
        self.name = name
        self.host = host
        self.port = port ?? Self.defaultPorts[name] ?? 0
        self.databasePath = databasePath
        self.postgres = postgres
        self.feed = feed
        self.feedPageSize = feedPageSize
        self.longPollSeconds = longPollSeconds
    }

    /// The default database file of a service: `.strangler/<name>.sqlite`.
    public static func defaultDatabasePath(for name: String) -> String { ".strangler/\(name).sqlite" }
}

/// Where the monolith's feed is: `http://host:port` (the path `/events` is added).
public struct FeedEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `http://host[:port]`; nil when `text` is not such a URL.
    public init?(url text: String) {
        guard let components = URLComponents(string: text), components.scheme == "http", let host = components.host,
            !host.isEmpty,
            components.path.isEmpty || components.path == "/", components.query == nil
        else { return nil }
        self.host = host
        self.port = components.port ?? 80
    }

    public var description: String { "http://\(self.host):\(self.port)" }
}
