import Crypto
import HTTP1
package import JSON
import JWTKit
import RouteTable
import Synchronization

/// The gateway's policies of one route table, as the data plane applies them: who is calling (API keys), whether the
/// route lets them (`allow`, `deny`), and the limits and throttles of the table, the route and the answering service.
/// Made with each table; the budgets it counts in (`RateLimiter`, `Throttle`) outlive it while their limits stay the
/// same (`GatewayState`). A table without any of these has none: the data plane skips the gateway at no cost.
final class Gateway: Sendable {
    struct RouteGate: Sendable {
        var limiter: RateLimiter?
        var throttle: Throttle?
        var access: AccessRule?
        /// Whether the access rule refuses (else it only observes).
        var enforce: Bool
        /// The limits a request of the route counts against when the monolith answers it (the table's and the
        /// route's), and when its service does (the service's too).
        var monolithLimits: LimitSet?
        var serviceLimits: LimitSet?
        /// `route:ID`, the key of limits `by` route.
        var routeKey: String
    }

    /// The limiters one request counts against, in order, and what never changes of their fields: the whole
    /// `RateLimit-Policy` line, made once.
    struct LimitSet: Sendable {
        let limiters: [RateLimiter]
        /// `ratelimit-policy: "burst";q=200;w=1, …\r\n`
        let policyField: String
        /// Some limiter has a quota (its windows need the wall clock).
        let needsWall: Bool

        init?(_ limiters: [RateLimiter?]) {
            let present = limiters.compactMap { $0 }
            guard !present.isEmpty else { return nil }
            self.limiters = present
            var items: [String] = []
            for limiter in present {
                let policy = limiter.policy
                if let rate = policy.rate {
                    items.append("\"\(limiter.rateName)\";q=\(policy.burst);w=\(rate.windowSeconds)")
                }
                if let quota = policy.quota {
                    items.append("\"\(limiter.quotaName)\";q=\(quota.count);w=\(quota.windowSeconds)")
                }
            }
            self.policyField = "ratelimit-policy: " + items.joined(separator: ", ") + "\r\n"
            self.needsWall = present.contains { $0.policy.quota != nil }
        }
    }

    struct ServiceGate: Sendable {
        var limiter: RateLimiter?
        var throttle: Throttle?
    }

    let policy: GatewayPolicy
    let tableLimiter: RateLimiter?
    /// The table's limits, for requests no route matched.
    let unmatchedLimits: LimitSet?
    let routes: [String: RouteGate]
    let services: [String: ServiceGate]
    /// Where the calls seen are counted (client × route), for `strangler access`.
    let observations: AccessObservations
    /// Whether calls are counted at all: the table identifies clients or declares access rules.
    let observes: Bool
    /// `"jwt"`'s verifier.
    let tokens: TokenVerifier?

    init(
        policy: GatewayPolicy, tableLimiter: RateLimiter?, routes: [String: RouteGate], services: [String: ServiceGate],
        observations: AccessObservations, observes: Bool, tokens: TokenVerifier? = nil
    ) {
        self.tokens = tokens
        self.policy = policy
        self.tableLimiter = tableLimiter
        self.unmatchedLimits = LimitSet([tableLimiter])
        self.routes = routes
        self.services = services
        self.observations = observations
        self.observes = observes
    }

    /// Who a request says it is.
    enum Identity: Equatable {
        case anonymous
        case client(String)
        /// It presented a credential the proxy does not know (why, for the 401).
        case invalid(String)

        var name: String? {
            if case .client(let name) = self { return name }
            return nil
        }
    }

    /// The request's identity: an `X-Api-Key`, else an `Authorization: Bearer` credential: a JWT verified by `"jwt"`,
    /// or a key looked up by its SHA-256. A bearer credential that is neither a known key nor (with `"jwt"`) a token is
    /// the application's own (a session token): anonymous, not invalid; a token that does not verify is invalid.
    func identify(_ head: HTTPHead) -> Identity {
        guard self.policy.identifies else { return .anonymous }
        if let key = head.value(of: "x-api-key"), !self.policy.clients.isEmpty {
            guard let name = self.client(forKey: key) else { return .invalid("the X-Api-Key is not a known key") }
            return .client(name)
        }
        if let authorization = head.value(of: "authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let credential = parts[1].trimmingCharacters(in: " \t")
                if let name = self.client(forKey: credential) { return .client(name) }
                if let tokens = self.tokens, TokenVerifier.looksLikeToken(credential) {
                    switch tokens.verify(credential) {
                    case .success(let name): return .client(name)
                    case .failure(let refusal): return .invalid(refusal.reason)
                    }
                }
            }
        }
        return .anonymous
    }

    /// The client a key belongs to, by its digest.
    func client(forKey key: String) -> String? {
        guard !self.policy.clients.isEmpty, !key.isEmpty, key.utf8.count <= 512 else { return nil }
        return self.policy.clients.byDigest[Self.digest(key)]
    }

    /// `sha256:`'s hex part of a key: 64 lowercase hex digits.
    static func digest(_ key: String) -> String {
        let digest = SHA256.hash(data: Array(key.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in digest {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}

/// The calls the proxy saw, counted by client (or `anonymous`) and route (or `unmatched`), since it started: what
/// `strangler access` sets against the declared map.
package final class AccessObservations: Sendable {
    package struct Call: Hashable, Sendable {
        package var client: String
        package var route: String
    }

    private let counts = Mutex<[Call: Int]>([:])
    /// Distinct pairs kept at most (a flood of invented client names cannot grow it without bound).
    static let maxPairs = 10_000

    package init() {}

    func record(client: String?, route: String?) {
        let call = Call(client: client ?? Self.anonymous, route: route ?? "unmatched")
        self.counts.withLock { counts in
            if let count = counts[call] {
                counts[call] = count + 1
            } else if counts.count < Self.maxPairs {
                counts[call] = 1
            }
        }
    }

    /// Every pair seen and its count.
    package var calls: [(call: Call, count: Int)] {
        self.counts.withLock { counts in
            counts.map { ($0.key, $0.value) }.sorted {
                ($0.call.route, $0.call.client) < ($1.call.route, $1.call.client)
            }
        }
    }

    package static let anonymous = "anonymous"
}

/// The budgets of every scope, kept across table changes: a scope whose limits stay the same keeps counting where it
/// was (a stage change does not hand every client a fresh burst).
final class GatewayState: Sendable {
    private let limiters = Mutex<[String: RateLimiter]>([:])
    private let throttles = Mutex<[String: Throttle]>([:])
    private let tokens = Mutex<TokenVerifier?>(nil)
    let observations = AccessObservations()

    /// `"jwt"`'s verifier for a table: the last one while the policy and the key set's bytes are the same, else a new
    /// one (the last verifying until its keys are ready).
    private func tokenVerifier(_ policy: JWTPolicy?, keySet: (set: JWKS, bytes: [UInt8])?) -> TokenVerifier? {
        self.tokens.withLock { current in
            guard let policy, let keySet else {
                current = nil
                return nil
            }
            if let kept = current, kept.policy == policy, kept.keySetBytes == keySet.bytes { return kept }
            current = TokenVerifier(policy: policy, keySet: keySet.set, bytes: keySet.bytes, previous: current)
            return current
        }
    }

    /// The table's gateway, or nil when it declares no limits, clients, tokens or access rules.
    func gateway(for table: RouteTable, keySet: (set: JWKS, bytes: [UInt8])? = nil) -> Gateway? {
        let policy = table.gateway
        let servicesWithLimits = table.declarations.filter { $0.value.limits != nil }
        let routesWithPolicies = table.routes.filter {
            $0.limits != nil || $0.access != nil || policy.limits?.counts == true
                || ($0.service.map { servicesWithLimits[$0] != nil } ?? false)
        }
        guard policy.limits != nil || policy.identifies || !routesWithPolicies.isEmpty || !servicesWithLimits.isEmpty
        else {
            self.limiters.withLock { $0.removeAll() }
            self.throttles.withLock { $0.removeAll() }
            self.tokens.withLock { $0 = nil }
            return nil
        }
        var keptLimiters: [String: RateLimiter] = [:]
        var keptThrottles: [String: Throttle] = [:]
        let oldLimiters = self.limiters.withLock { $0 }
        let oldThrottles = self.throttles.withLock { $0 }
        func limiter(_ scope: String, _ limits: LimitPolicy?, prefix: String) -> RateLimiter? {
            guard let limits, limits.counts else { return nil }
            if let made = keptLimiters[scope] { return made }
            let kept = oldLimiters[scope].flatMap { $0.policy == limits ? $0 : nil }
            let made = kept ?? RateLimiter(policy: limits, prefix: prefix)
            keptLimiters[scope] = made
            return made
        }
        func throttle(_ scope: String, _ limits: LimitPolicy?, name: String) -> Throttle? {
            guard let limits, let most = limits.maxInFlight else { return nil }
            if let made = keptThrottles[scope] { return made }
            let kept = oldThrottles[scope].flatMap { $0.hasSameLimits(as: limits) ? $0 : nil }
            let made =
                kept
                ?? Throttle(
                    maxInFlight: most, maxQueued: limits.maxQueued, queueTimeout: limits.queueTimeout, scope: name)
            keptThrottles[scope] = made
            return made
        }
        let tableLimiter = limiter("table", policy.limits, prefix: "table.")
        var routes: [String: Gateway.RouteGate] = [:]
        for route in routesWithPolicies {
            let own = limiter("route:\(route.id)", route.limits, prefix: "")
            let serviceLimiter = route.service.flatMap { name in
                limiter("service:\(name)", table.declarations[name]?.limits, prefix: "service.")
            }
            routes[route.id] = Gateway.RouteGate(
                limiter: own,
                throttle: throttle("route:\(route.id)", route.limits, name: "route \(route.id)"),
                access: route.access, enforce: route.access?.enforce ?? policy.enforce,
                monolithLimits: Gateway.LimitSet([tableLimiter, own]),
                serviceLimits: Gateway.LimitSet([tableLimiter, own, serviceLimiter]), routeKey: "route:\(route.id)")
        }
        var services: [String: Gateway.ServiceGate] = [:]
        for (name, declaration) in servicesWithLimits {
            services[name] = Gateway.ServiceGate(
                limiter: limiter("service:\(name)", declaration.limits, prefix: "service."),
                throttle: throttle("service:\(name)", declaration.limits, name: "service \(name)"))
        }
        self.limiters.withLock { $0 = keptLimiters }
        self.throttles.withLock { $0 = keptThrottles }
        return Gateway(
            policy: policy, tableLimiter: tableLimiter, routes: routes, services: services,
            observations: self.observations,
            observes: policy.identifies || routesWithPolicies.contains { $0.access != nil },
            tokens: self.tokenVerifier(policy.jwt, keySet: keySet))
    }
}

extension RouteTableStore {
    /// The declared access map and the calls observed since the proxy started, each judged by the live table: what
    /// `GET /admin/access` answers and `strangler access` prints.
    ///
    /// ```json
    /// { "enforce": true, "clients": ["mobile", "web"],
    ///   "declared": [ { "route": "deals.list", "allow": ["web"], "deny": [], "enforce": true } ],
    ///   "observed": [ { "client": "mobile", "route": "deals.list", "count": 3, "verdict": "forbidden",
    ///                   "enforced": true } ] }
    /// ```
    package func accessReport() -> JSONValue {
        let table = self.snapshot.table
        let policy = table.gateway
        func names(_ list: [String]) -> JSONValue { .array(list.map { .string($0) }) }
        let declared: [JSONValue] = table.routes.compactMap { route in
            guard let access = route.access else { return nil }
            return .object([
                ("route", .string(route.id)), ("allow", access.allow.map(names) ?? .null),
                ("deny", names(access.deny)), ("enforce", .bool(access.enforce ?? policy.enforce)),
            ])
        }
        let observed: [JSONValue] = self.gatewayState.observations.calls.map { entry in
            let route = table.route(id: entry.call.route)
            let client = entry.call.client == AccessObservations.anonymous ? nil : entry.call.client
            let verdict = route?.access?.verdict(for: client) ?? .allowed
            return .object([
                ("client", .string(entry.call.client)), ("route", .string(entry.call.route)),
                ("count", .number(Double(entry.count))), ("verdict", .string(verdict.rawValue)),
                ("enforced", .bool(route?.access.map { $0.enforce ?? policy.enforce } ?? false)),
            ])
        }
        return .object([
            ("enforce", .bool(policy.enforce)),
            ("clients", names(policy.clients.clients.keys.sorted())),
            ("tokens", .bool(policy.jwt != nil)),
            ("declared", .array(declared)), ("observed", .array(observed)),
        ])
    }
}
