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

/// A service of routes.json as declared: its URL, probes and entities.
public struct ServiceDeclaration: Sendable, Equatable {
    public var upstream: Upstream
    public var probes: Probes
    /// In the order declared. A service declared as a URL string has one: named as the service, at `/NAME`, keyed
    /// by `id` (the demo's lists). `"entities": {}` declares none.
    public var entities: [Entity]

    public init(upstream: Upstream, probes: Probes, entities: [Entity]) {
        self.upstream = upstream
        self.probes = probes
        self.entities = entities
    }
}

extension RouteTable {
    /// A `monolith` or `services.NAME` value: a URL string, or `{ "url", "probes", "entities" }` (entities for
    /// services only).
    static func parseUpstream(
        _ value: JSONValue, path: String, service: String?, problem: (String, String) -> Void
    ) -> ServiceDeclaration? {
        let defaults = service == nil ? Probes.monolithDefaults : Probes.serviceDefaults
        let defaultEntities = service.map { [Entity(name: $0, path: "/\($0)")] } ?? []
        func url(_ value: JSONValue, at path: String) -> Upstream? {
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
        if value.stringValue != nil {
            return url(value, at: path).map { .init(upstream: $0, probes: defaults, entities: defaultEntities) }
        }
        guard let members = value.objectValue else {
            problem(path, "must be a URL string or an object with \"url\", not \(value.typeName)")
            return nil
        }
        let keys: Set<String> = service == nil ? ["url", "probes"] : ["url", "probes", "entities"]
        for member in members where !keys.contains(member.key) {
            problem("\(path).\(member.key)", "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
        }
        guard let urlValue = value["url"] else {
            problem("\(path).url", "is required (the URL, such as \"http://127.0.0.1:8081\")")
            return nil
        }
        let upstream = url(urlValue, at: "\(path).url")
        let probes = value["probes"].map {
            Self.parseProbes($0, path: "\(path).probes", defaults: defaults, problem: problem)
        }
        let entities = value["entities"].map {
            Self.parseEntities($0, path: "\(path).entities", problem: problem)
        }
        return upstream.map {
            .init(upstream: $0, probes: probes ?? defaults, entities: entities ?? defaultEntities)
        }
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
