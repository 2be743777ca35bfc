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

extension ProxyHarness {
    /// The value of a gauge or counter line of `/metrics` (0 when absent).
    func metricValue(_ series: String) async throws -> Double {
        let text = try await self.admin("GET", "/metrics").body
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(series + " ") }) else { return 0 }
        return Double(line.split(separator: " ").last ?? "") ?? 0
    }
}

@Suite("Proxy: bounds on clients (connections, slow heads and bodies)", .timingSensitive)
struct ClientLimitsTests {
    /// Writes `text` one byte at a time, each spaced by `spacing` (waiting for the connection to close in between):
    /// returns when it closed, with the time from the first byte, or nil if all of `text` went out first.
    func dribble(_ text: String, on connection: RawConnection, spacing: Duration) async -> Duration? {
        let started = ContinuousClock.now
        for byte in text {
            await connection.write(String(byte))
            if await connection.waitForClose(within: spacing) { return ContinuousClock.now - started }
        }
        return nil
    }

    /// Issue 17, finding 6: one header byte at a time kept a connection open as long as the client liked, since
    /// each byte restarted the idle timer. The head now has one deadline, from its first byte.
    @Test func aHeadSentByteByByteIsCutAtItsDeadline() async throws {
        try await ProxyHarness.run(configure: {
            $0.headTimeout = .milliseconds(300)
            $0.idleTimeout = .seconds(60)
        }) { harness in
            let head =
                "GET /contacts/c1 HTTP/1.1\r\nHost: proxy.test\r\nX-Padding: \(String(repeating: "p", count: 40))\r\n"
                + "\r\n"
            // A first request's clock starts at the accept, which comes after the connect begins.
            let connecting = ContinuousClock.now
            let connection = try await RawConnection.open(port: harness.proxyPort)
            let elapsed = await self.dribble(head, on: connection, spacing: .milliseconds(100))
            #expect(elapsed != nil, "the whole head went out, a byte each 100 ms, and the connection stayed open")
            let cut = ContinuousClock.now - connecting
            // Bounds, not a measurement: at the head deadline, long before the idle timeout (60 s), on a loaded machine
            // too.
            #expect(cut >= .milliseconds(300) && cut < .seconds(30), "\(cut)")
            let answer = try #require(connection.responses.first)
            #expect(answer.status == 408)
            #expect(errorCode(answer) == "request_timeout")
            #expect(
                (json(answer.body)["error"] as? [String: Any])?["message"] as? String
                    == "the request head did not arrive whole within 300ms")
            #expect(answer.header("connection") == "close")
            #expect(harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty)
            #expect(try await harness.metricValue(#"strangler_client_timeouts_total{kind="head"}"#) == 1)
        }
    }

    /// On a keep-alive connection, a next head's clock starts at its first byte, not at the previous answer; and an
    /// idle connection is left to the idle timeout.
    @Test func aNextHeadsClockStartsAtItsFirstByte() async throws {
        // 1 s, not less: the first request's clock starts at the accept, and on a loaded machine the client's first
        // bytes can come a few hundred milliseconds after it.
        try await ProxyHarness.run(configure: {
            $0.headTimeout = .seconds(1)
            $0.idleTimeout = .seconds(10)
        }) { harness in
            let connection = try await RawConnection.open(
                port: harness.proxyPort, first: "GET /contacts/c1 HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
            #expect(await connection.waitForResponses(1).first?.status == 200)
            // Idle past the head timeout: still open (the idle timeout is the rule between requests).
            #expect(await !connection.waitForClose(within: .milliseconds(1500)))
            let elapsed = await self.dribble(
                "GET /contacts/c2 HTTP/1.1\r\nHost: proxy.test\r\n\r\n", on: connection, spacing: .milliseconds(200))
            let cut = try #require(elapsed)
            #expect(cut >= .seconds(1), "cut \(cut) after the head's first byte")
            #expect(connection.responses.map(\.status) == [200, 408])
        }
    }

    /// A body that trickles in slower than the least rate is cut with a 408 (a slow upstream holding reads is not
    /// counted against the client; the route's own, longer timeout would come much later).
    @Test func aBodyBelowTheLeastRateIsCut() async throws {
        try await ProxyHarness.run(configure: {
            $0.minBodyRate = 1000
            $0.bodyRateWindow = .milliseconds(300)
            $0.idleTimeout = .seconds(10)
        }) { harness in
            let connection = try await RawConnection.open(port: harness.proxyPort)
            await connection.write(
                "POST /contacts HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\nContent-Length: "
                    + "100000\r\n\r\n"
            )
            var cut = false
            // 10 bytes every 50 ms: 200 bytes/s, for 5 s at most.
            for _ in 0..<100 where !cut {
                await connection.write(String(repeating: " ", count: 10))
                cut = await connection.waitForClose(within: .milliseconds(50))
            }
            #expect(cut, "the connection stayed open")
            let answer = try #require(connection.responses.first)
            #expect(answer.status == 408)
            #expect(errorCode(answer) == "request_timeout")
            #expect((json(answer.body)["error"] as? [String: Any])?["route"] as? String == "contacts.create")
            #expect(try await harness.metricValue(#"strangler_client_timeouts_total{kind="body"}"#) == 1)
        }
    }

    /// Runs the proxy with one route, `POST /upload`, to a `HeldOrigin` (see its `holding` and `early`), by default
    /// with a least body rate of 1000 bytes/s over windows of 300 ms.
    func withUploadRoute(
        holding: Bool, early: Bool = false,
        configure: @escaping (inout ProxyConfiguration) -> Void = {
            $0.minBodyRate = 1000
            $0.bodyRateWindow = .milliseconds(300)
            $0.maxBodyBytes = 64 * 1024 * 1024
        },
        _ body: (ProxyHarness, HeldOrigin) async throws -> Void
    ) async throws {
        let origin = try await HeldOrigin.start(holding: holding, early: early)
        let routes = { (monolith: Int, _: Int) in
            """
            { "monolith": "http://127.0.0.1:\(monolith)", "services": { "held": "http://127.0.0.1:\(origin.port)" },
              "routes": [ { "id": "upload", "method": "POST", "path": "/upload", "service": "held", "stage": \
            "eliminate" } ] }
            """
        }
        try await ProxyHarness.run(routes: routes, configure: configure) { harness in
            try await body(harness, origin)
        }
        await origin.stop()
    }

    /// The rest of a body whose answer already went out is passed over, not waited for: within the head timeout and
    /// 1 MiB, past which the connection closes (a client trickling a body nobody reads must not keep its connection).
    @Test func aBodyNobodyWaitsForIsNotReadForever() async throws {
        try await self.withUploadRoute(
            holding: false, early: true,
            configure: {
                $0.minBodyRate = 0
                // The first head's clock starts when the connection is accepted (as nginx's client_header_timeout
                // does): 2 s, not less, so that a test task descheduled between its connect and its write on a loaded
                // machine does not meet a 408 before its head is even sent (seen once with 500 ms).
                $0.headTimeout = .seconds(2)
                $0.idleTimeout = .seconds(30)
            }
        ) { harness, _ in
            // Trickled: cut at the lingering deadline, long before the idle timeout.
            // The head is written as the connection comes up (on the event loop): its clock starts at the accept.
            let slow = try await RawConnection.open(
                port: harness.proxyPort,
                first: "POST /upload HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 100000\r\n\r\n0123456789")
            let answers = await slow.waitForResponses(1)
            #expect(answers.first?.status == 413)
            let started = ContinuousClock.now
            var cut = false
            for _ in 0..<200 where !cut {
                await slow.write("0123456789")
                cut = await slow.waitForClose(within: .milliseconds(50))
            }
            #expect(cut, "the connection stayed open while the body trickled")
            #expect(ContinuousClock.now - started < .seconds(15))
            // Flooded: cut past 1 MiB.
            let fast = try await RawConnection.open(
                port: harness.proxyPort,
                first: "POST /upload HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 100000000\r\n\r\n")
            #expect(await fast.waitForResponses(1).first?.status == 413)
            let chunk = String(repeating: "x", count: 64 * 1024)
            var closed = false
            for _ in 0..<40 where !closed {
                await fast.write(chunk)
                closed = await fast.waitForClose(within: .milliseconds(10))
            }
            #expect(
                await fast.waitForClose(within: .seconds(20)),
                "the connection read more than 1 MiB of a body nobody reads")
        }
    }

    /// A body held back by the proxy itself (its upstream reads nothing, so the proxy stops reading the client) is not
    /// the client's slowness: the windows in which reads were held are not judged, and the request goes through.
    @Test func aBodyHeldBackByASlowUpstreamIsNotCut() async throws {
        try await self.withUploadRoute(holding: true) { harness, origin in
            let size = 24 * 1024 * 1024
            let connection = try await RawConnection.open(port: harness.proxyPort)
            // The write completes only as the proxy reads: it runs on while the test waits.
            async let sent: Void = connection.write(
                "POST /upload HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: \(size)\r\n\r\n"
                    + String(repeating: "b", count: size))
            // Several windows pass with the origin reading nothing: the proxy holds its reads, and must not cut the
            // client.
            #expect(await !connection.waitForClose(within: .seconds(2)), "\(connection.text)")
            #expect(origin.receivedBytes == 0)
            origin.release()
            // 24 MiB through a debug build: generous, for a loaded machine (it returns as soon as the answer is in).
            let answers = await connection.waitForResponses(1, within: .seconds(120))
            #expect(answers.first?.status == 200, "\(connection.text)")
            await sent
            #expect(try await harness.metricValue(#"strangler_client_timeouts_total{kind="body"}"#) == 0)
            await connection.close()
        }
    }

    /// A client that sends `Expect: 100-continue` waits for the interim answer before its body: the proxy answers
    /// it at once (as nginx and Envoy do), and the body's rate counts from there.
    @Test func aBodyAwaitingContinueIsNotCutWhileItWaits() async throws {
        // A window far longer than the test's own pause between the interim answer and its body: on a loaded machine
        // that pause alone can outlast a short one, and the cut would be right.
        let configure: (inout ProxyConfiguration) -> Void = {
            $0.minBodyRate = 1000
            $0.bodyRateWindow = .seconds(10)
        }
        try await self.withUploadRoute(holding: false, configure: configure) { harness, _ in
            let connection = try await RawConnection.open(port: harness.proxyPort)
            await connection.write(
                "POST /upload HTTP/1.1\r\nHost: proxy.test\r\nExpect: 100-continue\r\nContent-Length: 4000\r\n\r\n")
            #expect(
                await eventually { connection.text.hasPrefix("HTTP/1.1 100 Continue\r\n\r\n") }, "\(connection.text)")
            await connection.write(String(repeating: "b", count: 4000))
            #expect(await connection.waitForResponses(2).last?.status == 200, "\(connection.text)")
            await connection.close()
        }
    }

    /// Opens `count` kept-alive connections to `port`, each answered 200 to `request` once (so each is admitted and
    /// open).
    func openAnswered(_ count: Int, port: Int, request: String) async throws -> [RawConnection] {
        var connections: [RawConnection] = []
        for _ in 0..<count {
            let connection = try await RawConnection.open(port: port)
            await connection.write(request)
            #expect(await connection.waitForResponses(1).first?.status == 200)
            connections.append(connection)
        }
        return connections
    }

    /// Issue 17, finding 6: idle connections took every file descriptor. Over the cap, a connection is closed at
    /// once while the admitted ones go on, and the admin API (its own cap) still answers.
    @Test func overTheCapAConnectionIsClosedAtOnce() async throws {
        try await ProxyHarness.run(configure: { $0.maxConnections = 3 }) { harness in
            #expect(harness.proxy.maxConnections == 3)
            let admitted = try await self.openAnswered(
                3, port: harness.proxyPort, request: "GET /contacts/c1 HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
            let refused = try await RawConnection.open(port: harness.proxyPort)
            await refused.write("GET /contacts/c1 HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
            #expect(await refused.waitForClose(within: .seconds(20)), "the connection over the cap was kept")
            #expect(refused.text.isEmpty, "nothing is answered over the cap: \(refused.text)")
            // The admin API answers while the data plane is at its cap.
            #expect(try await harness.admin("GET", "/admin/status").status == 200)
            #expect(try await harness.metricValue(#"strangler_refused_connections_total{listener="proxy"}"#) == 1)
            #expect(try await harness.metricValue(#"strangler_open_connections{listener="proxy"}"#) == 3)
            for connection in admitted {
                await connection.write("GET /contacts/c2 HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
                #expect(
                    await connection.waitForResponses(2).map(\.status) == [200, 200],
                    "an admitted connection stopped working")
            }
            // A closed connection frees its place.
            await admitted[0].close()
            #expect(
                try await eventually {
                    try await harness.metricValue(#"strangler_open_connections{listener="proxy"}"#) == 2
                })
            let next = try await RawConnection.open(port: harness.proxyPort)
            await next.write("GET /contacts/c3 HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
            #expect(await next.waitForResponses(1).first?.status == 200)
            for connection in admitted + [next] { await connection.close() }
        }
    }

    /// The admin API's own cap: a flood of admin connections is refused there and takes nothing from the data plane.
    @Test func theAdminAPIHasItsOwnCap() async throws {
        try await ProxyHarness.run(configure: {
            $0.adminMaxConnections = 2
            $0.maxConnections = 2
        }) { harness in
            let held = try await self.openAnswered(
                2, port: harness.adminPort,
                request:
                    "GET /admin/status HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer \(ProxyHarness.token)\r\n\r\n")
            let refused = try await RawConnection.open(port: harness.adminPort)
            #expect(await refused.waitForClose(within: .seconds(20)), "the admin connection over its cap was kept")
            #expect(refused.text.isEmpty)
            // The data plane's two places are untouched by the admin's.
            for path in ["/contacts/c1", "/contacts/c2"] {
                #expect(try await RawHTTP.get(path, port: harness.proxyPort).status == 200)
            }
            await held[0].close()
            // Until the proxy sees that close, a new admin connection is still over the cap (and closed at once).
            #expect(await eventually { (try? await harness.admin("GET", "/admin/status"))?.status == 200 })
            for connection in held { await connection.close() }
            // Each read of /metrics is an admin connection too, and the one before it (closed by the proxy once
            // answered) may not be counted out yet: at the cap of 2, a read can be refused, and is tried again.
            // At least the one refused above (the retries may add more).
            let adminRefused = try await self.admittedMetricValue(
                harness, #"strangler_refused_connections_total{listener="admin"}"#)
            #expect(adminRefused >= 1)
            #expect(
                try await self.admittedMetricValue(harness, #"strangler_refused_connections_total{listener="proxy"}"#)
                    == 0)
        }
    }

    /// `metricValue`, tried again while the admin API closes the read's connection unanswered (over its cap).
    func admittedMetricValue(
        _ harness: ProxyHarness, _ series: String, within timeout: Duration = .seconds(20)
    ) async throws -> Double {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                return try await harness.metricValue(series)
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test func theDefaultCapFollowsTheFileDescriptorLimit() throws {
        #expect(
            FileDescriptorLimit.defaultMaxConnections(softLimit: 1024, adminMaxConnections: 64, maxShadowsInFlight: 256)
                == 224)
        #expect(
            FileDescriptorLimit.defaultMaxConnections(
                softLimit: 65536, adminMaxConnections: 64, maxShadowsInFlight: 256) == 32480)
        #expect(
            FileDescriptorLimit.defaultMaxConnections(softLimit: 256, adminMaxConnections: 64, maxShadowsInFlight: 256)
                == 16)
        let limit = try #require(FileDescriptorLimit.current())
        #expect(limit.soft <= limit.hard)
        #expect(
            ProxyConfiguration().effectiveMaxConnections
                == FileDescriptorLimit.defaultMaxConnections(
                    softLimit: limit.soft, adminMaxConnections: 64, maxShadowsInFlight: 256))
    }
}
