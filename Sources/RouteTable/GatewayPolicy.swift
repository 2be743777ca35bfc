public import JSON

/// A rate or a quota in routes.json: `"100/s"`, `"600/m"`, `"50/10s"`, `"10000/1d"`: a count of requests per period.
public struct RateText: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var count: Int
    public var period: Duration
    /// `period` in nanoseconds.
    public var periodNanoseconds: Int64 { Route.nanoseconds(self.period) }
    /// The period in whole seconds, rounded up (at least 1): the `w` of `RateLimit-Policy`.
    public var windowSeconds: Int {
        let nanoseconds = self.periodNanoseconds
        return max(1, Int((nanoseconds + 999_999_999) / 1_000_000_000))
    }

    public init(count: Int, period: Duration) {
        self.count = count
        self.period = period
    }

    public var description: String { "\(self.count)/\(DurationText.format(self.period))" }

    /// The most requests a rate may name (a larger count is a typo; the arithmetic stays far from overflow).
    static let largestCount = 1_000_000_000

    /// `COUNT/PERIOD`, where PERIOD is a unit (`s`, `m`, `h`, `d`: one of it) or a duration (`10s`, `1d`, `500ms`).
    public static func parse(_ text: String) -> RateText? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), count > 0, count <= Self.largestCount,
            parts[0].utf8.allSatisfy({ (0x30...0x39).contains($0) })
        else { return nil }
        let unit = String(parts[1])
        let period: Duration?
        switch unit {
        case "s": period = .seconds(1)
        case "m": period = .seconds(60)
        case "h": period = .seconds(3600)
        case "d": period = .seconds(86_400)
        default: period = DurationText.parse(unit)
        }
        guard let period, period >= .milliseconds(1) else { return nil }
        return RateText(count: count, period: period)
    }
}

/// What a limit's requests are counted by.
public enum LimitKey: String, Sendable, Equatable, Hashable, CaseIterable {
    /// The client's identity (an API key's or a token's client); a request without one counts by its address.
    case client
    /// The client's address (the connection's peer).
    case ip
    /// Every request alike: one budget for the scope.
    case route
}

/// `"limits"` of a route, a service or the whole table: a token bucket (`rate`, `burst`), a quota over a longer
/// window (`quota`), both counted `by` client, address or route; and a cap on requests in flight (`maxInFlight`)
/// whose excess waits in a queue of `maxQueued` for at most `queueTimeout`.
///
/// ```json
/// "limits": { "rate": "100/s", "burst": 200, "by": "client", "quota": "10000/1d",
///             "maxInFlight": 50, "queueTimeout": "2s" }
/// ```
public struct LimitPolicy: Sendable, Equatable, Hashable {
    /// The bucket's refill rate; nil: no token bucket.
    public var rate: RateText?
    /// The bucket's size: requests admitted at once after a quiet spell (default: the rate's count).
    public var burst: Int
    public var by: LimitKey
    /// Requests per fixed window (aligned to the Unix epoch, as Kong's windows are); nil: no quota.
    public var quota: RateText?
    /// Requests forwarded at once; nil: no cap.
    public var maxInFlight: Int?
    /// How long a request past `maxInFlight` waits for a slot before it is answered 503.
    public var queueTimeout: Duration
    /// Requests that may wait at once; past it, 503 at once.
    public var maxQueued: Int

    public init(
        rate: RateText? = nil, burst: Int? = nil, by: LimitKey = .client, quota: RateText? = nil,
        maxInFlight: Int? = nil, queueTimeout: Duration = Self.defaultQueueTimeout, maxQueued: Int? = nil
    ) {
        self.rate = rate
        self.burst = burst ?? rate?.count ?? 1
        self.by = by
        self.quota = quota
        self.maxInFlight = maxInFlight
        self.queueTimeout = queueTimeout
        self.maxQueued = maxQueued ?? maxInFlight ?? 0
    }

    /// Whether any request is counted (a bucket or a quota).
    public var counts: Bool { self.rate != nil || self.quota != nil }

    public static let defaultQueueTimeout: Duration = .seconds(1)
    public static let keys: Set<String> = [
        "rate", "burst", "by", "quota", "maxInFlight", "queueTimeout", "maxQueued",
    ]
    /// The throttle's keys, also taken directly on a route or a service object.
    public static let throttleKeys: Set<String> = ["maxInFlight", "queueTimeout", "maxQueued"]
    static let largestBurst = 1_000_000_000
    static let largestInFlight = 1_000_000

    /// A `"limits"` value and the throttle keys written on the object itself (`object`: the route or service).
    static func parse(
        _ value: JSONValue?, object: JSONValue?, path base: String, problem: (String, String) -> Void
    ) -> LimitPolicy? {
        var limits: [(key: String, value: JSONValue)] = []
        if let value {
            guard let members = value.objectValue else {
                problem("\(base).limits", "must be an object such as {\"rate\": \"100/s\", \"burst\": 200}")
                return nil
            }
            for member in members where !Self.keys.contains(member.key) {
                problem(
                    "\(base).limits.\(member.key)",
                    "unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
            }
            limits = members.filter { Self.keys.contains($0.key) }.map { ($0.key, $0.value) }
        }
        for key in Self.throttleKeys.sorted() {
            guard let item = object?[key] else { continue }
            if limits.contains(where: { $0.key == key }) {
                problem("\(base).\(key)", "is also given in \(base).limits.\(key): give it once")
                continue
            }
            limits.append((key, item))
        }
        guard !limits.isEmpty else { return value == nil ? nil : LimitPolicy() }
        func place(_ key: String) -> String {
            value?[key] != nil ? "\(base).limits.\(key)" : "\(base).\(key)"
        }
        func item(_ key: String) -> JSONValue? { limits.first { $0.key == key }?.value }
        func rateValue(_ key: String, example: String) -> RateText? {
            guard let item = item(key) else { return nil }
            guard let text = item.stringValue, let rate = RateText.parse(text) else {
                problem(place(key), "must be a rate such as \"\(example)\" (requests / s, m, h, d or a duration)")
                return nil
            }
            return rate
        }
        func whole(_ key: String, largest: Int) -> Int? {
            guard let item = item(key) else { return nil }
            guard let number = item.numberValue, number.rounded() == number, number >= 1, number <= Double(largest)
            else {
                problem(place(key), "must be a whole number from 1 to \(largest), not \(item.jsonText)")
                return nil
            }
            return Int(number)
        }
        let rate = rateValue("rate", example: "100/s")
        let quota = rateValue("quota", example: "10000/1d")
        let burst = whole("burst", largest: Self.largestBurst)
        if burst != nil, item("rate") == nil { problem(place("burst"), "needs a \"rate\" (the bucket's refill)") }
        var by = LimitKey.client
        if let item = item("by") {
            if let text = item.stringValue, let key = LimitKey(rawValue: text) {
                by = key
            } else {
                problem(place("by"), "must be \"client\", \"ip\" or \"route\", not \(item.jsonText)")
            }
        }
        let maxInFlight = whole("maxInFlight", largest: Self.largestInFlight)
        var maxQueued: Int?
        if let queued = item("maxQueued") {
            if let number = queued.numberValue, number.rounded() == number, number >= 0,
                number <= Double(Self.largestInFlight)
            {
                maxQueued = Int(number)
            } else {
                problem(place("maxQueued"), "must be a whole number from 0 to \(Self.largestInFlight)")
            }
        }
        var queueTimeout = Self.defaultQueueTimeout
        if let item = item("queueTimeout") {
            if let text = item.stringValue, let duration = DurationText.parse(text) {
                queueTimeout = duration
            } else {
                problem(place("queueTimeout"), "must be a duration such as \"2s\" or \"500ms\", not \(item.jsonText)")
            }
        }
        if maxInFlight == nil {
            for key in ["queueTimeout", "maxQueued"] where item(key) != nil {
                problem(place(key), "needs \"maxInFlight\" (the cap the queue waits behind)")
            }
        }
        return LimitPolicy(
            rate: rate, burst: burst, by: by, quota: quota, maxInFlight: maxInFlight, queueTimeout: queueTimeout,
            maxQueued: maxQueued)
    }
}

/// Who may call a route (`"allow"`, `"deny"`), and whether the rule refuses or only observes (`"enforce"`).
///
/// ```json
/// { "id": "deals.list", …, "allow": ["web", "service:contacts"], "deny": ["mobile"], "enforce": false }
/// ```
public struct AccessRule: Sendable, Equatable, Hashable {
    /// The clients that may call the route; nil: anyone (an anonymous request too) but those denied.
    public var allow: [String]?
    public var deny: [String]
    /// Nil: the table's `"enforce"` (default true).
    public var enforce: Bool?

    public init(allow: [String]? = nil, deny: [String] = [], enforce: Bool? = nil) {
        self.allow = allow
        self.deny = deny
        self.enforce = enforce
    }

    /// What the rule says of a caller (`client`: its identity, nil when anonymous).
    public func verdict(for client: String?) -> AccessVerdict {
        if let client, self.deny.contains(client) { return .forbidden }
        guard let allow else { return .allowed }
        guard let client else { return .unauthenticated }
        return allow.contains(client) ? .allowed : .forbidden
    }

    /// Whether the rule says anything (an empty rule needs no identity).
    public var isEmpty: Bool { self.allow == nil && self.deny.isEmpty }
}

public enum AccessVerdict: String, Sendable, Equatable {
    case allowed
    /// No valid identity, and the route allows only some: 401.
    case unauthenticated
    /// A known identity that may not: 403.
    case forbidden
}

/// `"clients"`: the identities the proxy knows by API key, each key stored as its SHA-256 (`sha256:HEX`), never as
/// itself. A service calling through the gateway is a client named `service:NAME`.
///
/// ```json
/// "clients": { "web": { "keys": ["sha256:9f86d0…"] }, "service:deals": { "keys": ["sha256:…"] } }
/// ```
public struct ClientRegistry: Sendable, Equatable, Hashable {
    /// Client names by key digest (64 lowercase hex digits).
    public var byDigest: [String: String]
    /// Every declared client, by name, with its digests in file order.
    public var clients: [String: [String]]

    public init(clients: [String: [String]] = [:]) {
        self.clients = clients
        var byDigest: [String: String] = [:]
        for (name, digests) in clients {
            for digest in digests { byDigest[digest] = name }
        }
        self.byDigest = byDigest
    }

    public var isEmpty: Bool { self.clients.isEmpty }
    public static let keys: Set<String> = ["keys"]
    public static let digestPrefix = "sha256:"

    /// Whether `name` can name a client: an identifier, or `service:` and one.
    public static func isClientName(_ name: String) -> Bool {
        if name.hasPrefix("service:") { return RouteTable.isIdentifier(String(name.dropFirst("service:".count))) }
        return RouteTable.isIdentifier(name)
    }

    static func parse(
        _ value: JSONValue, services: Set<String>, problem: (String, String) -> Void
    ) -> ClientRegistry {
        guard let entries = value.objectValue else {
            problem("$.clients", "must be an object of name → {\"keys\": [\"sha256:…\"]}, not \(value.typeName)")
            return ClientRegistry()
        }
        var clients: [String: [String]] = [:]
        var owners: [String: String] = [:]
        for (name, entry) in entries {
            let path = "$.clients.\(name)"
            guard Self.isClientName(name) else {
                problem(path, "client names use letters, digits, '.', '_' and '-' (or service:NAME)")
                continue
            }
            if name.hasPrefix("service:"), !services.contains(String(name.dropFirst("service:".count))) {
                problem(path, "service \"\(name.dropFirst("service:".count))\" is not declared in $.services")
            }
            guard let members = entry.objectValue else {
                problem(path, "must be an object such as {\"keys\": [\"sha256:…\"]}, not \(entry.typeName)")
                continue
            }
            for member in members where !Self.keys.contains(member.key) {
                problem("\(path).\(member.key)", "unknown key (expected: keys)")
            }
            var digests: [String] = []
            switch entry["keys"] {
            case .none: problem("\(path).keys", "is required (an array of \"sha256:HEX\" key digests)")
            case .some(.array(let items)):
                for (index, item) in items.enumerated() {
                    guard let text = item.stringValue, let digest = Self.digest(text) else {
                        problem(
                            "\(path).keys[\(index)]",
                            "must be \"sha256:\" and 64 hex digits (the key's SHA-256, never the key itself; "
                                + "`strangler clients add \(name)` makes one)")
                        continue
                    }
                    if let owner = owners[digest] {
                        problem("\(path).keys[\(index)]", "the same key is already $.clients.\(owner)'s")
                        continue
                    }
                    owners[digest] = name
                    digests.append(digest)
                }
            case .some(let other):
                problem("\(path).keys", "must be an array of \"sha256:HEX\" key digests, not \(other.typeName)")
            }
            clients[name] = digests
        }
        return ClientRegistry(clients: clients)
    }

    /// The 64 lowercase hex digits of `sha256:HEX` (either case), or nil.
    static func digest(_ text: String) -> String? {
        guard text.hasPrefix(Self.digestPrefix) else { return nil }
        let hex = text.dropFirst(Self.digestPrefix.count).lowercased()
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return hex
    }
}

/// `"jwt"`: bearer tokens the proxy verifies (signature by a key of `jwks`, `iss`, `aud`, `exp`/`nbf` within
/// `leeway`), whose `clientClaim` (default `sub`) names the client.
public struct JWTPolicy: Sendable, Equatable, Hashable {
    public var issuer: String?
    public var audience: String?
    /// A JSON Web Key Set file (RFC 7517), read when the table is loaded.
    public var jwks: String
    public var clientClaim: String
    public var leeway: Duration

    public init(
        issuer: String?, audience: String?, jwks: String, clientClaim: String = "sub", leeway: Duration = .seconds(30)
    ) {
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.clientClaim = clientClaim
        self.leeway = leeway
    }

    public static let keys: Set<String> = ["issuer", "audience", "jwks", "clientClaim", "leeway"]

    static func parse(_ value: JSONValue, problem: (String, String) -> Void) -> JWTPolicy? {
        guard let members = value.objectValue else {
            problem("$.jwt", "must be an object with \"jwks\" (a key set file), \"issuer\" and \"audience\"")
            return nil
        }
        for member in members where !Self.keys.contains(member.key) {
            problem(
                "$.jwt.\(member.key)", "unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        func text(_ key: String) -> String? {
            guard let item = value[key] else { return nil }
            guard let text = item.stringValue, !text.isEmpty else {
                problem("$.jwt.\(key)", "must be a non-empty string, not \(item.jsonText)")
                return nil
            }
            return text
        }
        let jwks = text("jwks")
        if value["jwks"] == nil { problem("$.jwt.jwks", "is required (a JSON Web Key Set file)") }
        var leeway = Duration.seconds(30)
        if let item = value["leeway"] {
            if let text = item.stringValue, let duration = DurationText.parse(text), duration <= .seconds(600) {
                leeway = duration
            } else {
                problem("$.jwt.leeway", "must be a duration of at most 10m, such as \"30s\"")
            }
        }
        guard let jwks else { return nil }
        return JWTPolicy(
            issuer: text("issuer"), audience: text("audience"), jwks: jwks, clientClaim: text("clientClaim") ?? "sub",
            leeway: leeway)
    }
}

extension AccessRule {
    static let keys: Set<String> = ["allow", "deny", "enforce"]

    /// A route's `allow`, `deny` and `enforce`; nil when it has none. Names must be declared clients, or services
    /// as `service:NAME`, unless tokens may name clients (`anyName`).
    static func parse(
        _ route: JSONValue, path base: String, clients: ClientRegistry, services: Set<String>, anyName: Bool,
        problem: (String, String) -> Void
    ) -> AccessRule? {
        guard route["allow"] != nil || route["deny"] != nil || route["enforce"] != nil else { return nil }
        func names(_ key: String) -> [String]? {
            guard let item = route[key] else { return nil }
            guard let list = item.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                problem("\(base).\(key)", "must be an array of client names such as [\"web\", \"service:deals\"]")
                return nil
            }
            let texts = list.compactMap(\.stringValue)
            for (index, name) in texts.enumerated() {
                let place = "\(base).\(key)[\(index)]"
                if !ClientRegistry.isClientName(name) {
                    problem(place, "\"\(name)\" is not a client name (letters, digits, '.', '_', '-', or service:NAME)")
                } else if name.hasPrefix("service:") {
                    let service = String(name.dropFirst("service:".count))
                    if !services.contains(service) {
                        problem(place, "service \"\(service)\" is not declared in $.services")
                    }
                } else if !anyName, clients.clients[name] == nil {
                    problem(
                        place, "client \"\(name)\" is not declared in $.clients (nor can a token name it: no $.jwt)")
                }
            }
            return texts
        }
        var enforce: Bool?
        if let item = route["enforce"] {
            if let flag = item.boolValue { enforce = flag } else { problem("\(base).enforce", "must be true or false") }
        }
        return AccessRule(allow: names("allow"), deny: names("deny") ?? [], enforce: enforce)
    }
}

/// The table-wide gateway settings: `"limits"`, `"clients"`, `"jwt"`, `"enforce"`.
public struct GatewayPolicy: Sendable, Equatable, Hashable {
    /// Limits on every request through the proxy, routed or not.
    public var limits: LimitPolicy?
    public var clients: ClientRegistry
    public var jwt: JWTPolicy?
    /// Whether access rules refuse (true, the default) or only observe; a route's own `"enforce"` wins.
    public var enforce: Bool

    public init(
        limits: LimitPolicy? = nil, clients: ClientRegistry = ClientRegistry(), jwt: JWTPolicy? = nil,
        enforce: Bool = true
    ) {
        self.limits = limits
        self.clients = clients
        self.jwt = jwt
        self.enforce = enforce
    }

    /// Whether requests are identified at all (a client list or tokens).
    public var identifies: Bool { !self.clients.isEmpty || self.jwt != nil }
}
