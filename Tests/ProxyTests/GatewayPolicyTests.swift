import Crypto
import Foundation
import Gateway
import NIOConcurrencyHelpers
import NIOCore
import ProxyTestSupport
import RawStructuredFieldValues
import RouteTable
import Testing

@testable import Proxy

/// The gateway's policies in front of test upstreams the tests start themselves: rate limits (429 and the IETF
/// fields), throttles (the queue and its timeout), API keys, allow and deny, observe-only access, and the media type
/// of the proxy's own answers.
@Suite("Gateway: limits, identities, access and negotiation")
struct GatewayPolicyTests {
    static let webKey = "web-key-0123456789"
    static let mobileKey = "mobile-key-0123456789"

    static func digest(_ key: String) -> String {
        "sha256:" + SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A table of our own: `/things/{id}` (monolith), `/items` (a service, `stage`), `/slow/{id}` (the service, held
    /// until the end), with `routeExtra` on `/things/{id}`, `serviceExtra` on the service, `top` at the top level.
    static func table(
        monolith: Int, service: Int, routeExtra: String = "", itemsStage: String = "eliminate",
        serviceExtra: String = "", slowExtra: String = "", top: String = ""
    ) -> String {
        """
        { "monolith": "http://127.0.0.1:\(monolith)",
          "services": { "stock": { "url": "http://127.0.0.1:\(service)"\(serviceExtra) } },
          "clients": { "web": { "keys": ["\(Self.digest(Self.webKey))"] },
                       "mobile": { "keys": ["\(Self.digest(Self.mobileKey))"] } }\(top),
          "routes": [
            { "id": "things.get", "method": "GET", "path": "/things/{id}", "stage": "transform"\(routeExtra) },
            { "id": "items.list", "method": "GET", "path": "/items", "service": "stock", "stage": "\(itemsStage)" },
            { "id": "slow.get", "method": "GET", "path": "/slow/{id}", "service": "stock", "stage": "eliminate"\
        \(slowExtra) }
          ] }
        """
    }

    static func list(_ text: String?) throws -> [(name: String, parameters: [String: Int])] {
        var parser = StructuredFieldValueParser(Array((text ?? "").utf8))
        return try parser.parseListFieldValue().map { member in
            guard case .item(let item) = member, case .string(let name) = item.bareItem else {
                throw ParseFailure(text: text ?? "")
            }
            var parameters: [String: Int] = [:]
            for (key, value) in item.parameters {
                guard case .integer(let number) = value else { throw ParseFailure(text: text ?? "") }
                parameters[key] = number
            }
            return (name, parameters)
        }
    }

    struct ParseFailure: Error { var text: String }

    @Test func overTheLimitIs429WithRetryAfterAndTheIETFFieldsAndTheConnectionStays() async throws {
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(
                monolith: monolith, service: service,
                routeExtra: #", "limits": { "rate": "1/m", "burst": 2, "by": "ip" }"#)
        }) { harness in
            let connection = try await RawConnection.open(port: harness.proxyPort)
            var answers: [RawResponse] = []
            for index in 1...3 {
                await connection.write("GET /things/\(index) HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
                answers = await connection.waitForResponses(index)
            }
            await connection.close()
            #expect(answers.map(\.status) == [200, 200, 429])
            for answer in answers {
                let policy = try Self.list(answer.header("ratelimit-policy"))
                #expect(policy.count == 1)
                #expect(policy.first?.name == "burst")
                #expect(policy.first?.parameters == ["q": 2, "w": 60])
            }
            #expect(try Self.list(answers[0].header("ratelimit")).first?.parameters["r"] == 1)
            let state = try Self.list(answers[2].header("ratelimit")).first
            #expect(state?.parameters["r"] == 0)
            #expect((1...60).contains(state?.parameters["t"] ?? 0), "one token a minute: the next within a minute")
            let refused = answers[2]
            #expect(Int(refused.header("retry-after") ?? "") == state?.parameters["t"])
            #expect(refused.header("content-type") == "application/problem+json")
            #expect(refused.header("vary")?.lowercased() == "accept")
            let problem = json(refused.body)
            #expect(problem["status"] as? Int == 429)
            #expect(problem["code"] as? String == "rate_limited")
            #expect(problem["route"] as? String == "things.get")
            #expect((problem["detail"] as? String)?.contains("1/60s with a burst of 2 by ip") == true)
            #expect(harness.monolith.seenPaths.withLockedValue { $0 } == ["/things/1", "/things/2"])
            // Another route has no limit: no fields.
            let other = try await RawHTTP.get("/items", port: harness.proxyPort)
            #expect(other.status == 200)
            #expect(other.header("ratelimit") == nil)
        }
    }

    @Test func aServicesLimitCountsOnlyWhatItAnswersNeverTheShadow() async throws {
        for stage in ["coexist", "eliminate"] {
            try await ProxyHarness.run(routes: { monolith, service in
                Self.table(
                    monolith: monolith, service: service, itemsStage: stage,
                    serviceExtra: #", "limits": { "rate": "1/m", "burst": 1, "by": "route" }"#)
            }) { harness in
                var statuses: [Int] = []
                for _ in 0..<3 { statuses.append(try await RawHTTP.get("/items", port: harness.proxyPort).status) }
                if stage == "coexist" {
                    // The monolith answers; the service gets shadow copies only, which its limit does not count.
                    #expect(statuses == [200, 200, 200])
                    let shadowed = await eventually { harness.service.seenPaths.withLockedValue { $0.count } == 3 }
                    #expect(shadowed)
                } else {
                    #expect(statuses == [200, 429, 429])
                }
            }
        }
    }

    @Test func apiKeysIdentifyTheClientAndTheRouteAllowsOnlyThoseItNames() async throws {
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(monolith: monolith, service: service, routeExtra: #", "allow": ["web"], "deny": ["mobile"]"#)
        }) { harness in
            let anonymous = try await RawHTTP.get("/things/1", port: harness.proxyPort)
            #expect(anonymous.status == 401)
            #expect(anonymous.header("www-authenticate")?.hasPrefix("Bearer") == true)
            #expect(json(anonymous.body)["code"] as? String == "unauthenticated")
            let unknown = try await RawHTTP.get("/things/1", port: harness.proxyPort, headers: ["X-Api-Key: nope"])
            #expect(unknown.status == 401)
            #expect((json(unknown.body)["detail"] as? String)?.contains("not a known key") == true)
            let mobile = try await RawHTTP.get(
                "/things/1", port: harness.proxyPort, headers: ["X-Api-Key: \(Self.mobileKey)"])
            #expect(mobile.status == 403)
            #expect(json(mobile.body)["code"] as? String == "forbidden")
            #expect(harness.monolith.seenRequests.withLockedValue { $0 }.isEmpty, "nothing refused went through")

            let byKey = try await RawHTTP.get(
                "/things/1", port: harness.proxyPort,
                headers: ["X-Api-Key: \(Self.webKey)", "Strangler-Client: mobile"])
            #expect(byKey.status == 200)
            let byBearer = try await RawHTTP.get(
                "/things/2", port: harness.proxyPort, headers: ["Authorization: Bearer \(Self.webKey)"])
            #expect(byBearer.status == 200)
            let seen = harness.monolith.seenRequests.withLockedValue { $0 }
            #expect(seen.map { $0.headers["strangler-client"] } == ["web", "web"], "set by the proxy, once")

            // A route without a rule: a client's own Strangler-Client never reaches the upstream.
            let forged = try await RawHTTP.get(
                "/items", port: harness.proxyPort, headers: ["Strangler-Client: web"])
            #expect(forged.status == 200)
            #expect(harness.service.seenRequests.withLockedValue { $0 }.last?.headers["strangler-client"] == nil)
        }
    }

    @Test func aServiceCallingThroughTheGatewayFollowsTheSameMap() async throws {
        let serviceKey = "stock-service-key-0123456789"
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(monolith: monolith, service: service, routeExtra: #", "allow": ["service:stock"]"#)
                .replacingOccurrences(
                    of: #""mobile": { "keys""#,
                    with: #""service:stock": { "keys": ["\#(Self.digest(serviceKey))"] }, "mobile": { "keys""#)
        }) { harness in
            let byService = try await RawHTTP.get(
                "/things/1", port: harness.proxyPort, headers: ["X-Api-Key: \(serviceKey)"])
            #expect(byService.status == 200)
            #expect(
                harness.monolith.seenRequests.withLockedValue { $0 }.last?.headers["strangler-client"]
                    == "service:stock")
            let byWeb = try await RawHTTP.get(
                "/things/1", port: harness.proxyPort, headers: ["X-Api-Key: \(Self.webKey)"])
            #expect(byWeb.status == 403)
            #expect((json(byWeb.body)["detail"] as? String) == "client web may not call route things.get")
        }
    }

    @Test func observeOnlyForwardsEveryCallAndCountsWhatTheMapWouldRefuse() async throws {
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(
                monolith: monolith, service: service, routeExtra: #", "allow": ["web"]"#, top: #", "enforce": false"#)
        }) { harness in
            #expect(try await RawHTTP.get("/things/1", port: harness.proxyPort).status == 200)
            let mobile = try await RawHTTP.get(
                "/things/2", port: harness.proxyPort, headers: ["X-Api-Key: \(Self.mobileKey)"])
            #expect(mobile.status == 200)
            #expect(
                try await RawHTTP.get("/things/3", port: harness.proxyPort, headers: ["X-Api-Key: \(Self.webKey)"])
                    .status == 200)
            #expect(try await RawHTTP.get("/items", port: harness.proxyPort).status == 200)
            let calls = harness.proxy.store.snapshot.gateway?.observations.calls ?? []
            let counted = Dictionary(
                uniqueKeysWithValues: calls.map { ("\($0.call.client) \($0.call.route)", $0.count) })
            #expect(
                counted == [
                    "anonymous things.get": 1, "mobile things.get": 1, "web things.get": 1, "anonymous items.list": 1,
                ])
        }
    }

    @Test func aThrottleQueuesThenAnswers503WhenTheWaitRunsOut() async throws {
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(
                monolith: monolith, service: service,
                slowExtra: #", "maxInFlight": 1, "queueTimeout": "200ms""#)
        }) { harness in
            async let held = RawHTTP.get("/slow/1", port: harness.proxyPort)
            let arrived = await eventually { harness.service.gate.arrived == 1 }
            #expect(arrived)
            let refused = try await RawHTTP.get("/slow/2", port: harness.proxyPort, headers: ["Accept: text/plain"])
            #expect(refused.status == 503)
            #expect(refused.header("retry-after") == "1")
            #expect(refused.header("content-type") == "text/plain; charset=utf-8")
            #expect(refused.body.contains("route slow.get has 1 requests in flight; this one waited 200ms"))
            #expect(harness.service.gate.arrived == 1, "the refused request never reached the service")
            harness.service.gate.open()
            #expect(try await held.status == 200)
            // The slot came back: the next request goes straight through.
            #expect(try await RawHTTP.get("/slow/3", port: harness.proxyPort).status == 200)
        }
    }

    @Test func aQueuedRequestIsForwardedWhenASlotComesFree() async throws {
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(
                monolith: monolith, service: service,
                serviceExtra: #", "maxInFlight": 1, "queueTimeout": "30s", "maxQueued": 1"#)
        }) { harness in
            async let first = RawHTTP.get("/slow/1", port: harness.proxyPort)
            #expect(await eventually { harness.service.gate.arrived == 1 })
            async let second = RawHTTP.get("/slow/2", port: harness.proxyPort)
            let throttle = harness.proxy.store.snapshot.gateway?.services["stock"]?.throttle
            #expect(await eventually { throttle?.counts.queued == 1 })
            // The queue holds one: a third is refused at once.
            let third = try await RawHTTP.get("/items", port: harness.proxyPort)
            #expect(third.status == 503)
            #expect(json(third.body)["code"] as? String == "throttled")
            #expect(harness.service.gate.arrived == 1)
            harness.service.gate.open()
            let answers = try await [first.status, second.status]
            #expect(answers == [200, 200])
            #expect(throttle?.counts.inFlight == 0)
        }
    }

    @Test func theProxysOwnAnswersFollowAccept() async throws {
        try await ProxyHarness.run { harness in
            let cases: [(accept: String?, type: String)] = [
                (nil, "application/problem+json"), ("*/*", "application/problem+json"),
                ("application/json", "application/json; charset=utf-8"),
                ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"),
                ("text/plain", "text/plain; charset=utf-8"), ("image/png", "application/problem+json"),
            ]
            for item in cases {
                let answer = try await RawHTTP.get(
                    "/dead", port: harness.proxyPort, headers: item.accept.map { ["Accept: \($0)"] } ?? [])
                #expect(answer.status == 502)
                #expect(answer.header("content-type") == item.type, "\(item.accept ?? "no Accept")")
                #expect(answer.header("vary")?.lowercased() == "accept")
                #expect(Int(answer.header("content-length") ?? "") == answer.body.utf8.count)
                switch item.type {
                case "application/json; charset=utf-8":
                    #expect((json(answer.body)["error"] as? [String: Any])?["code"] as? String == "bad_gateway")
                    #expect(json(answer.body)["status"] == nil, "the toolkit's envelope only")
                case "application/problem+json":
                    let problem = json(answer.body)
                    #expect(problem["type"] as? String == "about:blank")
                    #expect(problem["title"] as? String == "Bad Gateway")
                    #expect(problem["status"] as? Int == 502)
                    #expect((problem["detail"] as? String)?.contains("http://127.0.0.1:1") == true)
                case "text/html; charset=utf-8":
                    #expect(answer.body.contains("<h1>502 Bad Gateway</h1>"))
                default:
                    #expect(answer.body.hasPrefix("502 Bad Gateway\n"))
                }
            }
        }
    }

    @Test func theAdminAPIsErrorsAndReportFollowAcceptToo() async throws {
        try await ProxyHarness.run { harness in
            // An error: as the proxy's own (problem+json by default, the envelope for application/json, a page, text).
            let unauthorized = try await harness.admin("GET", "/admin/routes", token: "wrong")
            #expect(unauthorized.status == 401)
            #expect(unauthorized.header("content-type") == "application/problem+json")
            #expect(unauthorized.header("vary") == "Accept")
            #expect(json(unauthorized.body)["status"] as? Int == 401)
            #expect((json(unauthorized.body)["error"] as? [String: Any])?["code"] as? String == "unauthorized")
            let envelope = try await harness.admin(
                "GET", "/admin/routes", token: "wrong", headers: ["Accept: application/json"])
            #expect(envelope.header("content-type") == "application/json; charset=utf-8")
            #expect(json(envelope.body)["status"] == nil)
            let page = try await harness.admin(
                "GET", "/admin/nowhere", headers: ["Accept: text/html, application/json;q=0.5"])
            #expect(page.status == 404)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.body.contains("no such admin endpoint: GET /admin/nowhere"))
            // A JSON endpoint asked for something else only: 406; with JSON among what it takes: its JSON.
            let refused = try await harness.admin("GET", "/admin/status", headers: ["Accept: text/plain"])
            #expect(refused.status == 406)
            #expect(refused.header("content-type") == "text/plain; charset=utf-8")
            let status = try await harness.admin("GET", "/admin/status", headers: ["Accept: text/html, */*;q=0.1"])
            #expect(status.status == 200)
            #expect(status.header("content-type") == "application/json; charset=utf-8")
            // The report comes in the media type asked for when `format` is not given.
            let markdown = try await harness.admin("GET", "/admin/report", headers: ["Accept: text/markdown"])
            #expect(markdown.header("content-type") == "text/markdown; charset=utf-8")
            let report = try await harness.admin("GET", "/admin/report", headers: ["Accept: application/json"])
            #expect(report.header("content-type") == "application/json; charset=utf-8")
            let html = try await harness.admin("GET", "/admin/report")
            #expect(html.header("content-type") == "text/html; charset=utf-8")
            let none = try await harness.admin("GET", "/admin/report", headers: ["Accept: image/png"])
            #expect(none.status == 406)
            #expect(
                try await harness.admin("GET", "/admin/report?format=junit", headers: ["Accept: image/png"]).status
                    == 200, "an explicit format wins")
        }
    }

    @Test func gatewayKeysAreValidatedWithTheirPlace() {
        let bad = """
            { "monolith": "http://127.0.0.1:1",
              "services": { "stock": { "url": "http://127.0.0.1:2", "limits": { "rate": "fast" } } },
              "clients": { "web": { "keys": ["plain-text-key"] }, "service:nope": { "keys": [] } },
              "limits": { "maxInFlight": 3, "by": "user" },
              "routes": [
                { "id": "a", "method": "GET", "path": "/a", "stage": "transform", "allow": ["ghost"],
                  "limits": { "burst": 0, "queueTimeout": "1s" }, "maxInFlight": 2, "enforce": "no" } ] }
            """
        var problems: [String] = []
        do {
            _ = try RouteTable.parse(bad)
            Issue.record("the table should be refused")
        } catch {
            problems = error.problems.map(\.description)
        }
        for expected in [
            "$.services.stock.limits.rate: must be a rate such as \"100/s\"",
            "$.clients.web.keys[0]: must be \"sha256:\" and 64 hex digits",
            "$.clients.service:nope: service \"nope\" is not declared in $.services",
            "$.limits.by: must be \"client\", \"ip\" or \"route\"",
            "$.limits.maxInFlight: is a route's or a service's",
            "$.routes[0].allow[0]: client \"ghost\" is not declared in $.clients",
            "$.routes[0].limits.burst: must be a whole number from 1",
            "$.routes[0].enforce: must be true or false",
        ] {
            #expect(problems.contains { $0.hasPrefix(expected) }, "\(expected)\n\(problems.joined(separator: "\n"))")
        }
        let good = try? RouteTable.parse(
            """
            { "monolith": "http://127.0.0.1:1", "limits": { "rate": "100/s", "quota": "10000/1d" },
              "routes": [ { "id": "a", "method": "GET", "path": "/a", "stage": "transform",
                            "limits": { "rate": "5/s", "burst": 10, "by": "route" }, "maxInFlight": 4 } ] }
            """)
        #expect(
            good?.gateway.limits
                == LimitPolicy(
                    rate: RateText(count: 100, period: .seconds(1)),
                    quota: RateText(count: 10000, period: .seconds(86_400))))
        #expect(good?.routes.first?.limits?.burst == 10)
        #expect(good?.routes.first?.limits?.maxInFlight == 4)
        #expect(good?.routes.first?.limits?.maxQueued == 4)
    }
}
