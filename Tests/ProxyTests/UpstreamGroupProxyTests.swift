import Foundation
import Gateway
import JSON
import NIOCore
import ProxyTestSupport
import RouteTable
import Synchronization
import Testing

@testable import Proxy

/// Several instances behind one group, in front of origins the tests start themselves: the spread, the path prefix,
/// health checks, ejection, retries and the 503 when nothing is left.
@Suite("Proxy: several instances per upstream")
struct UpstreamGroupProxyTests {
    /// A table whose monolith is `group` (every request goes to it) and that has no routes.
    static func table(_ group: String) -> String {
        #"{ "monolith": \#(group), "routes": [] }"#
    }

    static func instances(_ origins: [InstanceOrigin]) -> String {
        "[" + origins.map { "\"\($0.url)\"" }.joined(separator: ", ") + "]"
    }

    static func answeredBy(_ response: RawResponse) -> String? {
        jsonValue(response.body)["instance"]?.stringValue
    }

    func withOrigins(
        _ count: Int, _ body: ([InstanceOrigin]) async throws -> Void
    ) async throws {
        var origins: [InstanceOrigin] = []
        for index in 0..<count { origins.append(try await InstanceOrigin.start("i\(index)")) }
        do {
            try await body(origins)
        } catch {
            for origin in origins { await origin.stop() }
            throw error
        }
        for origin in origins { await origin.stop() }
    }

    /// A burst of answers released together does not close pooled connections that the next burst of requests then
    /// opens again: 150 requests held in flight at once, released together, then 150 more held at once, reach the
    /// upstream over the same 150 connections (with 64 idle kept per loop, as before, 86 were opened again). One
    /// event loop: each loop has its own pool, and how two split the bursts is the round-robin's, not the pool's.
    @Test func aBurstOfAnswersKeepsItsConnectionsForTheNextBurst() async throws {
        try await self.withOrigins(1) { origins in
            let origin = origins[0]
            try await ProxyHarness.run(
                routes: { _, _ in Self.table("\"\(origin.url)\"") }, configure: { $0.threads = 1 }
            ) { harness in
                let port = harness.proxyPort
                for burst in 0..<2 {
                    origin.setMode(.hold)
                    let requests = (0..<150).map { index in
                        Task { try await RawHTTP.get("/burst/\(burst)/\(index)", port: port) }
                    }
                    #expect(await eventually { origin.heldCount == 150 }, "every request of the burst in flight")
                    #expect(origin.connectionsAccepted == 150, "burst \(burst)")
                    origin.setMode(.answer)
                    origin.releaseHeld()
                    for request in requests {
                        let response = try await request.value
                        #expect(response.status == 200)
                    }
                }
            }
        }
    }

    /// The idle connections one upstream keeps make way for another's: each new connection to B closes one left idle
    /// to A, so the loop never holds more upstream connections than it had in use at once (the descriptor budget).
    @Test func newConnectionsToOneUpstreamCloseThoseIdleToAnother() async throws {
        try await self.withOrigins(2) { origins in
            let (a, b) = (origins[0], origins[1])
            let table = #"""
                { "monolith": "\#(a.url)", "services": { "b": "\#(b.url)" },
                  "routes": [ { "id": "b", "method": "GET", "path": "/b/*", "service": "b", "stage": "eliminate" } ] }
                """#
            try await ProxyHarness.run(routes: { _, _ in table }, configure: { $0.threads = 1 }) { harness in
                let port = harness.proxyPort
                for (origin, prefix) in [(a, "/a"), (b, "/b")] {
                    origin.setMode(.hold)
                    let requests = (0..<20).map { index in
                        Task { try await RawHTTP.get("\(prefix)/\(index)", port: port) }
                    }
                    #expect(await eventually { origin.heldCount == 20 })
                    origin.setMode(.answer)
                    origin.releaseHeld()
                    for request in requests {
                        let response = try await request.value
                        #expect(response.status == 200)
                    }
                }
                #expect(b.connectionsAccepted == 20)
                #expect(await eventually { a.connectionsOpen == 0 }, "A's 20 idle connections made way for B's 20")
                #expect(b.connectionsOpen == 20, "B's stay pooled")
            }
        }
    }

    @Test func roundRobinTakesTheInstancesInTurn() async throws {
        try await self.withOrigins(3) { origins in
            let group = #"{ "instances": \#(Self.instances(origins)) }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                var seen: [String] = []
                for index in 0..<9 {
                    let response = try await RawHTTP.get("/r/\(index)", port: harness.proxyPort)
                    #expect(response.status == 200)
                    seen.append(Self.answeredBy(response) ?? "?")
                }
                #expect(seen == ["i0", "i1", "i2", "i0", "i1", "i2", "i0", "i1", "i2"])
                for origin in origins { #expect(origin.served.count == 3) }
            }
        }
    }

    @Test func leastRequestsAvoidsTheBusyInstance() async throws {
        try await self.withOrigins(2) { origins in
            origins[0].setMode(.hold)
            let group = #"{ "instances": \#(Self.instances(origins)), "balance": "least-requests" }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                // A request held by i0 stays in flight there; with two instances both are always compared, so every
                // request that follows goes to the one with fewer in flight: i1.
                let port = harness.proxyPort
                // One at a time, until one is held by i0 (each lands on either until then).
                var held: [Task<RawResponse, any Error>] = []
                for index in 0..<50 where origins[0].heldCount < 1 {
                    let (heldBefore, servedBefore) = (origins[0].heldCount, origins[1].served.count)
                    held.append(Task { try await RawHTTP.get("/held/\(index)", port: port) })
                    _ = await eventually {
                        origins[0].heldCount > heldBefore || origins[1].served.count > servedBefore
                    }
                }
                #expect(origins[0].heldCount == 1)
                let before = origins[1].served.count
                for index in 0..<10 {
                    let response = try await RawHTTP.get("/quick/\(index)", port: port)
                    #expect(Self.answeredBy(response) == "i1")
                }
                #expect(origins[1].served.count == before + 10)
                origins[0].releaseHeld()
                origins[0].setMode(.answer)
                for task in held { #expect(try await task.value.status == 200) }
            }
        }
    }

    @Test func aURLPathIsPutBeforeEveryForwardedPath() async throws {
        try await self.withOrigins(1) { origins in
            let group = #"{ "url": "\#(origins[0].url)/api/v2/" }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                _ = try await RawHTTP.get("/orders/7?x=1", port: harness.proxyPort)
                _ = try await RawHTTP.get("//orders/./8", port: harness.proxyPort)
                _ = try await RawHTTP.get("/", port: harness.proxyPort)
                #expect(origins[0].served.map(\.target) == ["/api/v2/orders/7?x=1", "/api/v2/orders/8", "/api/v2/"])
            }
        }
    }

    @Test func anInstanceFailingHealthChecksGetsNoTrafficUntilItRecovers() async throws {
        try await self.withOrigins(2) { origins in
            let group = #"""
                { "instances": \#(Self.instances(origins)),
                  "health": { "path": "/healthz", "interval": "100ms", "timeout": "1s", "unhealthyAfter": 1,
                              "healthyAfter": 1 } }
                """#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let state = try #require(harness.proxy.store.snapshot.monolithBalancer.instances.last)
                origins[1].setHealth(503)
                #expect(try await eventually { !state.healthy.load(ordering: .relaxed) })
                let before = origins[1].served.count
                for index in 0..<6 {
                    let response = try await RawHTTP.get("/h/\(index)", port: harness.proxyPort)
                    #expect(Self.answeredBy(response) == "i0")
                }
                #expect(origins[1].served.count == before)
                #expect(state.record.withLock { $0.unhealthyWhy }?.contains("answered 503") == true)

                origins[1].setHealth(200)
                #expect(try await eventually { state.healthy.load(ordering: .relaxed) })
                var answered: Set<String> = []
                for index in 0..<4 {
                    answered.insert(
                        Self.answeredBy(try await RawHTTP.get("/b/\(index)", port: harness.proxyPort)) ?? "")
                }
                #expect(answered == ["i0", "i1"])
                let metrics = harness.proxy.metrics.render()
                let transitions = metrics.split(separator: "\n").filter {
                    $0.hasPrefix("strangler_upstream_health_transitions_total{") && $0.contains(origins[1].url)
                }
                #expect(
                    transitions.contains { $0.contains(#"to="unhealthy""#) && $0.hasSuffix(" 1") }, "\(transitions)")
                #expect(transitions.contains { $0.contains(#"to="healthy""#) && $0.hasSuffix(" 1") }, "\(transitions)")
            }
        }
    }

    @Test func whenEveryInstanceIsUnhealthyTheAnswerIs503WithRetryAfter() async throws {
        try await self.withOrigins(1) { origins in
            origins[0].setHealth(500)
            let group = #"""
                { "url": "\#(origins[0].url)",
                  "health": { "path": "/healthz", "interval": "3s", "timeout": "1s", "unhealthyAfter": 1 } }
                """#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let state = try #require(harness.proxy.store.snapshot.monolithBalancer.instances.first)
                #expect(try await eventually { !state.healthy.load(ordering: .relaxed) })
                let response = try await RawHTTP.get("/anything", port: harness.proxyPort)
                #expect(response.status == 503)
                #expect(response.header("retry-after") == "3")
                #expect(response.body.contains("upstream_unavailable"))
                #expect(response.body.contains("monolith is unhealthy"))
                #expect(origins[0].served.isEmpty)
            }
        }
    }

    @Test func aFullCircuitAnswers503AtOnceAndAWaitingRequestGetsTheNextFreeConnection() async throws {
        try await self.withOrigins(1) { origins in
            origins[0].setMode(.hold)
            let group = #"{ "url": "\#(origins[0].url)", "maxConnections": 1, "maxPending": 1 }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let port = harness.proxyPort
                let first = Task { try await RawHTTP.get("/first", port: port) }
                #expect(try await eventually { origins[0].heldCount == 1 })
                let state = try #require(harness.proxy.store.snapshot.monolithBalancer.instances.first)
                let second = Task { try await RawHTTP.get("/second", port: port) }
                #expect(try await eventually { state.pending.load(ordering: .relaxed) == 1 })
                let third = try await RawHTTP.get("/third", port: port)
                #expect(third.status == 503)
                #expect(third.header("retry-after") == "1")
                #expect(third.body.contains("(maxConnections)"), "\(third.body)")
                #expect(!origins[0].served.contains { $0.target == "/third" })
                origins[0].releaseHeld()
                #expect(try await first.value.status == 200)
                // The second goes out on the first's connection once it is free, and is held in turn.
                #expect(try await eventually { origins[0].heldCount == 1 })
                origins[0].releaseHeld()
                #expect(try await second.value.status == 200)
                #expect(state.pending.load(ordering: .relaxed) == 0)
            }
        }
    }

    @Test func withoutMaxPendingNothingWaits() async throws {
        try await self.withOrigins(1) { origins in
            origins[0].setMode(.hold)
            let group = #"{ "url": "\#(origins[0].url)", "maxConnections": 1 }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let first = Task { try await RawHTTP.get("/first", port: harness.proxyPort) }
                #expect(try await eventually { origins[0].heldCount == 1 })
                let second = try await RawHTTP.get("/second", port: harness.proxyPort)
                #expect(second.status == 503)
                origins[0].releaseHeld()
                #expect(try await first.value.status == 200)
            }
        }
    }

    @Test func inCoexistAShadowWithNoHealthyInstanceIsSkippedAsUnhealthy() async throws {
        try await self.withOrigins(1) { origins in
            origins[0].setHealth(503)
            try await ProxyHarness.run(routes: { monolith, _ in
                #"""
                { "monolith": "http://127.0.0.1:\#(monolith)",
                  "services": { "orders": { "url": "\#(origins[0].url)",
                    "health": { "path": "/healthz", "interval": "5s", "unhealthyAfter": 1 } } },
                  "routes": [ { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "service": "orders",
                                "stage": "coexist", "shadow": { "sample": 1.0 } } ] }
                """#
            }) { harness in
                let state = try #require(harness.proxy.store.snapshot.serviceBalancers["orders"]?.instances.first)
                #expect(try await eventually { !state.healthy.load(ordering: .relaxed) })
                let response = try await RawHTTP.get("/orders/1", port: harness.proxyPort)
                #expect(response.status == 200, "the monolith answers")
                let counts = try await harness.waitForDiffs("orders.get", "unhealthy", atLeast: 1)
                #expect(counts["unhealthy"] as? Int == 1)
                #expect(counts["skipped"] as? Int == 1)
                #expect(origins[0].served.isEmpty, "no copy went to the unhealthy service")
            }
        }
    }

    @Test func consecutiveFailuresEjectAnInstanceAndNeverMoreThanMaxPercent() async throws {
        try await self.withOrigins(2) { origins in
            origins[1].setMode(.fail)
            let group = #"""
                { "instances": \#(Self.instances(origins)),
                  "eject": { "consecutive": 2, "base": "1m", "max": "5m", "maxPercent": 50 } }
                """#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                var statuses: [Int] = []
                for index in 0..<4 {
                    statuses.append(try await RawHTTP.get("/e/\(index)", port: harness.proxyPort).status)
                }
                #expect(statuses == [200, 500, 200, 500], "in turn until i1 has failed twice")
                for index in 0..<4 {
                    let response = try await RawHTTP.get("/after/\(index)", port: harness.proxyPort)
                    #expect(Self.answeredBy(response) == "i0")
                }
                let balancer = harness.proxy.store.snapshot.monolithBalancer
                #expect(balancer.instances[1].ejections.load(ordering: .relaxed) == 1)
                #expect(balancer.instances[1].record.withLock { $0.ejectedWhy }?.contains("answered 500") == true)
                // i0 failing now cannot be ejected too: 50% of two is one.
                origins[0].setMode(.fail)
                for index in 0..<4 { _ = try await RawHTTP.get("/both/\(index)", port: harness.proxyPort) }
                #expect(balancer.instances[0].ejections.load(ordering: .relaxed) == 0)
                #expect(harness.proxy.metrics.render().contains("strangler_upstream_ejections_total"))

                // The admin API shows both instances: i1 ejected (until when, why), i0 serving.
                let status = jsonValue(try await harness.admin("GET", "/admin/status").body)
                let shown = status["upstreams"]?.at(0)?["instances"]?.arrayValue ?? []
                #expect(shown.map { $0["url"]?.stringValue } == origins.map(\.url))
                #expect(shown.first?["ejected"] == .null)
                #expect(shown.first?["healthy"] == .bool(true))
                #expect(shown.last?["ejected"]?["until"]?.stringValue != nil)
                #expect(shown.last?["ejected"]?["why"]?.stringValue?.contains("answered 500") == true)
                #expect(shown.last?["ejections"]?.numberValue == 1)
                #expect(shown.first?["openConnections"]?.numberValue ?? 0 >= 1)
            }
        }
    }

    @Test func aGETThatCannotConnectIsRetriedOnAnotherInstanceAndAPOSTIsNot() async throws {
        try await self.withOrigins(2) { origins in
            // i0 refuses connections (a port held, never listening: no other test's server can answer on it).
            let refusing = try RefusingPort()
            let group = #"{ "instances": ["\#(refusing.url)", "\#(origins[1].url)"], "eject": false }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                // Round-robin starts at i0, which refuses connections: the GET goes on to i1.
                let get = try await RawHTTP.get("/retried", port: harness.proxyPort)
                #expect(get.status == 200)
                #expect(Self.answeredBy(get) == "i1")
                _ = try await RawHTTP.get("/turn", port: harness.proxyPort)  // i1: the next turn is i0's
                let post = try await RawHTTP.send(
                    "POST /never HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
                    port: harness.proxyPort)
                #expect(RawHTTP.parse(post.text).first?.status == 502)
                #expect(!origins[1].served.contains { $0.target == "/never" })
                // With an Idempotency-Key, a POST may go again.
                _ = try await RawHTTP.get("/turn2", port: harness.proxyPort)
                let keyed = try await RawHTTP.send(
                    "POST /keyed HTTP/1.1\r\nHost: t\r\nIdempotency-Key: k1\r\nContent-Length: 2\r\n"
                        + "Connection: close\r\n\r\nhi",
                    port: harness.proxyPort)
                #expect(RawHTTP.parse(keyed.text).first?.status == 200)
                #expect(origins[1].served.contains { $0.method == "POST" && $0.target == "/keyed" })
            }
            withExtendedLifetime(refusing) {}
        }
    }

    @Test func aGETResetBeforeAnyAnswerByteIsRetriedElsewhere() async throws {
        try await self.withOrigins(2) { origins in
            origins[0].setMode(.reset)
            let group = #"{ "instances": \#(Self.instances(origins)), "eject": false }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let get = try await RawHTTP.get("/reset", port: harness.proxyPort)
                #expect(get.status == 200)
                #expect(Self.answeredBy(get) == "i1")
                #expect(origins[0].served.contains { $0.target == "/reset" }, "i0 read it and hung up")
            }
        }
    }
}

@Suite("Balancer: the choice of an instance and ejection's back-off")
struct BalancerTests {
    static func balancer(_ group: String) throws -> Balancer {
        let table = try RouteTable.parse(#"{ "monolith": \#(group), "routes": [] }"#)
        let store = try RouteTableStore(table: table, text: "")
        return store.snapshot.monolithBalancer
    }

    @Test func ejectionGrowsWithEachEjectionAndDecays() throws {
        let balancer = try Self.balancer(
            #"{ "instances": ["http://127.0.0.1:1", "http://127.0.0.1:2"], "#
                + #""eject": { "consecutive": 1, "base": "10s", "max": "25s", "maxPercent": 50 } }"#)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        #expect(balancer.failed(0, why: "refused", now: start) == .seconds(10))
        var ids = IDGenerator()
        for _ in 0..<5 { #expect(balancer.pick(now: start, random: &ids) == 1) }
        #expect(balancer.failed(0, why: "refused", now: start + .seconds(1)) == nil, "already ejected")
        let later = start + .seconds(11)
        #expect(balancer.pick(now: later, avoiding: 1, random: &ids) == 0, "back once its time is up")
        #expect(balancer.failed(0, why: "refused", now: later) == .seconds(20), "doubled")
        #expect(balancer.failed(0, why: "refused", now: later + .seconds(21)) == .seconds(25), "at most max")
        // Long healthy service since: the multiplier steps down one per base.
        let rested = later + .seconds(21 + 25 + 40)
        #expect(balancer.failed(0, why: "refused", now: rested) == .seconds(10))
    }

    @Test func retriesStayWithinTheBudget() throws {
        let balancer = try Self.balancer(
            #"{ "instances": ["http://127.0.0.1:1", "http://127.0.0.1:2"], "retryBudget": 0.2 }"#)
        // A saved-up burst of 50, then one retry per five requests.
        #expect((0..<50).allSatisfy { _ in balancer.claimRetry() })
        #expect(!balancer.claimRetry())
        for _ in 0..<4 { balancer.requestStarted() }
        #expect(!balancer.claimRetry(), "four requests earn 0.8 of a retry")
        balancer.requestStarted()
        #expect(balancer.claimRetry())
        #expect(!balancer.claimRetry())
        // Never more than the burst saved up, however long the quiet.
        for _ in 0..<1000 { balancer.requestStarted() }
        #expect((0..<51).map { _ in balancer.claimRetry() }.filter { $0 }.count == 50)
        let none = try Self.balancer(
            #"{ "instances": ["http://127.0.0.1:1", "http://127.0.0.1:2"], "retryBudget": 0 }"#)
        for _ in 0..<100 { none.requestStarted() }
        #expect((0..<51).map { _ in none.claimRetry() }.filter { $0 }.count == 50, "only the burst")
    }

    @Test func leastRequestsPicksTheLessLoadedOfTwo() throws {
        let balancer = try Self.balancer(
            #"{ "instances": ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"], "#
                + #""balance": "least-requests" }"#)
        balancer.instances[0].inFlight.store(5, ordering: .relaxed)
        balancer.instances[1].inFlight.store(5, ordering: .relaxed)
        var ids = IDGenerator()
        var counts = [0, 0, 0]
        for _ in 0..<300 { counts[balancer.pick(now: .now(), random: &ids)!] += 1 }
        // i2 wins every draw it is in (two of the three pairs): about 200 of 300; the others only against each other.
        #expect(counts[2] > 150 && counts[0] + counts[1] < 150, "\(counts)")
    }
}

@Suite("Upstream host names are resolved again")
struct UpstreamResolveTests {
    @Test func aNameThatMovesIsFollowedAndOneThatStaysChangesNothing() throws {
        let table = try RouteTable.parse(
            #"{ "monolith": { "instances": ["http://localhost:8080", "http://127.0.0.1:8081"] }, "routes": [] }"#)
        let store = try RouteTableStore(table: table, text: "")
        let before = store.snapshot
        let name = table.monolithGroup.instances[0]
        #expect(store.resolveAgain { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) } == nil)
        var asked: [String] = []
        let moved = store.resolveAgain { upstream in
            asked.append(upstream.host)
            return try SocketAddress(ipAddress: "127.0.0.2", port: upstream.port)
        }
        #expect(asked == ["localhost"], "IP addresses are not resolved")
        let after = try #require(moved)
        #expect(after.version == before.version + 1)
        #expect(after.addresses[name] == (try SocketAddress(ipAddress: "127.0.0.2", port: 8080)))
        #expect(after.monolithBalancer.addresses[0] == (try SocketAddress(ipAddress: "127.0.0.2", port: 8080)))
        #expect(after.monolithBalancer.instances[0] === before.monolithBalancer.instances[0], "its state carries over")
        struct Gone: Error {}
        #expect(store.resolveAgain { _ in throw Gone() } == nil, "a name that stops resolving keeps its address")
    }
}
