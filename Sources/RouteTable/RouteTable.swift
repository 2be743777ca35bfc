public import JSON

/// The whole route table (routes.json, schema v1), validated and immutable.
///
/// A change builds a new table and swaps it in whole; a request runs on the table it started with.
///
/// ```swift
/// let table = try RouteTable.parse(Array(try String(contentsOfFile: "routes.json").utf8))
/// table.match(method: "GET", path: "/contacts/con_1")?.id  // "contacts.get"
/// ```
public struct RouteTable: Sendable {
    /// The monolith's first instance (the one the control plane asks; `monolithGroup` has them all).
    public let monolith: Upstream
    /// Each service's first instance, by name (the one the control plane asks; `groups` has them all).
    public let services: [String: Upstream]
    /// The monolith's instances and how requests are spread over them.
    public let monolithGroup: UpstreamGroup
    /// Each service's instances, by name: the same names as `services`.
    public let groups: [String: UpstreamGroup]
    /// In file order.
    public let routes: [Route]
    /// The evidence gates of stage changes (`"gates"`, or the defaults).
    public let gates: GatePolicy
    /// What samples keep of personal data, and for how long (`"redact"`, `"retention"`, or the defaults).
    public let privacy: PrivacyPolicy
    /// What the proxy does with a request whose path is not canonical (`"paths"`: `normalize`, the default, or
    /// `strict`).
    public let paths: PathMode
    /// The source document (as parsed), for writing the table back with its unknown-to-us formatting gone.
    public let document: JSONValue
    /// What the gates may ask the monolith (`monolith.probes`, or the defaults).
    public let monolithProbes: Probes
    /// Every service as declared (URL, probes, entities), by name: the same names as `services`.
    public let declarations: [String: ServiceDeclaration]
    /// The gateway's table-wide policies: limits, clients, tokens, whether access rules refuse.
    public let gateway: GatewayPolicy

    /// Per method, the routes from most to least specific: the first that matches a path wins. A list, not a
    /// dictionary: there are a handful of methods, and comparing short strings is cheaper than hashing one.
    private let byMethod: [(method: String, routes: [Route])]
    /// Whether any template is declared with a trailing slash (`/orders/`): only then can a path without one take a
    /// slash template's route.
    private let hasSlashTemplates: Bool

    public init(
        monolith: Upstream, services: [String: Upstream], routes: [Route], gates: GatePolicy = .defaults,
        privacy: PrivacyPolicy = .defaults,
        paths: PathMode = .normalize, document: JSONValue, monolithProbes: Probes = .monolithDefaults,
        declarations: [String: ServiceDeclaration]? = nil, monolithGroup: UpstreamGroup? = nil,
        gateway: GatewayPolicy = GatewayPolicy()
    ) {
        self.gateway = gateway
        self.monolith = monolith
        self.services = services
        self.monolithGroup = monolithGroup ?? UpstreamGroup(instances: [monolith])
        self.monolithProbes = monolithProbes
        self.declarations =
            declarations
            ?? services.reduce(into: [:]) { result, entry in
                result[entry.key] = ServiceDeclaration(
                    upstream: entry.value, probes: .serviceDefaults,
                    entities: [Entity(name: entry.key, path: "/\(entry.key)")])
            }
        self.groups = self.declarations.mapValues(\.group)
        self.routes = routes
        self.gates = gates
        self.privacy = privacy
        self.paths = paths
        self.document = document
        var byMethod: [String: [Route]] = [:]
        for route in routes { byMethod[route.method, default: []].append(route) }
        for method in byMethod.keys {
            byMethod[method]!.sort { $0.path.isMoreSpecific(than: $1.path) }
        }
        self.byMethod = byMethod.map { (method: $0.key, routes: $0.value) }
        self.hasSlashTemplates = routes.contains { $0.endsWithSlash }
    }

    /// The route for a request, or nil (the request goes to the monolith). `path` is canonical (`CanonicalPath`) and
    /// excludes the query. A HEAD request with no HEAD route of its own takes the GET route. A path with a trailing
    /// slash takes a template declared with it (`/orders/`), else the route of the path without the slash.
    public func match(method: String, path: Substring) -> Route? {
        if let found = path.utf8.withContiguousStorageIfAvailable({ self.routing(method: method, path: $0) }) {
            return found.route
        }
        return Array(path.utf8).withUnsafeBufferPointer { self.routing(method: method, path: $0) }.route
    }

    /// The route of a request whose canonical path (no query) is `path`, and whether the request goes out without
    /// the path's trailing slash.
    ///
    /// A path ending in `/` (other than `/`) is matched first against the templates declared with a trailing slash
    /// only; failing those, its path without the slash is matched against every template. A path without the slash
    /// that matches nothing takes a template declared only with it (`/orders` takes `/orders/`), and goes out as sent.
    /// Matched that way by a template that ends exactly (a literal or a parameter), the request is forwarded without
    /// the slash; by a trailing wildcard, with it (the route is the same either way, and an origin that redirects
    /// between the two forms would otherwise loop). A request that matches nothing keeps its slash.
    public func routing(method: String, path: UnsafeBufferPointer<UInt8>) -> (route: Route?, dropsTrailingSlash: Bool) {
        // The closures capture the method list only, not the whole table (a copy of every field).
        let byMethod = self.byMethod
        let count = path.count
        guard count > 1, path[count - 1] == UInt8(ascii: "/") else {
            let plain = Self.match(byMethod, method: method, bytes: path, slashTemplates: false)
            // Origins read `/orders` and `/orders/` alike: a template declared only with the slash takes the path
            // without it too (when no more specific template does), or that spelling would pass the route by, to the
            // monolith or a wildcard. Forwarded as sent. Only tables with slash templates pay for the second look.
            guard self.hasSlashTemplates, count > 0 else { return (plain, false) }
            let slashed = Array(path) + [UInt8(ascii: "/")]
            let withSlash = slashed.withUnsafeBufferPointer {
                Self.match(byMethod, method: method, bytes: $0, slashTemplates: true)
            }
            guard let withSlash else { return (plain, false) }
            guard let plain, !withSlash.path.isMoreSpecific(than: plain.path) else { return (withSlash, false) }
            return (plain, false)
        }
        if let route = Self.match(byMethod, method: method, bytes: path, slashTemplates: true) { return (route, false) }
        let stripped = UnsafeBufferPointer(rebasing: path[0..<(count - 1)])
        guard let route = Self.match(byMethod, method: method, bytes: stripped, slashTemplates: false) else {
            return (nil, false)
        }
        return (route, !route.endsWithWildcard)
    }

    private static func match(
        _ byMethod: [(method: String, routes: [Route])], method: String, bytes path: UnsafeBufferPointer<UInt8>,
        slashTemplates: Bool
    ) -> Route? {
        if let route = Self.first(in: byMethod, method: method, matching: path, slashTemplates: slashTemplates) {
            return route
        }
        if method == "HEAD" {
            return Self.first(in: byMethod, method: "GET", matching: path, slashTemplates: slashTemplates)
        }
        return nil
    }

    /// The first of `method`'s routes whose template matches `path`, read in place (only the winner is copied);
    /// with `slashTemplates`, only among the templates declared with a trailing slash.
    private static func first(
        in byMethod: [(method: String, routes: [Route])], method: String, matching path: UnsafeBufferPointer<UInt8>,
        slashTemplates: Bool
    ) -> Route? {
        for entry in byMethod.indices where byMethod[entry].method == method {
            let routes = byMethod[entry].routes
            for index in routes.indices
            where (!slashTemplates || routes[index].endsWithSlash) && routes[index].matches(bytes: path) {
                return routes[index]
            }
            return nil
        }
        return nil
    }

    public func match(method: String, path: String) -> Route? { self.match(method: method, path: Substring(path)) }

    public func route(id: String) -> Route? { self.routes.first { $0.id == id } }

    /// The probes of a declared service (the defaults for a name that is not declared).
    public func probes(of service: String) -> Probes { self.declarations[service]?.probes ?? .serviceDefaults }

    /// The entity named `name` and the service that declares it.
    public func entity(named name: String) -> (service: String, entity: Entity)? {
        for (service, declaration) in self.declarations.sorted(by: { $0.key < $1.key }) {
            if let entity = declaration.entities.first(where: { $0.name == name }) { return (service, entity) }
        }
        return nil
    }

    /// The extracted service a route moves to, if it names one that is declared.
    public func serviceUpstream(for route: Route) -> Upstream? {
        route.service.flatMap { self.services[$0] }
    }

    /// The group of the extracted service a route moves to, if it names one that is declared.
    public func serviceGroup(for route: Route) -> UpstreamGroup? {
        route.service.flatMap { self.groups[$0] }
    }

    /// The group a route's stage sends the answering request to.
    public func group(for route: Route?) -> UpstreamGroup {
        guard let route, route.stage == .eliminate, let service = route.service, let group = self.groups[service]
        else { return self.monolithGroup }
        return group
    }

    /// Every group with its place in routes.json (`$.monolith`, `$.services.NAME`), the monolith first, then by name.
    public var namedGroups: [(path: String, name: String?, group: UpstreamGroup)] {
        [("$.monolith", nil, self.monolithGroup)]
            + self.groups.sorted { $0.key < $1.key }.map { ("$.services.\($0.key)", $0.key, $0.value) }
    }

    /// Where a route's stage sends the answering request.
    public func upstream(for route: Route?) -> Upstream {
        guard let route, route.stage == .eliminate, let service = route.service, let upstream = self.services[service]
        else { return self.monolith }
        return upstream
    }
}
