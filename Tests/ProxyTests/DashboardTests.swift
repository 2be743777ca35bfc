import Foundation
import Gateway
import JSON
import ProxyTestSupport
import Testing

/// The live dashboard on the admin port, over HTTP: the login page, the session, and the events.
@Suite struct DashboardTests {
    /// Signs in with the token (a form POST) and returns the session cookie.
    static func signIn(_ harness: ProxyHarness, token: String = ProxyHarness.token) async throws -> RawResponse {
        let form = "token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        return try await harness.admin(
            "POST", "/dashboard/login", token: nil,
            headers: ["Content-Type: application/x-www-form-urlencoded", "Content-Length: \(form.utf8.count)"],
            rawBody: form)
    }

    static func cookie(_ response: RawResponse) -> String? {
        response.header("set-cookie")?.split(separator: ";").first.map(String.init)
    }

    @Test func withoutTheTokenThereIsALoginPageAndNothingElse() async throws {
        try await ProxyHarness.run { harness in
            let page = try await harness.admin("GET", "/dashboard", token: nil, headers: ["Accept: text/html"])
            #expect(page.status == 200)
            #expect(page.header("content-type")?.hasPrefix("text/html") == true)
            #expect(page.body.contains(#"<form method="post" action="/dashboard/login">"#))
            #expect(page.body.contains(#"type="password""#))
            // No route, no data, no script that could fetch any.
            #expect(!page.body.contains("contacts.get"))
            #expect(!page.body.contains("app.js"))
            let policy = try #require(page.header("content-security-policy"))
            #expect(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"))
            // The events and the rest of the admin API refuse a viewer without a session.
            let events = try await harness.admin("GET", "/dashboard/events", token: nil)
            #expect(events.status == 401)
            let forged = try await harness.admin(
                "GET", "/dashboard/events", token: nil,
                headers: ["Cookie: strangler_dashboard=0123456789abcdef0123456789abcdef"])
            #expect(forged.status == 401)
            // A wrong token is refused on the login page itself, and makes no session.
            let wrong = try await Self.signIn(harness, token: "not-the-token")
            #expect(wrong.status == 401)
            #expect(wrong.header("set-cookie") == nil)
            #expect(wrong.body.contains("That is not the admin token"))
        }
    }

    @Test func aSessionGetsTheStateThenAFlipAsItHappens() async throws {
        try await ProxyHarness.run { harness in
            let login = try await Self.signIn(harness)
            #expect(login.status == 303)
            #expect(login.header("location") == "/dashboard")
            let setCookie = try #require(login.header("set-cookie"))
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
            #expect(setCookie.contains("Path=/dashboard"))
            #expect(!setCookie.contains(ProxyHarness.token))
            let cookie = try #require(Self.cookie(login))

            let page = try await harness.admin("GET", "/dashboard", token: nil, headers: ["Cookie: \(cookie)"])
            #expect(page.body.contains(#"<script src="/dashboard/app.js"></script>"#))
            let script = try await harness.admin("GET", "/dashboard/app.js", token: nil)
            #expect(script.header("content-type")?.hasPrefix("text/javascript") == true)
            #expect(script.body.contains("new EventSource(\"/dashboard/events\")"))

            let stream = try await StreamingHTTP.open(
                "GET /dashboard/events HTTP/1.1\r\nHost: admin\r\nAccept: text/event-stream\r\nCookie: \(cookie)\r\n\r\n",
                port: harness.adminPort)
            defer { Task { await stream.close() } }
            let snapshot = try #require(await stream.wait(for: "event: snapshot"))
            #expect(
                snapshot.contains("content-type: text/event-stream")
                    || snapshot.contains("Content-Type: text/event-stream"))
            let state = try #require(await stream.wait(for: "\"alerts\""))
            #expect(state.contains(#""id":"contacts.get""#))
            #expect(state.contains(#""stage":"transform""#))

            // A flip through the admin API reaches the viewer as a change of that row only.
            let before = stream.text.endIndex
            let etag = try #require(try await harness.admin("GET", "/admin/routes").header("etag"))
            let moved = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", headers: ["If-Match: \(etag)"],
                body: #"{"stage":"coexist","reason":"dashboard test","force":true}"#)
            #expect(moved.status == 200, "\(moved.body)")
            let update = try #require(await stream.wait(for: #""stage":"coexist""#, after: before))
            #expect(update.contains("event: routes"))
            #expect(update.contains(#""id":"contacts.get""#))
            #expect(!update.contains(#""id":"slow.get""#))
            // The change is listed once the evidence is read again.
            #expect(await stream.wait(for: "dashboard test", after: before) != nil)

            // Signed out, the session no longer opens the events.
            let out = try await harness.admin("POST", "/dashboard/logout", token: nil, headers: ["Cookie: \(cookie)"])
            #expect(out.status == 303)
            let after = try await harness.admin("GET", "/dashboard/events", token: nil, headers: ["Cookie: \(cookie)"])
            #expect(after.status == 401)
        }
    }
}

/// The dashboard in headless Chromium, as a person uses it: the login page, the token typed in, the live table.
@Suite("Dashboard: in a real browser")
struct DashboardBrowserTests {
    @Test(.enabled(if: Chromium.executable != nil, Comment(rawValue: Chromium.missing)))
    func itLoadsWithTheTokenShowsAFlipWithinASecondAndNothingWithoutIt() async throws {
        try await ProxyHarness.run { harness in
            let browser = try BrowserSession.start()
            defer { browser.close() }
            let page = try await browser.open("http://127.0.0.1:\(harness.adminPort)/dashboard")
            // Without the token: the login form, and no route anywhere on the page.
            #expect(try await browser.waitUntil("document.getElementById('token')", session: page))
            let before = try await browser.evaluate("document.documentElement.outerHTML", session: page)
            #expect(before.stringValue?.contains("contacts.get") == false)
            let denied = try await browser.evaluate(
                "fetch('/dashboard/events').then(answer => answer.status)", session: page)
            #expect(denied.numberValue == 401)

            // The token typed into the form (a POST: never in a URL), then the live table.
            _ = try await browser.evaluate(
                "document.getElementById('token').value = '\(ProxyHarness.token)'; "
                    + "document.querySelector('form').submit(); true", session: page)
            #expect(
                try await browser.waitUntil(
                    "document.querySelector('tr[data-route=\"contacts.get\"] .stage')?.textContent === 'transform'",
                    session: page))
            let location = try await browser.evaluate("location.href", session: page)
            #expect(location.stringValue == "http://127.0.0.1:\(harness.adminPort)/dashboard")
            #expect(try await browser.evaluate("document.cookie", session: page).stringValue == "")  // HttpOnly
            #expect(
                try await browser.evaluate("document.querySelectorAll('#routes tbody tr').length", session: page)
                    .numberValue == 5)

            // The page notes when the row's stage changes (its own clock, the machine's: no polling delay counted).
            _ = try await browser.evaluate(
                """
                window.flippedAt = null;
                new MutationObserver(() => {
                  const cell = document.querySelector('tr[data-route="contacts.get"] .stage');
                  if (cell && cell.textContent === 'coexist' && window.flippedAt === null) window.flippedAt = Date.now();
                }).observe(document.querySelector('#routes tbody'), { subtree: true, childList: true, characterData: true });
                true
                """, session: page)
            let etag = try #require(try await harness.admin("GET", "/admin/routes").header("etag"))
            let flippedAt = Date()
            let moved = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", headers: ["If-Match: \(etag)"],
                body: #"{"stage":"coexist","reason":"browser test","force":true}"#)
            #expect(moved.status == 200, "\(moved.body)")
            #expect(try await browser.waitUntil("window.flippedAt !== null", session: page))
            let shownAt = try await browser.evaluate("window.flippedAt", session: page).numberValue ?? 0
            let seconds = shownAt / 1000 - flippedAt.timeIntervalSince1970
            #expect(seconds < 1, "the flip showed \(seconds) s after it was made")
            print("dashboard: a flip showed \(Int(seconds * 1000)) ms after the admin API was asked")

            // Keyboard: "/" focuses the filter, typing filters the rows.
            _ = try await browser.evaluate(
                "document.dispatchEvent(new KeyboardEvent('keydown', { key: '/' })); true", session: page)
            #expect(try await browser.evaluate("document.activeElement.id", session: page).stringValue == "filter")
            _ = try await browser.evaluate(
                "const f = document.getElementById('filter'); f.value = 'slow'; f.dispatchEvent(new Event('input')); true",
                session: page)
            #expect(
                try await browser.evaluate(
                    "[...document.querySelectorAll('#routes tbody tr:not(.hidden)')].map(r => r.dataset.route).join()",
                    session: page
                ).stringValue == "slow.get")
        }
    }
}
