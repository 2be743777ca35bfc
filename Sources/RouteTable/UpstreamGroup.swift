public import JSON

/// The instances of the monolith or of one service, and how the proxy spreads requests over them, watches their
/// health and stops sending to the ones that fail (routes.json: `monolith` and `services.NAME`).
///
/// ```json
/// "leads": {
///   "instances": ["http://10.0.0.5:9001", "http://10.0.0.6:9001"],
///   "balance": "least-requests",
///   "health": { "path": "/healthz", "interval": "2s", "timeout": "1s", "unhealthyAfter": 3, "healthyAfter": 2 },
///   "eject": { "consecutive": 5, "base": "10s", "max": "5m", "maxPercent": 50 },
///   "maxConnections": 100, "maxPending": 50, "retryBudget": 0.2
/// }
/// ```
///
/// A group declared as a URL string has that one instance and the defaults. What is configured here is `…Config` in
/// YARP's terms; what the proxy observes (healthy, ejected, in flight) lives in the proxy, per instance.
public struct UpstreamGroup: Sendable, Equatable {
    /// How an instance is chosen for each request.
    public enum Balance: String, Sendable, CaseIterable {
        /// In turn (nginx's default, Envoy's `ROUND_ROBIN`).
        case roundRobin = "round-robin"
        /// Of two instances drawn at random, the one with fewer requests in flight (power of two choices: YARP's
        /// `PowerOfTwoChoices`, Envoy's `LEAST_REQUEST` with `choice_count: 2`).
        case leastRequests = "least-requests"
    }

    /// Active health checks: `GET path` on every instance each `interval`; an answer 2xx or 3xx within `timeout` is a
    /// pass. `unhealthyAfter` failures in a row take an instance out; `healthyAfter` passes in a row bring it back.
    public struct HealthCheck: Sendable, Equatable {
        public var path: String
        public var interval: Duration
        public var timeout: Duration
        public var unhealthyAfter: Int
        public var healthyAfter: Int

        public init(
            path: String, interval: Duration = .seconds(2), timeout: Duration = .seconds(1), unhealthyAfter: Int = 3,
            healthyAfter: Int = 2
        ) {
            self.path = path
            self.interval = interval
            self.timeout = timeout
            self.unhealthyAfter = unhealthyAfter
            self.healthyAfter = healthyAfter
        }

        static let keys: Set<String> = ["path", "interval", "timeout", "unhealthyAfter", "healthyAfter"]
    }

    /// Passive outlier ejection: `consecutive` failures in a row (connect failures, resets, timeouts or 5xx answers)
    /// eject an instance for `base`, doubled with each ejection that follows soon after the last (at most `max`); at
    /// most `maxPercent` of the instances (rounded down) are ejected at once.
    public struct Ejection: Sendable, Equatable {
        public var consecutive: Int
        public var base: Duration
        public var max: Duration
        public var maxPercent: Int

        public init(
            consecutive: Int = 5, base: Duration = .seconds(10), max: Duration = .seconds(300), maxPercent: Int = 50
        ) {
            self.consecutive = consecutive
            self.base = base
            self.max = max
            self.maxPercent = maxPercent
        }

        public static let defaults = Ejection()
        static let keys: Set<String> = ["consecutive", "base", "max", "maxPercent"]
    }

    /// In the order declared; never empty.
    public var instances: [Upstream]
    public var balance: Balance
    /// Nil: no active checks (an instance counts as healthy until ejection says otherwise).
    public var health: HealthCheck?
    /// Nil: `"eject": false`, never ejected.
    public var ejection: Ejection?
    /// Connections open at once to one instance; nil: no limit.
    public var maxConnections: Int?
    /// Requests waiting at once for a connection to one instance (being opened, or one of `maxConnections` to
    /// free); more are answered 503 at once. Nil: no limit.
    public var maxPending: Int?
    /// Retries elsewhere at most this share of the group's requests (each request adds this much of a retry to a
    /// budget that a retry spends, saved up to a burst of 50: Linkerd's retry budget).
    public var retryBudget: Double
    /// How often host names are resolved again (`"dnsRefresh"`; nil: `Self.defaultResolveInterval`).
    public var resolveInterval: Duration?

    public static let defaultRetryBudget = 0.2
    public static let defaultResolveInterval: Duration = .seconds(30)

    public init(
        instances: [Upstream], balance: Balance = .roundRobin, health: HealthCheck? = nil,
        ejection: Ejection? = .defaults, maxConnections: Int? = nil, maxPending: Int? = nil,
        retryBudget: Double = Self.defaultRetryBudget, resolveInterval: Duration? = nil
    ) {
        precondition(!instances.isEmpty, "a group has at least one instance")
        self.instances = instances
        self.balance = balance
        self.health = health
        self.ejection = ejection
        self.maxConnections = maxConnections
        self.maxPending = maxPending
        self.retryBudget = retryBudget
        self.resolveInterval = resolveInterval
    }

    /// The first instance: the one the control plane asks (probes, reconcile) and the proxy uses when only one is
    /// declared.
    public var primary: Upstream { self.instances[0] }

    /// One instance, no limits, no active checks: the proxy sends every request to it without keeping any state
    /// (ejection never takes out a group's only instance).
    public var isSingle: Bool {
        self.instances.count == 1 && self.health == nil && self.maxConnections == nil && self.maxPending == nil
    }

    /// The most instances ejected at once.
    public var maxEjected: Int {
        guard let ejection else { return 0 }
        return self.instances.count * ejection.maxPercent / 100
    }

    /// Whether any instance is `https://` with verification switched off.
    public var isInsecure: Bool { self.instances.contains { $0.tls?.insecure == true } }

    /// The keys of a group's object in routes.json (besides `url`, `probes` and `entities`).
    static let keys: Set<String> = [
        "instances", "balance", "tls", "health", "eject", "maxConnections", "maxPending", "retryBudget", "dnsRefresh",
    ]
}

extension RouteTable {
    /// Every group as configured, the monolith first: `[{ name, kind, balance, health, instances: [{ url, tls,
    /// insecure }] }]` (what `strangler routes` shows without a running proxy; the proxy adds what it observes).
    public var upstreamsJSON: JSONValue {
        .array(self.namedGroups.map { _, name, group in group.json(name: name) })
    }
}

extension UpstreamGroup {
    /// `{ name, kind, balance, health, instances: [{ url, tls, insecure }] }`; `name` nil: the monolith.
    public func json(name: String?, instances: [JSONValue]? = nil) -> JSONValue {
        .object([
            ("name", .string(name ?? "monolith")), ("kind", .string(name == nil ? "monolith" : "service")),
            ("balance", .string(self.balance.rawValue)),
            (
                "health",
                self.health.map { .string("GET \($0.path) every \(DurationText.format($0.interval))") } ?? .null
            ),
            ("instances", .array(instances ?? self.instances.map { .object($0.configurationMembers) })),
        ])
    }
}

extension Upstream {
    /// `url`, `tls`, `insecure`: an instance as configured.
    public var configurationMembers: [(key: String, value: JSONValue)] {
        [("url", .string(self.url)), ("tls", .bool(self.isTLS)), ("insecure", .bool(self.tls?.insecure == true))]
    }
}
