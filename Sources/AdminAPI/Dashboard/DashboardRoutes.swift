import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/dashboard` on the admin port: a login page that takes the admin token (POSTed, never in a URL), then the live
/// page, its script and style (served by the binary: no CDN), and `GET /dashboard/events`, the Server-Sent Events it
/// follows. Nothing but the login page, the script and the style is served without a session (or the bearer token).
extension AdminRoutes {
    /// Paths served without a session: the login page and what it needs.
    static let publicDashboardPaths: Set<String> = [
        "/dashboard", "/dashboard/", "/dashboard/login", "/dashboard/logout", "/dashboard/app.js",
        "/dashboard/app.css",
    ]

    func registerDashboard(on router: Router<BasicRequestContext>) {
        router.get("/dashboard") { request, _ in self.dashboardPage(request) }
        router.post("/dashboard/login") { request, _ in try await self.dashboardLogin(request) }
        router.post("/dashboard/logout") { request, _ in self.dashboardLogout(request) }
        router.get("/dashboard/app.js") { _, _ in
            Self.dashboardAsset(DashboardPage.script, type: "text/javascript; charset=utf-8")
        }
        router.get("/dashboard/app.css") { _, _ in
            Self.dashboardAsset(DashboardPage.style, type: "text/css; charset=utf-8")
        }
        router.get("/dashboard/events") { _, _ in self.dashboardEvents() }
    }

    /// Whether the request carries a dashboard session (or is let in by the bearer token, checked elsewhere).
    func hasDashboardSession(_ request: Request) -> Bool {
        guard let id = DashboardSessions.id(inCookie: request.headers[.cookie]) else { return false }
        return self.sessions.isValid(id)
    }

    func dashboardPage(_ request: Request) -> Response {
        guard self.dashboard != nil else { return Self.noDashboard }
        if self.hasDashboardSession(request) { return Self.dashboardHTML(DashboardPage.app, status: .ok) }
        return Self.dashboardHTML(DashboardPage.login(message: nil), status: .ok)
    }

    func dashboardLogin(_ request: Request) async throws -> Response {
        guard self.dashboard != nil else { return Self.noDashboard }
        let body = try await request.body.collect(upTo: 16 * 1024)
        let form = String(buffer: body)
        var given: String?
        for pair in form.split(separator: "&") where pair.hasPrefix("token=") {
            given = String(pair.dropFirst(6)).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        guard let given = given?.trimmingCharacters(in: .whitespacesAndNewlines), !given.isEmpty,
            AdminToken.matches(given[...], self.token)
        else {
            return Self.dashboardHTML(
                DashboardPage.login(
                    message: "That is not the admin token (STRANGLER_ADMIN_TOKEN or <data>/admin-token)."),
                status: .unauthorized)
        }
        let id = self.sessions.open()
        var headers = HTTPFields()
        headers[.location] = "/dashboard"
        headers[.setCookie] = self.sessionCookie(id, maxAge: Int(self.sessions.lifetime))
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    func dashboardLogout(_ request: Request) -> Response {
        if let id = DashboardSessions.id(inCookie: request.headers[.cookie]) { self.sessions.close(id) }
        var headers = HTTPFields()
        headers[.location] = "/dashboard"
        headers[.setCookie] = self.sessionCookie("", maxAge: 0)
        return Response(status: .seeOther, headers: headers)
    }

    func sessionCookie(_ id: String, maxAge: Int) -> String {
        "\(DashboardSessions.cookie)=\(id); Path=/dashboard; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (self.secureCookies ? "; Secure" : "")
    }

    /// `text/event-stream`: the whole state, then what changes, and a comment every 15 s to keep the connection.
    func dashboardEvents() -> Response {
        guard let dashboard = self.dashboard else { return Self.noDashboard }
        let stream = dashboard.subscribe()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                // The first bytes at once: the browser's EventSource opens when the head comes.
                try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                for await event in stream {
                    try await writer.write(ByteBuffer(string: event.wire))
                }
                try await writer.finish(nil)
            })
    }

    static let noDashboard = AdminRoutes.error(.notFound, "not_found", "this admin API has no dashboard")

    /// The page's policy: its own script and style only, its own events only, no frames, no referrer.
    static let dashboardPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func dashboardHTML(_ html: String, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = Self.dashboardPolicy
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    static func dashboardAsset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
