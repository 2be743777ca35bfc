public import ServiceLifecycle
public import Tracing

/// How to run the proxy.
public struct ProxyConfiguration: Sendable {
    /// Spans for every forwarded exchange (docs/observability.md), and the service that exports them (run first in
    /// the proxy's group, so that it stops last and sends what the drained requests left); nil, the default: no span
    /// is made, and the proxy forwards trace context only.
    public var tracing: (tracer: any Tracer, exporter: (any Service)?)?
    /// Where reports link a mismatch sample's trace (`--trace-url`, `{traceId}` standing for the id); nil: shown only.
    public var traceURL: String?
    /// Address the proxy listens on.
    public var host: String = "127.0.0.1"
    /// Port for client traffic: 8080 by default, 0 for any free port (tests).
    public var port: Int = 8080
    /// Port of the admin API (always on loopback): 8090 by default, 0 for any free port.
    public var adminPort: Int = 8090
    /// TLS for client traffic (`--tls-cert`, `--tls-key`): without ``tlsPort`` the ``port`` listener speaks TLS; nil
    /// serves plain HTTP only.
    public var tls: TLSCertificateFiles?
    /// A second listener for client traffic, speaking TLS with ``tls`` while ``port`` stays plain (both serve the same
    /// table); nil: no second listener. Only with ``tls``.
    public var tlsPort: Int?
    /// TLS for the admin API (`--admin-tls-cert`, `--admin-tls-key`): its URL becomes `https://127.0.0.1:PORT`.
    public var adminTLS: TLSCertificateFiles?
    /// How often the TLS certificate and key files are looked at for changes (a change that loads is served to new
    /// connections; SIGHUP reloads at once).
    public var certificateWatchInterval: Duration = .seconds(1)
    /// routes.json; watched and reloaded.
    public var routesPath: String = "routes.json"
    /// Where the admin token, the audit log and the diff store (`diffs.sqlite`) live.
    public var dataDirectory: String = ".strangler"
    /// Largest accepted request header block; larger answers 431.
    public var maxHeaderBytes: Int = 64 * 1024
    /// Largest accepted request body; larger answers 413.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Deadline for opening an upstream connection (a route's own timeout bounds the whole exchange).
    public var connectTimeout: Duration = .seconds(5)
    /// A client connection with no request in flight closes after this long without a byte from the
    /// client (idle keep-alive, or a head or body that stopped coming).
    public var idleTimeout: Duration = .seconds(60)
    /// Deadline for a whole request head: from the head's first byte (from the connection's accept for its first
    /// request), not restarted by each byte. Past it the client gets a 408 and the connection closes.
    public var headTimeout: Duration = .seconds(10)
    /// Least rate of a request body, in bytes per second, over each `bodyRateWindow` while the proxy reads it; slower,
    /// the client gets a 408 and the connection closes. 0: no rate is asked.
    public var minBodyRate: Int = 1024
    /// The window over which a body's rate is measured. A window in which the proxy itself held reads (a slow or not
    /// yet connected upstream) is not judged, nor one after the upstream began to answer.
    public var bodyRateWindow: Duration = .seconds(10)
    /// Client connections open at once on the data plane; more are accepted and closed at once, and counted. Nil:
    /// derived from the file-descriptor limit when the proxy starts (`FileDescriptorLimit.defaultMaxConnections`).
    public var maxConnections: Int?
    /// Connections open at once on the admin API (its own cap: ops can reach it while the data plane is at its own).
    public var adminMaxConnections: Int = 64
    /// Idle keep-alive connections kept per upstream and event loop. High enough that a burst of answers released in
    /// one event-loop tick does not close connections the next burst of requests opens again (at 64, 256 client
    /// connections on one loop reconnected on a third of their requests). A new connection to one upstream closes an
    /// idle one to another first, so a loop never holds more upstream connections than it had in use at once: within
    /// the descriptors the connection cap sets aside (one upstream connection per client connection).
    public var maxIdleConnectionsPerUpstream: Int = 1024
    /// How often routes.json is checked for changes.
    public var watchInterval: Duration = .milliseconds(250)
    /// The admin token; nil reads `STRANGLER_ADMIN_TOKEN`, then `<data>/admin-token`, creating it if missing.
    public var adminToken: String?
    /// Largest body (request or answer) kept to compare a shadowed exchange; larger ones are counted as skipped.
    public var maxCompareBytes: Int = 1024 * 1024
    /// Shadows in flight at once (from the decision to shadow until the shadow's answer is in); the excess is dropped
    /// and counted.
    public var maxShadowsInFlight: Int = 256
    /// Pairs of answers waiting to be compared; beyond it, pairs are dropped and counted.
    public var maxQueuedComparisons: Int = 10_000
    /// Share of shadowed GETs for which the answering side is asked twice, to learn which pointers are noise.
    public var noiseShare: Double = 0.01
    /// Samples kept per route and mismatch signature in the diff store.
    public var samplesPerSignature: Int = 20
    /// How often shadow outcomes are compared and written to the diff store.
    public var recordInterval: Duration = .milliseconds(250)
    /// Event-loop threads; nil uses one per core.
    public var threads: Int?
    /// The shared store (`postgres://USER@HOST:PORT/DB`, `--store` or `STRANGLER_STORE`): the route table, its versions
    /// and audit log live there, shared by every proxy pointed at it, instead of in routes.json and the data
    /// directory. routes.json then only seeds a store that holds no table yet. nil: the file and the data directory.
    public var store: String?
    /// With a store: how often the head is re-read, in case a change's notification was missed (a dropped connection).
    public var storePollInterval: Duration = .seconds(5)
    /// With a store: how long one operation on it may take before the store counts as unreachable (a change is then
    /// refused with 503); connecting and migrating at start may take 30 s.
    public var storeTimeout: Duration = .seconds(3)
    /// With a store: how often this proxy reports itself (`GET /admin/instances`); an instance silent for three
    /// periods is flagged.
    public var instanceReportInterval: Duration = .seconds(2)
    /// With a store: this proxy's id among the instances; nil: `HOST:ADMIN-PORT`.
    public var instanceID: String?

    public init() {}

    /// `maxConnections`, or the default for the process's file-descriptor soft limit (4096 if it cannot be read).
    public var effectiveMaxConnections: Int {
        self.maxConnections
            ?? FileDescriptorLimit.defaultMaxConnections(
                softLimit: FileDescriptorLimit.current()?.soft ?? 4096, adminMaxConnections: self.adminMaxConnections,
                maxShadowsInFlight: self.maxShadowsInFlight)
    }
}
