public import Diff
import JSON
public import RouteTable

/// One path to the answers: the monolith directly, a service directly, or the proxy with routes in some stage.
///
/// `prepare` runs before the target's requests (before each of them when targets take turns step by step and
/// another target prepared in between): a proxy target sets its routes' stage there.
///
/// ```swift
/// let targets = [
///     Target("monolith", HTTPEndpoint(port: monolithPort)),
///     Target("service", HTTPEndpoint(port: servicePort)),
///     admin.target("proxy eliminate", proxy: HTTPEndpoint(port: proxyPort), routes: "contacts.*", stage: .eliminate),
/// ]
/// ```
public struct Target: Sendable, CustomStringConvertible {
    public var name: String
    public var endpoint: HTTPEndpoint
    public var prepare: (@Sendable () async throws -> Void)?
    /// Whether the target takes a client's `Strangler-Dry-Run` (a side does; the proxy refuses it with 400, the header
    /// being its own). Steps with it are not sent to a target that does not, and are not compared there.
    public var takesDryRuns: Bool

    public init(
        _ name: String, _ endpoint: HTTPEndpoint, takesDryRuns: Bool = true,
        prepare: (@Sendable () async throws -> Void)? = nil
    ) {
        self.name = name
        self.endpoint = endpoint
        self.takesDryRuns = takesDryRuns
        self.prepare = prepare
    }

    /// A target at `http://host:port`.
    public init(_ name: String, url: String, prepare: (@Sendable () async throws -> Void)? = nil) throws(HarnessError) {
        self.init(name, try HTTPEndpoint(url: url), prepare: prepare)
    }

    public var description: String { "\(self.name) (\(self.endpoint))" }
}

/// The proxy's admin API, as far as tests need it: move routes to a stage (forced, with a reason, so the evidence
/// gates do not stand in a test's way), read the table.
///
/// ```swift
/// let admin = ProxyAdmin(HTTPEndpoint(port: adminPort), token: token)
/// try await admin.stage("contacts.*", to: .coexist)
/// ```
public struct ProxyAdmin: Sendable {
    public var endpoint: HTTPEndpoint
    public var token: String
    /// `X-Strangler-Actor`: who the audit log names.
    public var actor: String
    public var client: HTTPTestClient

    public init(
        _ endpoint: HTTPEndpoint, token: String, actor: String = "strangler-testing",
        client: HTTPTestClient = HTTPTestClient()
    ) {
        self.endpoint = endpoint
        self.token = token
        self.actor = actor
        self.client = client
    }

    /// Sends an admin request with the token and actor.
    public func send(
        _ method: String, _ target: String, headers: [(name: String, value: String)] = [], body: String? = nil
    ) async throws -> HTTPAnswer {
        var all: [(name: String, value: String)] =
            [("Authorization", "Bearer \(self.token)"), ("X-Strangler-Actor", self.actor)] + headers
        if body != nil { all.append(("Content-Type", "application/json")) }
        return try await self.client.send(
            HTTPRequestData(method: method, target: target, headers: all, body: Array((body ?? "").utf8)),
            to: self.endpoint)
    }

    /// Moves the routes `selector` names (an id, or a pattern such as `contacts.*`) to `stage` in one table swap
    /// (`POST /admin/stage`), forced by default; retried when another change made the ETag stale. Returns the answer.
    @discardableResult
    public func stage(
        _ selector: String, to stage: Stage, reason: String = "test", force: Bool = true
    ) async throws -> HTTPAnswer {
        for _ in 0..<20 {
            let table = try await self.send("GET", "/admin/routes")
            guard table.status == 200, let etag = table.header("ETag") else {
                throw HarnessError("GET /admin/routes at \(self.endpoint) answered \(table)")
            }
            let body = JSONValue.object([
                ("routes", .string(selector)), ("stage", .string(stage.rawValue)), ("reason", .string(reason)),
                ("force", .bool(force)),
            ]).jsonText
            let answer = try await self.send("POST", "/admin/stage", headers: [("If-Match", etag)], body: body)
            if answer.status == 412 { continue }
            guard answer.status == 200 else {
                throw HarnessError("moving \(selector) to \(stage.rawValue) answered \(answer)")
            }
            return answer
        }
        throw HarnessError("moving \(selector) to \(stage.rawValue): the table kept changing (412 twenty times)")
    }

    /// A target that answers through the proxy at `proxy` with the routes `selector` names in `stage` (dry-run steps
    /// are not sent through it: the proxy refuses a client's `Strangler-Dry-Run`).
    public func target(_ name: String, proxy: HTTPEndpoint, routes selector: String, stage: Stage) -> Target {
        let admin = self
        return Target(name, proxy, takesDryRuns: false) {
            try await admin.stage(selector, to: stage, reason: "parity run: \(name)")
        }
    }
}
