public import JSON

/// What the gates may ask an application about itself (routes.json: `services.NAME.probes`, `monolith.probes`).
/// A probe left out keeps its default (the demo's endpoints); a probe set to `null` (or `false`) is one the
/// application does not have: the gate that needs it reads "not measured" and does not block.
///
/// ```json
/// "services": {
///   "orders": {
///     "url": "http://127.0.0.1:9002",
///     "probes": { "health": "/health", "syncLag": { "metrics": "/metrics", "name": "orders_sync_lag_events" },
///                 "reverseSync": null }
///   }
/// }
/// ```
public struct Probes: Sendable, Equatable {
    /// Where a service's sync lag (events of the monolith it has not applied yet) is read.
    public enum SyncLag: Sendable, Equatable {
        /// `GET path` answers `{"lagEvents": N}` (and optionally `lastEventId`, `lastError`).
        case status(String)
        /// `GET path` answers the Prometheus text format; the lag is the metric `name` (summed over its series).
        case metric(path: String, name: String)
    }

    /// Where the reverse sync (service → monolith) of a service's writes is read.
    public enum ReverseSync: Sendable, Equatable {
        /// The monolith's reverse-sync probe, which lists a feed per service (the default).
        case monolith
        /// `GET path` on the service itself answers `{"running": true, "lastError": null}`.
        case service(String)
        /// None declared.
        case none
    }

    /// `GET path` answers 2xx when healthy; nil: none declared.
    public var health: String?
    /// Services only; nil: none declared.
    public var syncLag: SyncLag?
    /// Services: where their reverse sync is read. The monolith: `.service(path)` is its own feed listing
    /// (`{"feeds": [{"service", "running", "lastError"}]}`), or `.none`.
    public var reverseSync: ReverseSync
    /// The monolith only: its event feed, read for its newest event id (`GET path?after=…&limit=1` answers
    /// `{"head": N}`), so that a service whose consumer is stuck cannot look in sync. nil: none.
    public var events: String?

    public init(health: String?, syncLag: SyncLag?, reverseSync: ReverseSync, events: String? = nil) {
        self.health = health
        self.syncLag = syncLag
        self.reverseSync = reverseSync
        self.events = events
    }

    /// A service's probes when none are declared: `GET /healthz`, `GET /sync/status`, and the monolith's feed list.
    public static let serviceDefaults = Probes(
        health: "/healthz", syncLag: .status("/sync/status"), reverseSync: .monolith)
    /// The monolith's: no health probe, `GET /reverse-sync/status` and `GET /events`.
    public static let monolithDefaults = Probes(
        health: nil, syncLag: nil, reverseSync: .service("/reverse-sync/status"), events: "/events")

    static let serviceKeys: Set<String> = ["health", "syncLag", "reverseSync"]
    static let monolithKeys: Set<String> = ["health", "reverseSync", "events"]
}

/// A record type `strangler reconcile NAME` compares between the monolith and a service
/// (routes.json: `services.NAME.entities.ENTITY`).
public struct Entity: Sendable, Equatable {
    /// The entity's name (the key in `entities`).
    public var name: String
    /// The list endpoint, the same on both sides (`/orders`).
    public var path: String
    /// The field that identifies a record (`id`).
    public var key: String

    public init(name: String, path: String, key: String = "id") {
        self.name = name
        self.path = path
        self.key = key
    }

    static let keys: Set<String> = ["path", "key"]
}

/// A service of routes.json as declared: its instances, probes and entities.
public struct ServiceDeclaration: Sendable, Equatable {
    /// Its instances and how requests are spread over them.
    public var group: UpstreamGroup
    public var probes: Probes
    /// In the order declared. A service declared as a URL string has one: named as the service, at `/NAME`, keyed
    /// by `id` (the demo's lists). `"entities": {}` declares none.
    public var entities: [Entity]
    /// The service's `"limits"` (and throttle keys): counted on the requests it answers, never on shadow copies.
    public var limits: LimitPolicy?

    /// Its first instance: the one the control plane asks (probes, reconcile).
    public var upstream: Upstream { self.group.primary }

    public init(group: UpstreamGroup, probes: Probes, entities: [Entity], limits: LimitPolicy? = nil) {
        self.group = group
        self.probes = probes
        self.entities = entities
        self.limits = limits
    }

    public init(upstream: Upstream, probes: Probes, entities: [Entity]) {
        self.init(group: UpstreamGroup(instances: [upstream]), probes: probes, entities: entities)
    }
}

extension RouteTable {
    /// A `monolith` or `services.NAME` value: a URL string, or an object with `url` or `instances`, `probes`,
    /// `entities` (services only) and the group's keys (`UpstreamGroup.keys`).
    static func parseUpstream(
        _ value: JSONValue, path: String, service: String?, problem: (String, String) -> Void
    ) -> ServiceDeclaration? {
        let defaults = service == nil ? Probes.monolithDefaults : Probes.serviceDefaults
        let defaultEntities = service.map { [Entity(name: $0, path: "/\($0)")] } ?? []
        if value.stringValue != nil {
            return Self.instance(value, at: path, problem: problem).map {
                .init(upstream: $0, probes: defaults, entities: defaultEntities)
            }
        }
        guard let members = value.objectValue else {
            problem(path, "must be a URL string or an object with \"url\" or \"instances\", not \(value.typeName)")
            return nil
        }
        let keys = UpstreamGroup.keys.union(
            service == nil
                ? ["url", "probes"] : Set(["url", "probes", "entities", "limits"]).union(LimitPolicy.throttleKeys))
        for member in members where !keys.contains(member.key) {
            problem("\(path).\(member.key)", "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
        }
        let group = Self.parseGroup(value, path: path, problem: problem)
        let probes = value["probes"].map {
            Self.parseProbes($0, path: "\(path).probes", defaults: defaults, problem: problem)
        }
        let entities = value["entities"].map {
            Self.parseEntities($0, path: "\(path).entities", problem: problem)
        }
        let limits =
            service == nil ? nil : LimitPolicy.parse(value["limits"], object: value, path: path, problem: problem)
        return group.map {
            .init(group: $0, probes: probes ?? defaults, entities: entities ?? defaultEntities, limits: limits)
        }
    }

    /// One instance's URL.
    static func instance(_ value: JSONValue, at path: String, problem: (String, String) -> Void) -> Upstream? {
        guard let text = value.stringValue else {
            problem(path, "must be a URL string such as \"http://127.0.0.1:8081\", not \(value.typeName)")
            return nil
        }
        switch Upstream.parse(text) {
        case .success(let upstream): return upstream
        case .failure(let error):
            problem(path, "\"\(text)\" \(error.reason)")
            return nil
        }
    }

    /// The group's keys of a `monolith` or `services.NAME` object: its instances and how they are used.
    static func parseGroup(_ value: JSONValue, path: String, problem: (String, String) -> Void) -> UpstreamGroup? {
        var instances: [Upstream] = []
        var complete = true
        switch (value["url"], value["instances"]) {
        case (.some, .some):
            problem("\(path).instances", "give either \"url\" (one instance) or \"instances\", not both")
            return nil
        case (.none, .none):
            problem("\(path).url", "is required (the URL, such as \"http://127.0.0.1:8081\"), or \"instances\"")
            return nil
        case (.some(let url), .none):
            guard let upstream = Self.instance(url, at: "\(path).url", problem: problem) else { return nil }
            instances = [upstream]
        case (.none, .some(let list)):
            guard let items = list.arrayValue, !items.isEmpty else {
                problem(
                    "\(path).instances",
                    "must be a non-empty array of URLs such as [\"http://127.0.0.1:9001\", \"http://127.0.0.1:9002\"], "
                        + "not \(list.arrayValue == nil ? list.typeName : "an empty array")")
                return nil
            }
            for (index, item) in items.enumerated() {
                let at = "\(path).instances[\(index)]"
                guard let upstream = Self.instance(item, at: at, problem: problem) else {
                    complete = false
                    continue
                }
                if let twin = instances.firstIndex(where: {
                    $0.authority == upstream.authority && $0.isTLS == upstream.isTLS
                }) {
                    problem(at, "\"\(upstream.url)\" is the same instance as \(path).instances[\(twin)]")
                    complete = false
                    continue
                }
                if let first = instances.first, first.pathPrefix != upstream.pathPrefix {
                    problem(
                        at,
                        "has the path prefix \"\(upstream.pathPrefix)\" but \(path).instances[0] has "
                            + "\"\(first.pathPrefix)\": the instances of one group serve the same paths")
                    complete = false
                    continue
                }
                instances.append(upstream)
            }
        }
        let tls = value["tls"].flatMap { Self.parseTLS($0, path: "\(path).tls", problem: problem) }
        if tls != nil, !instances.contains(where: \.isTLS), complete {
            problem("\(path).tls", "applies to https:// instances, and none is declared")
        }
        var balance = UpstreamGroup.Balance.roundRobin
        if let text = value["balance"] {
            if let name = text.stringValue, let chosen = UpstreamGroup.Balance(rawValue: name) {
                balance = chosen
            } else {
                problem(
                    "\(path).balance",
                    "\(text.jsonText) is not a balancing policy (expected round-robin or least-requests)")
            }
        }
        let health = value["health"].flatMap { Self.parseHealth($0, path: "\(path).health", problem: problem) }
        var ejection: UpstreamGroup.Ejection? = .defaults
        if let eject = value["eject"] {
            ejection = eject == .bool(false) ? nil : Self.parseEjection(eject, path: "\(path).eject", problem: problem)
        }
        func count(_ key: String) -> Int? {
            guard let field = value[key] else { return nil }
            guard case .number(let number) = field, number >= 1, number <= 1_000_000, number.rounded() == number else {
                problem("\(path).\(key)", "must be a whole number from 1 to 1000000, not \(field.jsonText)")
                return nil
            }
            return Int(number)
        }
        let maxConnections = count("maxConnections")
        let maxPending = count("maxPending")
        var retryBudget = UpstreamGroup.defaultRetryBudget
        if let field = value["retryBudget"] {
            if case .number(let share) = field, share >= 0, share <= 1 {
                retryBudget = share
            } else {
                problem(
                    "\(path).retryBudget",
                    "must be a share of requests from 0 to 1 (such as 0.2), not \(field.jsonText)")
            }
        }
        var resolveInterval: Duration?
        if let field = value["dnsRefresh"] {
            resolveInterval = Self.duration(field, at: "\(path).dnsRefresh", least: .seconds(1), problem: problem)
        }
        guard complete, !instances.isEmpty else { return nil }
        return UpstreamGroup(
            instances: instances.map { $0.with(tls: tls) }, balance: balance, health: health, ejection: ejection,
            maxConnections: maxConnections, maxPending: maxPending, retryBudget: retryBudget,
            resolveInterval: resolveInterval)
    }

    static func parseTLS(_ value: JSONValue, path: String, problem: (String, String) -> Void) -> UpstreamTLS? {
        guard let fields = value.objectValue else {
            problem(path, "must be an object with ca, cert, key or insecure, not \(value.typeName)")
            return nil
        }
        for field in fields where !UpstreamTLS.keys.contains(field.key) {
            problem("\(path).\(field.key)", "unknown key (expected one of: ca, cert, insecure, key)")
        }
        var tls = UpstreamTLS()
        func file(_ key: String) -> String? {
            guard let field = value[key] else { return nil }
            guard let text = field.stringValue, !text.isEmpty, !text.utf8.contains(0) else {
                problem("\(path).\(key)", "must be the path of a PEM file, not \(field.jsonText)")
                return nil
            }
            return text
        }
        tls.ca = file("ca")
        tls.cert = file("cert")
        tls.key = file("key")
        if (value["cert"] == nil) != (value["key"] == nil) {
            let missing = value["cert"] == nil ? "cert" : "key"
            let other = missing == "cert" ? "key" : "cert"
            problem("\(path).\(missing)", "is required with \"\(other)\" (a client certificate and its key)")
        }
        switch value["insecure"] {
        case .none: break
        case .some(.bool(let flag)): tls.insecure = flag
        case .some(let other): problem("\(path).insecure", "must be true or false, not \(other.jsonText)")
        }
        if tls.insecure, tls.ca != nil {
            problem("\(path).insecure", "true verifies nothing, so \"ca\" would be ignored: give one or the other")
        }
        return tls
    }

    static func parseHealth(
        _ value: JSONValue, path: String, problem: (String, String) -> Void
    ) -> UpstreamGroup.HealthCheck? {
        guard let fields = value.objectValue else {
            problem(
                path, "must be an object such as {\"path\": \"/healthz\", \"interval\": \"2s\"}, not \(value.typeName)")
            return nil
        }
        for field in fields where !UpstreamGroup.HealthCheck.keys.contains(field.key) {
            problem(
                "\(path).\(field.key)",
                "unknown key (expected one of: \(UpstreamGroup.HealthCheck.keys.sorted().joined(separator: ", ")))")
        }
        guard let pathValue = value["path"] else {
            problem("\(path).path", "is required (the path to GET, such as \"/healthz\")")
            return nil
        }
        var check = UpstreamGroup.HealthCheck(path: "/")
        var valid = true
        if let probe = Self.probePath(pathValue, at: "\(path).path", problem: problem) {
            check.path = probe
        } else {
            valid = false
        }
        if let field = value["interval"] {
            if let duration = Self.duration(field, at: "\(path).interval", least: .milliseconds(100), problem: problem)
            {
                check.interval = duration
            } else {
                valid = false
            }
        }
        if let field = value["timeout"] {
            if let duration = Self.duration(field, at: "\(path).timeout", least: .milliseconds(10), problem: problem) {
                check.timeout = duration
            } else {
                valid = false
            }
        }
        for (key, keyPath) in [
            ("unhealthyAfter", \UpstreamGroup.HealthCheck.unhealthyAfter), ("healthyAfter", \.healthyAfter),
        ] {
            guard let field = value[key] else { continue }
            if case .number(let number) = field, number >= 1, number <= 100, number.rounded() == number {
                check[keyPath: keyPath] = Int(number)
            } else {
                problem("\(path).\(key)", "must be a whole number of checks from 1 to 100, not \(field.jsonText)")
                valid = false
            }
        }
        return valid ? check : nil
    }

    static func parseEjection(
        _ value: JSONValue, path: String, problem: (String, String) -> Void
    ) -> UpstreamGroup.Ejection? {
        guard let fields = value.objectValue else {
            problem(
                path,
                "must be an object such as {\"consecutive\": 5, \"base\": \"10s\"}, or false, not \(value.typeName)")
            return nil
        }
        for field in fields where !UpstreamGroup.Ejection.keys.contains(field.key) {
            problem(
                "\(path).\(field.key)",
                "unknown key (expected one of: \(UpstreamGroup.Ejection.keys.sorted().joined(separator: ", ")))")
        }
        var ejection = UpstreamGroup.Ejection.defaults
        var valid = true
        if let field = value["consecutive"] {
            if case .number(let number) = field, number >= 1, number <= 1000, number.rounded() == number {
                ejection.consecutive = Int(number)
            } else {
                problem(
                    "\(path).consecutive", "must be a whole number of failures from 1 to 1000, not \(field.jsonText)")
                valid = false
            }
        }
        if let field = value["maxPercent"] {
            if case .number(let number) = field, number >= 0, number <= 100, number.rounded() == number {
                ejection.maxPercent = Int(number)
            } else {
                problem("\(path).maxPercent", "must be a whole percentage from 0 to 100, not \(field.jsonText)")
                valid = false
            }
        }
        for (key, keyPath) in [("base", \UpstreamGroup.Ejection.base), ("max", \.max)] {
            guard let field = value[key] else { continue }
            if let duration = Self.duration(field, at: "\(path).\(key)", least: .milliseconds(1), problem: problem) {
                ejection[keyPath: keyPath] = duration
            } else {
                valid = false
            }
        }
        if valid, ejection.max < ejection.base {
            problem(
                "\(path).max",
                "\(DurationText.format(ejection.max)) is shorter than base \(DurationText.format(ejection.base))")
            valid = false
        }
        return valid ? ejection : nil
    }

    /// A duration string (`"2s"`, `"250ms"`) of at least `least`.
    static func duration(
        _ value: JSONValue, at path: String, least: Duration, problem: (String, String) -> Void
    ) -> Duration? {
        guard let text = value.stringValue, let duration = DurationText.parse(text) else {
            problem(path, "must be a duration such as \"2s\" or \"250ms\", not \(value.jsonText)")
            return nil
        }
        guard duration >= least else {
            problem(path, "\"\(text)\" is shorter than \(DurationText.format(least))")
            return nil
        }
        return duration
    }

    /// A probe's path: `/…`, no fragment, printable ASCII (it goes into a request line as written).
    static func probePath(_ value: JSONValue, at path: String, problem: (String, String) -> Void) -> String? {
        guard let text = value.stringValue else {
            problem(path, "must be a path such as \"/healthz\", or null for none, not \(value.typeName)")
            return nil
        }
        guard text.hasPrefix("/"), !text.contains("#"), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            problem(path, "\"\(text)\" is not a path (it must start with /, without spaces, controls or a fragment)")
            return nil
        }
        return text
    }

    static func parseProbes(
        _ value: JSONValue, path base: String, defaults: Probes, problem: (String, String) -> Void
    ) -> Probes {
        var probes = defaults
        guard let members = value.objectValue else {
            problem(base, "must be an object of probes (health, syncLag, reverseSync), not \(value.typeName)")
            return probes
        }
        let isMonolith = defaults == .monolithDefaults
        let keys = isMonolith ? Probes.monolithKeys : Probes.serviceKeys
        for member in members where !keys.contains(member.key) {
            problem(
                "\(base).\(member.key)",
                "unknown probe (expected one of: \(keys.sorted().joined(separator: ", "))"
                    + (isMonolith && member.key == "syncLag" ? "; a sync lag is a service's" : "") + ")")
        }
        func none(_ value: JSONValue) -> Bool { value == .null || value == .bool(false) }
        if let value = value["health"] {
            probes.health = none(value) ? nil : Self.probePath(value, at: "\(base).health", problem: problem)
        }
        if let value = value["events"] {
            probes.events = none(value) ? nil : Self.probePath(value, at: "\(base).events", problem: problem)
        }
        if let value = value["reverseSync"] {
            if none(value) {
                probes.reverseSync = .none
            } else if let path = Self.probePath(value, at: "\(base).reverseSync", problem: problem) {
                probes.reverseSync = .service(path)
            }
        }
        if let value = value["syncLag"], !isMonolith {
            if none(value) {
                probes.syncLag = nil
            } else if value.stringValue != nil {
                probes.syncLag = Self.probePath(value, at: "\(base).syncLag", problem: problem).map { .status($0) }
            } else if let fields = value.objectValue {
                let at = "\(base).syncLag"
                for field in fields where field.key != "metrics" && field.key != "name" {
                    problem("\(at).\(field.key)", "unknown key (expected metrics, name)")
                }
                let metrics = value["metrics"].flatMap { Self.probePath($0, at: "\(at).metrics", problem: problem) }
                if value["metrics"] == nil { problem("\(at).metrics", "is required (the path, such as \"/metrics\")") }
                var name: String?
                switch value["name"] {
                case .some(.string(let text)) where Self.isMetricName(text): name = text
                case .some(let other):
                    problem(
                        "\(at).name", "\(other.jsonText) is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
                case .none: problem("\(at).name", "is required (the metric, such as \"orders_sync_lag_events\")")
                }
                if let metrics, let name { probes.syncLag = .metric(path: metrics, name: name) }
            } else {
                problem(
                    "\(base).syncLag",
                    "must be a path, {\"metrics\": PATH, \"name\": METRIC} or null for none, not \(value.typeName)")
            }
        }
        return probes
    }

    static func isMetricName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first != UInt8(ascii: "0") else { return false }
        return text.utf8.enumerated().allSatisfy { index, byte in
            byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || (byte >= 0x41 && byte <= 0x5a)
                || (byte >= 0x61 && byte <= 0x7a) || (index > 0 && byte >= 0x30 && byte <= 0x39)
        }
    }

    static func parseEntities(_ value: JSONValue, path base: String, problem: (String, String) -> Void) -> [Entity] {
        guard let members = value.objectValue else {
            problem(base, "must be an object of entity → {\"path\", \"key\"}, not \(value.typeName)")
            return []
        }
        var entities: [Entity] = []
        for (name, declaration) in members {
            let at = "\(base).\(name)"
            guard Self.isIdentifier(name) else {
                problem(at, "entity names use letters, digits, '.', '_' and '-'")
                continue
            }
            guard let fields = declaration.objectValue else {
                problem(
                    at,
                    "must be an object such as {\"path\": \"/\(name)\", \"key\": \"id\"}, not \(declaration.typeName)"
                )
                continue
            }
            for field in fields where !Entity.keys.contains(field.key) {
                problem("\(at).\(field.key)", "unknown key (expected path, key)")
            }
            var path: String?
            if let value = declaration["path"] {
                path = Self.probePath(value, at: "\(at).path", problem: problem)
                if let text = path, text.contains("?") {
                    problem("\(at).path", "\"\(text)\" has a query: reconcile adds its own paging parameters")
                    path = nil
                }
            } else {
                problem("\(at).path", "is required (the list endpoint, such as \"/\(name)\")")
            }
            var key = "id"
            switch declaration["key"] {
            case .none: break
            case .some(.string(let text)) where !text.isEmpty: key = text
            case .some(let other): problem("\(at).key", "must be a field name such as \"id\", not \(other.jsonText)")
            }
            if let path { entities.append(Entity(name: name, path: path, key: key)) }
        }
        return entities
    }
}
