import AdminAPI
import Foundation
import Gateway
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

@Suite("Proxy: forwarding by stage")
struct ProxyForwardingTests {
    @Test func eachStageReachesTheRightUpstream() async throws {
        try await ProxyHarness.run { harness in
            // transform → monolith
            let transform = try await RawHTTP.get("/contacts/con_1?fields=a%20b&x=1", port: harness.proxyPort)
            #expect(transform.status == 200)
            #expect(json(transform.body)["upstream"] as? String == "monolith")
            #expect(
                json(transform.body)["uri"] as? String == "/contacts/con_1?fields=a%20b&x=1",
                "the query string passes untouched")
            // eliminate → service
            let eliminate = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                    + "Connection: close\r\n\r\n{\"a\":\"bc\"}\n",
                port: harness.proxyPort)
            let created = RawHTTP.parse(eliminate.text)
            #expect(json(created.first?.body ?? "")["upstream"] as? String == "service")
            #expect(json(created.first?.body ?? "")["bodyLength"] as? Int == 11)
            // unmatched → monolith
            let unmatched = try await RawHTTP.get("/leads/led_1", port: harness.proxyPort)
            #expect(json(unmatched.body)["upstream"] as? String == "monolith")
            // a method without a route → monolith
            let delete = try await RawHTTP.send(
                "DELETE /contacts/con_1 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", port: harness.proxyPort)
            #expect(json(RawHTTP.parse(delete.text).first?.body ?? "")["upstream"] as? String == "monolith")
        }
    }

    @Test func coexistIsAnsweredByTheMonolithAndEliminateByTheService() async throws {
        try await ProxyHarness.run(stage: "coexist") { harness in
            let answer = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort)
            #expect(json(answer.body)["upstream"] as? String == "monolith")
        }
        try await ProxyHarness.run(stage: "eliminate") { harness in
            let answer = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort)
            #expect(json(answer.body)["upstream"] as? String == "service")
        }
    }

    @Test func rewritesHeadersForTheUpstreamHop() async throws {
        try await ProxyHarness.run { harness in
            let answer = try await RawHTTP.get(
                "/contacts/con_1", port: harness.proxyPort,
                headers: [
                    "X-Secret: hop", "Keep-Alive: timeout=5", "TE: trailers", "Proxy-Authorization: Basic eA==",
                    "Connection: close, X-Secret",
                ])
            let headers = json(answer.body)["headers"] as? [String: String] ?? [:]
            #expect(headers["x-forwarded-for"] == "127.0.0.1")
            #expect(headers["x-forwarded-proto"] == "http")
            #expect(headers["x-forwarded-host"] == "proxy.test")
            #expect(headers["via"] == "1.1 strangler")
            #expect(json(answer.body)["authority"] as? String == "127.0.0.1:\(harness.monolithPort)")
            for hop in ["x-secret", "keep-alive", "te", "proxy-authorization", "connection"] {
                #expect(headers[hop] == nil, "\(hop) was forwarded")
            }
            let requestID = try #require(headers["x-request-id"])
            #expect(requestID.count == 32 && requestID.allSatisfy(\.isHexDigit))
            #expect(answer.header("x-request-id") == requestID)
            #expect(answer.header("via")?.contains("1.1 strangler") == true)
            let traceparent = try #require(headers["traceparent"])
            #expect(HeaderRules.isValidTraceparent(traceparent))

            let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let passed = try await RawHTTP.get(
                "/contacts/con_1", port: harness.proxyPort,
                headers: [
                    "X-Request-Id: req-123", "traceparent: \(given)", "X-Forwarded-For: 10.0.0.1", "Via: 1.0 edge",
                ])
            let passedHeaders = json(passed.body)["headers"] as? [String: String] ?? [:]
            #expect(passedHeaders["x-request-id"] == "req-123")
            #expect(passedHeaders["traceparent"] == given)
            #expect(passedHeaders["x-forwarded-for"] == "10.0.0.1, 127.0.0.1")
            #expect(passedHeaders["via"] == "1.0 edge, 1.1 strangler")
            let invalidTrace = try await RawHTTP.get(
                "/contacts/con_1", port: harness.proxyPort, headers: ["traceparent: 00-zz-bad"])
            let replaced = (json(invalidTrace.body)["headers"] as? [String: String])?["traceparent"] ?? ""
            #expect(HeaderRules.isValidTraceparent(replaced))
        }
    }

    @Test func aTracestateGoesWithItsTraceparentOnly() async throws {
        try await ProxyHarness.run { harness in
            func forwarded(_ headers: [String]) async throws -> [String: String] {
                let answer = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort, headers: headers)
                return json(answer.body)["headers"] as? [String: String] ?? [:]
            }
            let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            // Two fields are one list, joined in order, spaces around members dropped.
            let joined = try await forwarded([
                "traceparent: \(given)", "tracestate: congo=t61rcWkgMzE ,  rojo=00f067aa0ba902b7",
                "tracestate: tenant@vendor=x",
            ])
            #expect(joined["traceparent"] == given)
            #expect(joined["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,tenant@vendor=x")
            // With a traceparent that is not one, the proxy starts a trace: the client's tracestate is not its.
            let restarted = try await forwarded(["traceparent: 00-zz-bad", "tracestate: congo=t61rcWkgMzE"])
            #expect(restarted["traceparent"] != nil && restarted["tracestate"] == nil, "\(restarted)")
            #expect(try await forwarded(["tracestate: congo=t61rcWkgMzE"])["tracestate"] == nil)
            // A malformed list (an upper-case key, a duplicate, a value with '=') is dropped; the traceparent stays.
            for bad in ["Congo=1", "congo=1,congo=2", "congo=a=b", "=x", "congo="] {
                let dropped = try await forwarded(["traceparent: \(given)", "tracestate: \(bad)"])
                #expect(dropped["traceparent"] == given && dropped["tracestate"] == nil, "\(bad): \(dropped)")
            }
            // A later version is read by its first 55 characters and forwarded as version 00.
            let later = try await forwarded([
                "traceparent: cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next"
            ])
            #expect(later["traceparent"] == given)
        }
    }

    @Test func traceContextRulesFollowLevelOne() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        #expect(HeaderRules.traceparent("00-" + id) == "00-" + id)
        #expect(HeaderRules.traceparent("00-" + id + "-more") == nil, "version 00 is exactly 55 characters")
        #expect(HeaderRules.traceparent("01-" + id) == "00-" + id)
        #expect(HeaderRules.traceparent("01-" + id + "x") == nil, "what follows the 55 must start with -")
        #expect(HeaderRules.traceparent("ff-" + id) == nil)
        #expect(HeaderRules.traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
        #expect(HeaderRules.tracestate(["a=1", " ", "b@c=2 "]) == "a=1,b@c=2")
        #expect(HeaderRules.tracestate([(1...33).map { "k\($0)=v" }.joined(separator: ",")]) == nil)
        #expect(HeaderRules.tracestate([(1...32).map { "k\($0)=v" }.joined(separator: ",")]) != nil)
        #expect(HeaderRules.tracestate(["k=" + String(repeating: "v", count: 257)]) == nil)
        #expect(HeaderRules.tracestate(["a@b@c=1"]) == nil)
        #expect(HeaderRules.tracestate([""]) == nil)
    }

    @Test func keepsClientConnectionsAliveAcrossRequests() async throws {
        try await ProxyHarness.run { harness in
            let requests = (1...3).map {
                "GET /contacts/con_\($0) HTTP/1.1\r\nHost: p\r\n\($0 == 3 ? "Connection: close\r\n" : "")\r\n"
            }.joined()
            let result = try await RawHTTP.send(requests, port: harness.proxyPort)
            let responses = RawHTTP.parse(result.text)
            #expect(responses.count == 3)
            #expect(
                responses.map { json($0.body)["uri"] as? String } == [
                    "/contacts/con_1", "/contacts/con_2", "/contacts/con_3",
                ])
            #expect(result.closedByServer)
        }
    }

    /// The heads the proxy writes go into buffers, and the heads it parses into field arrays, that a loop's exchanges
    /// reuse one after another: with many connections' exchanges in flight at once, each request still reaches the
    /// upstream with its own path and id, and each answer comes back with its own.
    @Test func concurrentExchangesOnReusedBuffersKeepTheirOwnHeads() async throws {
        try await ProxyHarness.run { harness in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for connection in 0..<8 {
                    group.addTask {
                        let requests = (0..<20).map { index in
                            "GET /contacts/con_\(connection)_\(index)\(String(repeating: "x", count: index * 7)) "
                                + "HTTP/1.1\r\nHost: p\r\nX-Request-Id: id-\(connection)-\(index)\r\n"
                                + "X-Pad: \(String(repeating: "p", count: (connection * 31 + index * 13) % 200))\r\n"
                                + (index == 19 ? "Connection: close\r\n" : "") + "\r\n"
                        }.joined()
                        let responses = RawHTTP.parse(try await RawHTTP.send(requests, port: harness.proxyPort).text)
                        #expect(responses.count == 20)
                        for (index, response) in responses.enumerated() {
                            let path = "/contacts/con_\(connection)_\(index)\(String(repeating: "x", count: index * 7))"
                            #expect(json(response.body)["uri"] as? String == path)
                            let id = response.headers.first { $0.0.lowercased() == "x-request-id" }?.1
                            #expect(id == "id-\(connection)-\(index)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// A client that half-closes its connection after its requests still gets every answer, then the close.
    @Test func answersAClientThatHalfClosesAfterItsRequests() async throws {
        try await ProxyHarness.run { harness in
            let requests =
                "GET /contacts/con_1 HTTP/1.1\r\nHost: p\r\n\r\nGET /contacts/con_2 HTTP/1.1\r\nHost: p\r\n\r\n"
            let result = try await RawHTTP.send(requests, port: harness.proxyPort, halfClose: true)
            #expect(RawHTTP.parse(result.text).map(\.status) == [200, 200])
            #expect(result.closedByServer)
        }
    }

    @Test func streamsLargeBodiesBothWays() async throws {
        try await ProxyHarness.run { harness in
            let size = 3 * 1024 * 1024
            let chunk = String(repeating: "x", count: 64 * 1024)
            var request =
                "POST /contacts HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            for _ in 0..<(size / chunk.count) { request += String(chunk.count, radix: 16) + "\r\n" + chunk + "\r\n" }
            request += "0\r\n\r\n"
            let answer = RawHTTP.parse(try await RawHTTP.send(request, port: harness.proxyPort).text)
            #expect(answer.first?.status == 200)
            #expect(json(answer.first?.body ?? "")["bodyLength"] as? Int == size)
        }
    }
}

@Suite("Proxy: upstream failures")
struct ProxyUpstreamFailureTests {
    @Test func refusedUpstreamIs502WithTheRouteID() async throws {
        try await ProxyHarness.run { harness in
            let answer = try await RawHTTP.get("/dead", port: harness.proxyPort)
            #expect(answer.status == 502)
            let error = json(answer.body)["error"] as? [String: Any] ?? [:]
            #expect(error["code"] as? String == "bad_gateway")
            #expect(error["route"] as? String == "dead.get")
            #expect((error["message"] as? String)?.contains("http://127.0.0.1:1") == true)
            #expect(answer.header("content-type") == "application/problem+json")
            // The proxy is still fine.
            #expect(try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort).status == 200)
        }
    }

    @Test func slowUpstreamIs504AfterTheRoutesTimeout() async throws {
        try await ProxyHarness.run { harness in
            let answer = try await RawHTTP.get("/sleep", port: harness.proxyPort)
            #expect(answer.status == 504)
            let error = json(answer.body)["error"] as? [String: Any] ?? [:]
            #expect(error["code"] as? String == "gateway_timeout")
            #expect(error["route"] as? String == "sleep.get")
            #expect((error["message"] as? String)?.contains("300ms") == true)
            #expect(try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort).status == 200)
        }
    }

    /// The connection's timer follows the exchange in flight: a short route after a long one on the same
    /// keep-alive connection still times out at its own deadline.
    @Test func eachRequestOnAKeepAliveConnectionHasItsRoutesTimeout() async throws {
        try await ProxyHarness.run { harness in
            let requests =
                "GET /contacts/con_1 HTTP/1.1\r\nHost: p\r\n\r\nGET /sleep HTTP/1.1\r\nHost: p\r\n\r\nGET "
                + "/contacts/con_2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
            let started = ContinuousClock.now
            let responses = RawHTTP.parse(try await RawHTTP.send(requests, port: harness.proxyPort).text)
            #expect(responses.map(\.status) == [200, 504, 200])
            // Below the default 30 s, with room for a loaded machine (21.7 s was seen in a full parallel run).
            #expect(
                ContinuousClock.now - started < .seconds(29),
                "the 504 should come after the route's 300ms, not the default 30s")
        }
    }

    @Test func upstreamThatResetsIs502AndTheProxySurvives() async throws {
        // An upstream that accepts and closes at once, before answering.
        let listener = try await ResetServer.start()
        defer { listener.stop() }
        try await ProxyHarness.run { harness in
            let text = ProxyHarness.routes(monolith: listener.port, service: harness.servicePort)
            try text.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(await eventually { harness.proxy.store.snapshot.table.monolith.port == listener.port })
            let answer = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort)
            #expect(answer.status == 502)
            #expect((json(answer.body)["error"] as? [String: Any])?["route"] as? String == "contacts.get")
            #expect(try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort).status == 502)
        }
    }
}

/// Accepts connections and closes them at once.
final class ResetServer: @unchecked Sendable {
    let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    static func start() async throws -> ResetServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.close() }
            .bind(host: "127.0.0.1", port: 0).get()
        return ResetServer(port: channel.localAddress!.port!, channel: channel)
    }

    func stop() { self.channel.close(promise: nil) }
}
