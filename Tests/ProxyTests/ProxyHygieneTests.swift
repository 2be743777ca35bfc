import AdminAPI
import Foundation
import Gateway
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

@Suite("Proxy: request hygiene", .timingSensitive)
struct ProxyHygieneTests {
    /// Each malformed request is answered 400 and the connection closes: the request smuggled behind it is
    /// never read, never forwarded.
    @Test(arguments: [
        (
            "both Content-Length and Transfer-Encoding",
            "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        (
            "several Content-Lengths",
            "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
        ),
        (
            "different Content-Lengths",
            "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
        ),
        ("malformed Content-Length", "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: 5x\r\n\r\nhello"),
        ("negative Content-Length", "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: -5\r\n\r\n"),
        ("obsolete line folding", "GET /contacts/1 HTTP/1.1\r\nHost: p\r\nX-Folded: a\r\n  b\r\n\r\n"),
        ("control character in a value", "GET /contacts/1 HTTP/1.1\r\nHost: p\r\nX-Bad: a\u{01}b\r\n\r\n"),
        ("invalid header name", "GET /contacts/1 HTTP/1.1\r\nHost: p\r\nX Bad: a\r\n\r\n"),
        ("unknown transfer coding", "POST /contacts HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ])
    func malformedRequestsAre400AndTheConnectionCloses(name: String, request: String) async throws {
        try await ProxyHarness.run { harness in
            let smuggled = "GET /smuggled HTTP/1.1\r\nHost: p\r\n\r\n"
            let result = try await RawHTTP.send(request + smuggled, port: harness.proxyPort)
            let responses = RawHTTP.parse(result.text)
            #expect(responses.count == 1, "\(name): \(result.text)")
            #expect(responses.first?.status == 400, "\(name): \(result.text)")
            #expect(result.closedByServer, "\(name): the connection stayed open")
            #expect(
                !harness.monolith.seenPaths.withLockedValue { $0 }.contains("/smuggled"),
                "\(name): smuggled request reached the monolith")
            #expect(!harness.service.seenPaths.withLockedValue { $0 }.contains("/smuggled"))
            #expect(
                harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty
                    && harness.service.seenPaths.withLockedValue { $0 }.isEmpty,
                "\(name): the malformed request was forwarded")
        }
    }

    /// A connection that stops sending (idle keep-alive, a head cut short) is closed after the idle timeout.
    @Test func stalledConnectionsAreClosedAfterTheIdleTimeout() async throws {
        // 1 s, not less: on a loaded machine the client's first bytes can come a few hundred milliseconds after it
        // connects, and a connection closed before them fails the test's write, not the proxy.
        try await ProxyHarness.run(configure: { $0.idleTimeout = .seconds(1) }) { harness in
            let started = ContinuousClock.now
            let partial = try await RawHTTP.send(
                "GET /contacts/1 HTTP/1.1\r\nHost:", port: harness.proxyPort, deadline: .seconds(20))
            #expect(partial.closedByServer)
            #expect(partial.text.isEmpty)
            let idle = try await RawHTTP.send(
                "GET /contacts/1 HTTP/1.1\r\nHost: p\r\n\r\n", port: harness.proxyPort, deadline: .seconds(20))
            #expect(idle.closedByServer, "an idle keep-alive connection is closed")
            #expect(RawHTTP.parse(idle.text).first?.status == 200)
            #expect(ContinuousClock.now - started < .seconds(15))
        }
    }

    /// A keep-alive connection whose exchange outlasted the idle timeout is still closed one idle timeout after its
    /// answer, not at the exchange's (much later) deadline.
    @Test func aSlowAnswerIsFollowedByTheIdleTimeoutNotTheRouteTimeout() async throws {
        try await ProxyHarness.run(configure: { $0.idleTimeout = .seconds(1) }) { harness in
            // A generous client deadline: on a loaded machine, the steps before the answer can take seconds.
            async let exchange = RawHTTP.send(
                "GET /slow/1 HTTP/1.1\r\nHost: p\r\n\r\n", port: harness.proxyPort, deadline: .seconds(30))
            #expect(try await eventually { harness.monolith.gate.arrived == 1 })
            // The exchange must outlast the idle timeout for the timer to have moved to the route's 30 s deadline.
            let arrived = ContinuousClock.now
            #expect(await eventually { ContinuousClock.now - arrived > .milliseconds(1500) })
            let opened = ContinuousClock.now
            harness.monolith.gate.open()
            let result = try await exchange
            #expect(RawHTTP.parse(result.text).first?.status == 200)
            #expect(result.closedByServer, "the idle connection stayed open after its slow answer")
            #expect(ContinuousClock.now - opened < .seconds(20), "the idle timeout (1 s), not the route's 30 s")
        }
    }

    /// An answer that comes before the request's body is read (here a 502: the upstream is down) closes the
    /// connection after it: the proxy does not wait for the rest of the body, and no byte of it can be taken
    /// for a next request.
    @Test func anEarlyAnswerClosesTheConnection() async throws {
        try await ProxyHarness.run { harness in
            let result = try await RawHTTP.send(
                "GET /dead HTTP/1.1\r\nHost: p\r\nContent-Length: 10\r\n\r\n01234", port: harness.proxyPort)
            let responses = RawHTTP.parse(result.text)
            #expect(responses.map(\.status) == [502])
            #expect(responses.first?.header("connection") == "close")
            #expect(result.closedByServer)
        }
    }

    @Test func oversizedHeadersAre431() async throws {
        try await ProxyHarness.run(configure: { $0.maxHeaderBytes = 4096 }) { harness in
            let big = String(repeating: "a", count: 5000)
            let result = try await RawHTTP.send(
                "GET /contacts/1 HTTP/1.1\r\nHost: p\r\nX-Big: \(big)\r\n\r\n", port: harness.proxyPort)
            #expect(RawHTTP.parse(result.text).first?.status == 431)
            #expect(result.closedByServer)
            let many = (0..<100).map { "X-H\($0): \(String(repeating: "b", count: 60))" }.joined(separator: "\r\n")
            let result2 = try await RawHTTP.send(
                "GET /contacts/1 HTTP/1.1\r\nHost: p\r\n\(many)\r\n\r\n", port: harness.proxyPort)
            #expect(RawHTTP.parse(result2.text).first?.status == 431)
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        try await ProxyHarness.run(configure: { $0.maxBodyBytes = 1000 }) { harness in
            let declared = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Length: 5000\r\n\r\n", port: harness.proxyPort)
            let answer = RawHTTP.parse(declared.text).first
            #expect(answer?.status == 413)
            #expect((json(answer?.body ?? "")["error"] as? [String: Any])?["code"] as? String == "payload_too_large")
            #expect(harness.service.seenPaths.withLockedValue { $0 }.isEmpty)
            // Chunked: discovered while streaming.
            let chunk = String(repeating: "y", count: 600)
            let chunked = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n"
                    + "\(chunk)\r\n0\r\n\r\n",
                port: harness.proxyPort)
            #expect(RawHTTP.parse(chunked.text).first?.status == 413 || chunked.closedByServer)
            #expect(chunked.closedByServer)
        }
    }

    /// Issue 17, finding 7: a client's own `Strangler-Dry-Run: 1` turned its write into a dry run the client was told
    /// succeeded. The header is the proxy's: a client sending it is refused, whatever its case.
    @Test(arguments: ["Strangler-Dry-Run: 1", "strangler-dry-run: 0", "STRANGLER-DRY-RUN:"])
    func aClientsDryRunHeaderIsRefused(header: String) async throws {
        try await ProxyHarness.run { harness in
            let result = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\n\(header)\r\nContent-Type: application/json\r\nContent-Length: "
                    + "2\r\n\r\n{}",
                port: harness.proxyPort)
            let answer = try #require(RawHTTP.parse(result.text).first)
            #expect(answer.status == 400)
            let error = json(answer.body)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "internal_header")
            #expect((error?["message"] as? String)?.contains("Strangler-Dry-Run") == true)
            #expect(result.closedByServer)
            #expect(
                harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty
                    && harness.service.seenPaths.withLockedValue { $0 }.isEmpty)
        }
    }

    /// Every other `Strangler-*` field of a client is dropped, from the answering request and from its shadow copy;
    /// names that only look alike pass.
    @Test func otherInternalHeadersNeverReachTheUpstreams() async throws {
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1) }, configure: { $0.noiseShare = 0 }
        ) { harness in
            let answer = try await RawHTTP.get(
                "/contacts/c1", port: harness.proxyPort,
                headers: [
                    "Strangler-Foo: 1", "strangler-route: contacts.get", "STRANGLER-SERVED-BY: service",
                    "X-Strangler-Actor: kept", "Stranglers: kept",
                ])
            #expect(answer.status == 200)
            #expect(
                try await eventually { harness.service.seenRequests.withLockedValue { $0.count } == 1 },
                "the request was not shadowed")
            for (side, upstream) in [("monolith", harness.monolith), ("service", harness.service)] {
                let headers = try #require(upstream.seenRequests.withLockedValue { $0.first?.headers })
                #expect(
                    headers.keys.filter { $0.hasPrefix("strangler-") }.isEmpty, "\(side) got \(headers.keys.sorted())")
                #expect(headers["x-strangler-actor"] == "kept" && headers["stranglers"] == "kept", "\(side)")
            }
        }
    }
}
