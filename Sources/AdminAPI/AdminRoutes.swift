public import ControlPlane
import Diff
public import DiffStore
import Foundation
import HTTPTypes
public import Hummingbird
public import JSON
import NIOCore
import Reports
import RouteTable

/// The admin API (loopback only, `Authorization: Bearer <token>` on every call):
/// - `GET /admin/routes`: the live table, its version and content hash (`ETag`);
/// - `PUT /admin/routes[?force=true&reason=…]`: replace the table (needs `If-Match`; 412 when stale, 422 when invalid,
///   409 `gate_refused` when a route's stage changes and its gates refuse, as for a stage change);
/// - `POST /admin/routes/{id}/stage` with `{ "stage": "coexist", "reason": "…", "force": false }` (needs `If-Match`;
///   judged by the evidence gates: 409 `gate_refused` with every reason);
/// - `POST /admin/stage` with `{ "routes": "contacts.*", "stage": "coexist", "reason": "…", "force": false }`: a group,
///   all or none, in one swap (needs `If-Match`);
/// - `POST /admin/undo`: reverts the last table change of the audit log (`If-Match` optional);
/// - `GET /admin/history[?route=][&limit=]`: the audit log without the tables;
/// - `POST /admin/triage` with `{ "route", "signature", "decision": "accept"|"ignore"|"reset", "reason", "paths"?,
///   "allPaths"? }` (`paths`/`allPaths`: which pointers of a signature that spans several an `ignore` covers; `ignore` needs
///   `If-Match`);
/// - `GET /admin/evidence[?route=]`: every route's evidence and whether it may move to its next stage;
/// - `GET /admin/status`: table version, last reload and its error, and every upstream instance as observed (healthy,
///   ejected until when and why, in flight, open connections);
/// - `GET /admin/diffs[?route=]`: shadow comparison counters, signatures and pointers per route;
/// - `GET /admin/diffs/samples?route=[&signature=][&limit=]`: the samples kept, newest first;
/// - `GET /admin/noise?route=`: pointers that differ between two answers of the same side, and the
///   ignore rules they suggest;
/// - `GET /admin/report[?route=][&since=][&format=html|json|markdown|junit]`: the diff report (HTML by default;
///   `docs/reports.md`);
/// - `POST /admin/record` with `{ "route": "orders.*", "limit": 100, "seconds": 60 }`: holds the request until `limit`
///   exchanges of the matching routes were relayed (or `seconds` passed) and answers them as HAR 1.2, redacted as
///   samples are (`strangler record`);
/// - `GET /admin/unmatched`: the requests no route matched, by method and path template (`strangler routes suggest`);
/// - `GET /metrics`: Prometheus text.
///
/// Changes are written back to routes.json atomically and appended to `<data>/audit.jsonl`; the actor is
/// the `X-Strangler-Actor` header (default `admin-api`), the reason `X-Strangler-Reason` or the body's `reason`.
public struct AdminRoutes: Sendable {
    let control: RouteControl
    let diffStore: DiffStore
    /// Writes what the shadow recorder still holds, so that counts include every finished shadow.
    let flush: @Sendable () async -> Void
    /// The Prometheus text of `GET /metrics`.
    let metrics: @Sendable () -> String
    let token: String
    let startedAt = Date()
    /// Records the exchanges of the routes a pattern matches, up to a count or a time, as a HAR document
    /// (`POST /admin/record`); nil: not offered.
    let record: (@Sendable (_ pattern: String, _ limit: Int, _ within: Duration) async -> JSONValue)?

    /// The requests no route matched, by template (`GET /admin/unmatched`); nil: not offered.
    let unmatched: (@Sendable () -> JSONValue)?

    /// Every upstream group with what the data plane observes of each instance (`GET /admin/status`, and in
    /// `GET /admin/evidence`); nil: the groups as configured.
    let upstreams: (@Sendable () -> JSONValue)?
    /// The declared access map and the calls observed (`GET /admin/access`).
    let access: (@Sendable () -> JSONValue)?
    /// The proxies on the shared store and how each stands (`GET /admin/instances`); nil: not offered.
    let instances: (@Sendable () async throws(ControlError) -> JSONValue)?
    /// The shared store's `/admin/status` member (`store`); nil without a store.
    let storeStatus: (@Sendable () -> JSONValue)?
    /// The live dashboard's events (`/dashboard`); nil: no dashboard.
    let dashboard: (any DashboardFeed)?
    /// The dashboard's logins.
    let sessions: DashboardSessions
    /// The admin API speaks TLS: the session cookie is `Secure`.
    let secureCookies: Bool
    /// Where the report links a sample's trace (`{traceId}` in it); nil: trace ids are shown, not linked.
    let traceURL: String?

    public init(
        control: RouteControl, diffStore: DiffStore, token: String, flush: @escaping @Sendable () async -> Void,
        metrics: @escaping @Sendable () -> String,
        record: (@Sendable (_ pattern: String, _ limit: Int, _ within: Duration) async -> JSONValue)? = nil,
        unmatched: (@Sendable () -> JSONValue)? = nil, upstreams: (@Sendable () -> JSONValue)? = nil,
        access: (@Sendable () -> JSONValue)? = nil,
        instances: (@Sendable () async throws(ControlError) -> JSONValue)? = nil,
        storeStatus: (@Sendable () -> JSONValue)? = nil, traceURL: String? = nil,
        dashboard: (any DashboardFeed)? = nil, sessions: DashboardSessions = DashboardSessions(),
        secureCookies: Bool = false
    ) {
        self.traceURL = traceURL
        self.dashboard = dashboard
        self.sessions = sessions
        self.secureCookies = secureCookies
        self.access = access
        self.instances = instances
        self.storeStatus = storeStatus
        self.unmatched = unmatched
        self.upstreams = upstreams
        self.record = record
        self.control = control
        self.diffStore = diffStore
        self.token = token
        self.flush = flush
        self.metrics = metrics
    }

    var operations: RouteOperations {
        RouteOperations(control: self.control, diffStore: self.diffStore, flush: self.flush)
    }

    /// The admin API's router: every endpoint behind the bearer token.
    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AdminNegotiationMiddleware())
        router.add(
            middleware: AdminAuthMiddleware(token: self.token) { [self] request in
                // The dashboard's login page and assets are public; its events take a session (or the token).
                let path = request.uri.path
                return Self.publicDashboardPaths.contains(path)
                    || (path == "/dashboard/events" && self.hasDashboardSession(request))
            })
        self.registerDashboard(on: router)
        router.get("/admin/routes") { _, _ in self.routes() }
        router.put("/admin/routes") { request, _ in try await self.replace(request) }
        router.post("/admin/routes/{id}/stage") { request, context in try await self.setStage(request, context) }
        router.post("/admin/stage") { request, _ in try await self.stageGroup(request) }
        router.post("/admin/undo") { request, _ in try await self.undo(request) }
        router.get("/admin/history") { request, _ in await self.history(request) }
        router.post("/admin/triage") { request, _ in try await self.triage(request) }
        router.get("/admin/evidence") { request, _ in await self.evidence(request) }
        router.get("/admin/status") { _, _ in await self.status() }
        router.get("/admin/diffs") { request, _ in await self.diffs(request) }
        router.get("/admin/diffs/samples") { request, _ in await self.samples(request) }
        router.get("/admin/noise") { request, _ in await self.noise(request) }
        router.get("/admin/report") { request, _ in await self.report(request) }
        router.post("/admin/record") { request, _ in try await self.recordTraffic(request) }
        router.get("/admin/unmatched") { _, _ in
            guard let unmatched = self.unmatched else {
                return Self.error(.notFound, "not_found", "this admin API does not count unmatched traffic")
            }
            return Self.answer(unmatched(), etag: nil)
        }
        router.get("/admin/instances") { _, _ in
            guard let instances = self.instances else {
                return Self.error(.notFound, "not_found", "this admin API does not list instances")
            }
            do throws(ControlError) {
                return Self.answer(try await instances(), etag: nil)
            } catch {
                return Self.answer(error)
            }
        }
        router.get("/admin/access") { _, _ in
            guard let access = self.access else {
                return Self.error(.notFound, "not_found", "this admin API does not observe access")
            }
            return Self.answer(access(), etag: nil)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: self.metrics())))
        }
        return router
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        Self.negotiated(value, status: status, headers: headers)
    }

    /// The admin API's own refusals (a bad query, a malformed body), in the control plane's error envelope.
    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        self.json(ControlError(.init(code), message).json, status: status)
    }

    func routes() -> Response {
        let table = self.operations.table()
        return Self.answer(table.json(), etag: table.contentHash)
    }

    /// A control-plane outcome's answer: 200 with its body and the table's ETag.
    static func answer(_ body: JSONValue, etag: String?) -> Response {
        var headers: HTTPFields = [:]
        if let etag { headers[.eTag] = "\"\(etag)\"" }
        return Self.json(body, headers: headers)
    }

    /// A control-plane refusal's answer: its status and error envelope.
    static func answer(_ error: ControlError) -> Response {
        Self.json(error.json, status: error.status)
    }

    /// The `If-Match` hash, or the error answer when it is missing.
    static func expectedHash(_ request: Request) -> Result<String, AdminFailure> {
        guard var value = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
            return .failure(AdminFailure(Self.answer(ControlError.ifMatchRequired)))
        }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = String(value.dropFirst().dropLast())
        }
        return .success(value)
    }

    static func actor(_ request: Request) -> String {
        request.headers[HTTPField.Name("X-Strangler-Actor")!].flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
            ?? "admin-api"
    }

    func replace(_ request: Request) async throws -> Response {
        let expected: String
        switch Self.expectedHash(request) {
        case .success(let hash): expected = hash
        case .failure(let failure): return failure.response
        }
        let body = try await request.body.collect(upTo: 4 * 1024 * 1024)
        let text = String(buffer: body)
        let query = request.uri.queryParameters
        let reason: String? =
            request.headers[HTTPField.Name("X-Strangler-Reason")!] ?? query.get("reason").map { String($0) }
        let forceText: String? =
            query.get("force").map { String($0) } ?? request.headers[HTTPField.Name("X-Strangler-Force")!]
        let force: Bool
        switch forceText {
        case nil, "false": force = false
        case "true": force = true
        default:
            return Self.error(
                .unprocessableContent, "validation_failed", "force must be true or false, not \"\(forceText ?? "")\"")
        }
        do {
            let change = try await self.operations.replace(
                text: text, expectedHash: expected, actor: Self.actor(request), reason: reason, force: force)
            return Self.answer(change.json, etag: change.table.contentHash)
        } catch {
            return Self.answer(error)
        }
    }

    func setStage(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await self.stage(request, selector: context.parameters.get("id") ?? "")
    }

    func stageGroup(_ request: Request) async throws -> Response {
        try await self.stage(request, selector: nil)
    }

    /// A stage change of one route (`selector`) or of the body's `routes` (an id or a pattern).
    func stage(_ request: Request, selector: String?) async throws -> Response {
        let expected: String
        switch Self.expectedHash(request) {
        case .success(let hash): expected = hash
        case .failure(let failure): return failure.response
        }
        let document: JSONValue
        switch try await Self.body(request) {
        case .success(let value): document = value
        case .failure(let failure): return failure.response
        }
        guard let stageText = document["stage"]?.stringValue, let stage = Stage(rawValue: stageText) else {
            return Self.error(
                .unprocessableContent, "validation_failed", "body needs \"stage\": one of transform, coexist, eliminate"
            )
        }
        guard let selector = selector ?? document["routes"]?.stringValue, !selector.isEmpty else {
            return Self.error(
                .unprocessableContent, "validation_failed",
                "body needs \"routes\": a route id or a pattern such as \"contacts.*\"")
        }
        if let force = document["force"], force.boolValue == nil {
            return Self.error(.unprocessableContent, "validation_failed", "\"force\" must be true or false")
        }
        do {
            let change = try await self.operations.stage(
                selector: selector, to: stage, expectedHash: expected, actor: Self.actor(request, document),
                reason: Self.reason(request, document),
                force: document["force"]?.boolValue ?? false)
            return Self.answer(change.json, etag: change.table.contentHash)
        } catch {
            return Self.answer(error)
        }
    }

    func undo(_ request: Request) async throws -> Response {
        var expected: String?
        if request.headers[.ifMatch] != nil, case .success(let hash) = Self.expectedHash(request) { expected = hash }
        let document: JSONValue
        switch try await Self.body(request, optional: true) {
        case .success(let value): document = value
        case .failure(let failure): return failure.response
        }
        do {
            let outcome = try await self.operations.undo(
                expectedHash: expected, actor: Self.actor(request, document), reason: Self.reason(request, document))
            return Self.answer(outcome.json, etag: outcome.table.contentHash)
        } catch {
            return Self.answer(error)
        }
    }

    /// A refused query parameter, as the answer to send.
    struct Refusal: Error {
        var response: Response
    }

    /// `?limit=N`: `fallback` without one, refused unless a whole number from 1 to `most`.
    static func limit(_ request: Request, default fallback: Int, most: Int) -> Result<Int, Refusal> {
        guard let text = request.uri.queryParameters.get("limit") else { return .success(fallback) }
        guard let value = Int(text), (1...most).contains(value) else {
            return .failure(
                Refusal(
                    response: Self.error(
                        .badRequest, "invalid_limit", "limit must be a whole number from 1 to \(most), not \"\(text)\"")
                ))
        }
        return .success(value)
    }

    func history(_ request: Request) async -> Response {
        let limit: Int
        switch Self.limit(request, default: 50, most: 10_000) {
        case .success(let value): limit = value
        case .failure(let refusal): return refusal.response
        }
        let route = request.uri.queryParameters.get("route").flatMap { $0.isEmpty ? nil : String($0) }
        do {
            return Self.answer(try await self.operations.history(route: route, limit: limit).json, etag: nil)
        } catch {
            return Self.answer(error)
        }
    }

    func triage(_ request: Request) async throws -> Response {
        var expected: String?
        if request.headers[.ifMatch] != nil, case .success(let hash) = Self.expectedHash(request) { expected = hash }
        let document: JSONValue
        switch try await Self.body(request) {
        case .success(let value): document = value
        case .failure(let failure): return failure.response
        }
        guard let route = document["route"]?.stringValue, let signature = document["signature"]?.stringValue else {
            return Self.error(.unprocessableContent, "validation_failed", "body needs \"route\" and \"signature\"")
        }
        let decision: TriageDecision.Decision
        switch document["decision"]?.stringValue {
        case "accept", "accepted": decision = .accepted
        case "ignore", "ignored": decision = .ignored
        case "reset": decision = .reset
        default:
            return Self.error(
                .unprocessableContent, "validation_failed", "body needs \"decision\": accept, ignore or reset")
        }
        do {
            var paths: [String]?
            if let value = document["paths"] {
                guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                    return Self.error(
                        .unprocessableContent, "validation_failed", "\"paths\" must be an array of JSON pointers")
                }
                paths = list.compactMap(\.stringValue)
            }
            let outcome = try await self.operations.triage(
                route: route, signature: signature, decision: decision, expectedHash: expected,
                actor: Self.actor(request, document),
                reason: Self.reason(request, document), paths: paths, allPaths: document["allPaths"]?.boolValue == true)
            return Self.answer(outcome.json, etag: outcome.tableHash)
        } catch {
            return Self.answer(error)
        }
    }

    func recordTraffic(_ request: Request) async throws -> Response {
        guard let record = self.record else {
            return Self.error(.notFound, "not_found", "this admin API does not record traffic")
        }
        let document: JSONValue
        switch try await Self.body(request) {
        case .success(let value): document = value
        case .failure(let failure): return failure.response
        }
        guard let pattern = document["route"]?.stringValue, !pattern.isEmpty else {
            return Self.error(
                .unprocessableContent, "validation_failed",
                "body needs \"route\": a route id or a pattern such as orders.*")
        }
        guard self.operations.table().table.routes.contains(where: { RouteOperations.glob(pattern, matches: $0.id) })
        else { return Self.error(.notFound, "no_match", "no route id matches \"\(pattern)\"") }
        let limit = document["limit"]?.numberValue ?? 100
        let seconds = document["seconds"]?.numberValue ?? 60
        guard limit >= 1, limit <= 10_000, limit == limit.rounded() else {
            return Self.error(
                .unprocessableContent, "validation_failed", "\"limit\" must be a whole number from 1 to 10000")
        }
        guard seconds > 0, seconds <= 240 else {
            return Self.error(.unprocessableContent, "validation_failed", "\"seconds\" must be above 0 and at most 240")
        }
        let har = await record(pattern, Int(limit), .milliseconds(Int64(seconds * 1000)))
        return Self.answer(har, etag: nil)
    }

    func evidence(_ request: Request) async -> Response {
        let route = request.uri.queryParameters.get("route").flatMap { $0.isEmpty ? nil : String($0) }
        do {
            var listing = try await self.operations.evidence(route: route)
            if let upstreams = self.upstreams { listing.upstreams = upstreams() }
            return Self.answer(listing.json, etag: listing.hash)
        } catch {
            return Self.answer(error)
        }
    }

    /// The request's JSON body (an empty body is `{}` when `optional`).
    static func body(_ request: Request, optional: Bool = false) async throws -> Result<JSONValue, AdminFailure> {
        let body = try await request.body.collect(upTo: 64 * 1024)
        if optional, body.readableBytes == 0 { return .success(.object([])) }
        do {
            let document = try JSONParser.parse(Array(body.readableBytesView))
            guard document.objectValue != nil else {
                return .failure(
                    AdminFailure(Self.error(.badRequest, "malformed_json", "the body must be a JSON object")))
            }
            return .success(document)
        } catch {
            return .failure(
                AdminFailure(Self.error(.badRequest, "malformed_json", "the body is not valid JSON: \(error)")))
        }
    }

    static func actor(_ request: Request, _ document: JSONValue) -> String {
        document["actor"]?.stringValue.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) } ?? Self.actor(request)
    }

    static func reason(_ request: Request, _ document: JSONValue) -> String? {
        document["reason"]?.stringValue ?? request.headers[HTTPField.Name("X-Strangler-Reason")!]
    }

    func status() async -> Response {
        let snapshot = self.control.table.liveTable
        let failure = await self.control.lastReloadFailure
        let loadedAt = await self.control.loadedAt
        let formatter = ISO8601DateFormatter()
        var stages: [(key: String, value: JSONValue)] = []
        for stage in Stage.allCases {
            stages.append((stage.rawValue, .number(Double(snapshot.table.routes.filter { $0.stage == stage }.count))))
        }
        return Self.json(
            .object([
                ("version", .number(Double(snapshot.version))),
                ("hash", .string(snapshot.contentHash)),
                ("routesFile", self.storeStatus == nil ? .string(self.control.routesPath) : .null),
                ("store", self.storeStatus?() ?? .null),
                ("loadedAt", .string(formatter.string(from: loadedAt))),
                ("routes", .number(Double(snapshot.table.routes.count))),
                ("stages", .object(stages)),
                (
                    "lastReloadError",
                    failure.map {
                        .object([("at", .string(formatter.string(from: $0.at))), ("message", .string($0.message))])
                    } ?? .null
                ),
                ("uptimeSeconds", .number(Date().timeIntervalSince(self.startedAt).rounded())),
                ("upstreams", self.upstreams?() ?? snapshot.table.upstreamsJSON),
            ]))
    }
}

extension AdminRoutes {
    /// Where the diffs are read: the shared store every proxy writes to (`--store`), else this proxy's diff store.
    var reader: any DiffReading { self.operations.evidence }

    /// Outcomes still queued are compared and written first, so the answer includes every finished shadow.
    func diffs(_ request: Request) async -> Response {
        await self.flush()
        let route = request.uri.queryParameters.get("route")
        do {
            return Self.json(try await self.reader.summary(route: route, pointerLimit: 50))
        } catch {
            return Self.error(.internalServerError, "storage_failed", "the diff store could not be read: \(error)")
        }
    }

    func samples(_ request: Request) async -> Response {
        guard let route = request.uri.queryParameters.get("route"), !route.isEmpty else {
            return Self.error(.badRequest, "route_required", "add ?route=ID (a route id of the table)")
        }
        let limit: Int
        switch Self.limit(request, default: 20, most: 1000) {
        case .success(let value): limit = value
        case .failure(let refusal): return refusal.response
        }
        await self.flush()
        do {
            let samples = try await self.reader.samples(
                route: route, signature: request.uri.queryParameters.get("signature"), limit: limit)
            return Self.json(.object([("route", .string(route)), ("samples", samples)]))
        } catch {
            return Self.error(.internalServerError, "storage_failed", "the diff store could not be read: \(error)")
        }
    }

    /// What noise learning saw for a route: per pointer, how often two answers of the same side differed there,
    /// and the ignore rules it proposes (pointers not ignored yet). Nothing is applied here.
    func noise(_ request: Request) async -> Response {
        guard let routeID = request.uri.queryParameters.get("route"), !routeID.isEmpty else {
            return Self.error(.badRequest, "route_required", "add ?route=ID (a route id of the table)")
        }
        guard let route = self.control.table.liveTable.table.route(id: routeID) else {
            return Self.error(.notFound, "not_found", "no route has id \"\(routeID)\"")
        }
        await self.flush()
        do {
            let noise = try await self.reader.noise(route: routeID)
            let ignored = route.shadow?.ignore ?? []
            let proposed = noise.pointers.map(\.pointer).filter { pointer in
                !ignored.contains { PointerPattern.covers(pattern: $0, pointer: pointer) }
            }
            return Self.json(
                .object([
                    ("route", .string(routeID)),
                    ("checks", .number(Double(noise.checks))),
                    (
                        "pointers",
                        .array(
                            noise.pointers.map {
                                .object([("pointer", .string($0.pointer)), ("count", .number(Double($0.count)))])
                            })
                    ),
                    ("ignored", .array(ignored.map(JSONValue.string))),
                    ("proposed", .array(proposed.map(JSONValue.string))),
                ]))
        } catch {
            return Self.error(.internalServerError, "storage_failed", "the diff store could not be read: \(error)")
        }
    }
}

struct AdminFailure: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}

/// Refuses every admin call without the right bearer token.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    /// Requests let in without the bearer token (the dashboard's public pages, and its events with a session).
    var letIn: @Sendable (Request) -> Bool = { _ in false }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if self.letIn(request) { return try await next(request, context) }
        guard let header = request.headers[.authorization], let given = AdminToken.bearer(header[...]),
            AdminToken.matches(given, self.token)
        else {
            var response = AdminRoutes.error(
                .unauthorized, "unauthorized",
                "send Authorization: Bearer <token> (STRANGLER_ADMIN_TOKEN or <data>/admin-token)")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}
