import AdminAPI
import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import ServiceLifecycle
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

@Suite("Proxy: hot reload")
struct ProxyHotReloadTests {
    @Test func aValidEditGoesLive() async throws {
        try await ProxyHarness.run { harness in
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "monolith")
            try ProxyHarness.routes(monolith: harness.monolithPort, service: harness.servicePort, stage: "eliminate")
                .write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(
                try await eventually(within: .seconds(20)) {
                    try await harness.upstreamAnswering("/contacts/con_1") == "service"
                })
            #expect(harness.proxy.store.snapshot.version == 2)
        }
    }

    @Test func anInvalidEditIsRefusedAndTheLastGoodTableStays() async throws {
        try await ProxyHarness.run(stage: "eliminate") { harness in
            let bad = ProxyHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "transfrom")
            try bad.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(await eventually { await harness.proxy.control.lastReloadFailure != nil })
            let status = json(try await harness.admin("GET", "/admin/status").body)
            let error = status["lastReloadError"] as? [String: Any]
            #expect((error?["message"] as? String)?.contains(#"$.routes[0].stage: unknown stage "transfrom""#) == true)
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "service")
            #expect(harness.proxy.store.snapshot.version == 1)
        }
    }

    @Test func aHalfWrittenFileIsRefusedUntilItIsComplete() async throws {
        try await ProxyHarness.run { harness in
            let full = ProxyHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "eliminate")
            // Written in place, as an editor without atomic saves would: first half, then the rest.
            let handle = try #require(FileHandle(forWritingAtPath: harness.routesPath))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(full.utf8.prefix(full.utf8.count / 2)))
            try handle.synchronize()
            #expect(
                await eventually {
                    await harness.proxy.control.lastReloadFailure?.message.contains("not valid JSON") == true
                })
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "monolith")
            try handle.write(contentsOf: Data(full.utf8.dropFirst(full.utf8.count / 2)))
            try handle.close()
            #expect(try await eventually { try await harness.upstreamAnswering("/contacts/con_1") == "service" })
            #expect(await harness.proxy.control.lastReloadFailure == nil)
        }
    }

    /// A request that started on the old table finishes on it, even though the table changes under it.
    @Test func aRequestInFlightDuringASwapCompletesOnItsTable() async throws {
        try await ProxyHarness.run { harness in
            async let slow = RawHTTP.get("/slow/1", port: harness.proxyPort)
            #expect(await eventually { harness.monolith.gate.arrived == 1 })
            let text = ProxyHarness.routes(monolith: harness.monolithPort, service: harness.servicePort)
                .replacingOccurrences(
                    of: #""path": "/slow/{id}", "service": "contacts", "stage": "transform""#,
                    with: #""path": "/slow/{id}", "service": "contacts", "stage": "eliminate""#)
            try text.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(await eventually { harness.proxy.store.snapshot.version == 2 })
            harness.monolith.gate.open()
            harness.service.gate.open()
            let answer = try await slow
            #expect(json(answer.body)["upstream"] as? String == "monolith")
            #expect(try await harness.upstreamAnswering("/slow/2") == "service")
        }
    }
}

@Suite("Proxy: admin API")
struct ProxyAdminTests {
    @Test func everyCallNeedsTheToken() async throws {
        try await ProxyHarness.run { harness in
            for path in ["/admin/routes", "/admin/status", "/metrics"] {
                let none = try await harness.admin("GET", path, token: nil)
                #expect(none.status == 401, "\(path)")
                #expect(none.header("www-authenticate") == "Bearer")
                #expect(try await harness.admin("GET", path, token: "wrong").status == 401)
                #expect(try await harness.admin("GET", path).status == 200)
            }
            #expect(
                try await harness.admin(
                    "POST", "/admin/routes/contacts.get/stage", token: "nope", body: #"{"stage":"coexist"}"#
                ).status == 401)
        }
    }

    @Test func stageChangesNeedAFreshETagAndAreWrittenAndAudited() async throws {
        try await ProxyHarness.run { harness in
            let read = try await harness.admin("GET", "/admin/routes")
            let etag = try #require(read.header("etag"))
            #expect(json(read.body)["version"] as? Int == 1)

            let missing = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", body: #"{"stage":"eliminate","reason":"test"}"#)
            #expect(missing.status == 428)

            let moved = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", headers: ["If-Match: \(etag)", "X-Strangler-Actor: alice"],
                body: #"{"stage":"eliminate","reason":"service ready","force":true}"#)
            #expect(moved.status == 200, "\(moved.body)")
            let newETag = try #require(moved.header("etag"))
            #expect(newETag != etag)
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "service")

            // The file on disk is the new table, and still valid.
            let onDisk = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            #expect(onDisk.contains(#""stage": "eliminate""#))
            #expect(harness.proxy.store.snapshot.text == onDisk)

            // A second operator with the old ETag is refused.
            let stale = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", headers: ["If-Match: \(etag)"],
                body: #"{"stage":"transform"}"#)
            #expect(stale.status == 412)
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "service")

            let audit = try String(contentsOfFile: harness.auditPath, encoding: .utf8).split(separator: "\n")
            #expect(audit.count == 1)
            let entry = json(String(audit[0]))
            #expect(entry["actor"] as? String == "alice")
            #expect(entry["reason"] as? String == "service ready")
            #expect(entry["route"] as? String == "contacts.get")
            #expect(entry["from"] as? String == "transform" && entry["to"] as? String == "eliminate")
            #expect(entry["before"] is [String: Any] && entry["after"] is [String: Any])
            #expect(entry["time"] is String)

            let unknown = try await harness.admin(
                "POST", "/admin/routes/nope/stage", headers: ["If-Match: \(newETag)"], body: #"{"stage":"coexist"}"#)
            #expect(unknown.status == 404)
            let badStage = try await harness.admin(
                "POST", "/admin/routes/contacts.get/stage", headers: ["If-Match: \(newETag)"],
                body: #"{"stage":"gone"}"#)
            #expect(badStage.status == 422)
        }
    }

    @Test func putReplacesTheTableOnlyWhenValidAndFresh() async throws {
        try await ProxyHarness.run { harness in
            let etag = try #require(try await harness.admin("GET", "/admin/routes").header("etag"))
            let invalid = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(etag)"],
                body: #"{"monolith":"http://x:1","routes":[{"id":"a"}]}"#)
            #expect(invalid.status == 422)
            let problems = json(invalid.body)["error"] as? [String: Any]
            #expect(
                (problems?["problems"] as? [[String: Any]])?.contains { $0["path"] as? String == "$.routes[0].method" }
                    == true)
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)

            let stale = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \"0000000000000000\""], body: before)
            #expect(stale.status == 412)

            let table = ProxyHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "eliminate")
            // Moving contacts.get from transform to eliminate has no evidence behind it: refused by the gates, unless
            // forced.
            let gated = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(etag)", "X-Strangler-Reason: cut over"], body: table)
            #expect(gated.status == 409)
            let replaced = try await harness.admin(
                "PUT", "/admin/routes?force=true", headers: ["If-Match: \(etag)", "X-Strangler-Reason: cut over"],
                body: table)
            #expect(replaced.status == 200)
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == table)
            #expect(try await harness.upstreamAnswering("/contacts/con_1") == "service")
            let audit = try String(contentsOfFile: harness.auditPath, encoding: .utf8)
            #expect(audit.contains(#""reason":"cut over""#) && audit.contains(#""forced":true"#))
        }
    }

    @Test func metricsCountRequestsByRouteStageUpstreamAndStatus() async throws {
        try await ProxyHarness.run { harness in
            _ = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort)
            _ = try await RawHTTP.get("/dead", port: harness.proxyPort)
            let metrics = try await harness.admin("GET", "/metrics")
            #expect(metrics.header("content-type")?.hasPrefix("text/plain") == true)
            #expect(
                metrics.body.contains(
                    #"strangler_requests_total{route="contacts.get",stage="transform",side="monolith","#
                        + #"upstream="http://127.0.0.1:\#(harness.monolithPort)",status="2xx"} 1"#
                ))
            #expect(metrics.body.contains("strangler_request_duration_seconds_bucket"))
            #expect(metrics.body.contains(#"strangler_upstream_errors_total{route="dead.get""#))
        }
    }
}

@Suite("Proxy: graceful shutdown")
struct ProxyShutdownTests {
    /// Whether a new connection to `port` is turned away: refused, or closed by the proxy with no answer (accepted just
    /// before the listener closed). An answered probe is not, nor one that ran out of time on this side.
    static func isTurnedAway(port: Int) async -> Bool {
        do {
            let result = try await RawHTTP.send(
                "GET /contacts/1 HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n", port: port)
            return result.closedByServer && RawHTTP.parse(result.text).isEmpty
        } catch {
            return true  // refused, or closed before the request could be written
        }
    }

    @Test func sigtermDrainsInFlightRequestsThenStops() async throws {
        let logger = Logger(label: "test")
        let monolith = TestUpstream(name: "monolith")
        let (app, monolithPort) = ProxyHarness.makeApp(monolith, logger: logger)
        let upstreams = ServiceGroup(services: [app], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            let port = await monolithPort.value
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strangler-drain-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let routes = directory.appendingPathComponent("routes.json").path
            // The stalled request's route waits 120 s, not the default 30 s: every wait below is an upper bound, and on
            // a loaded machine their sum has passed 30 s (the proxy then answered the stalled request 504 itself).
            let text = ProxyHarness.routes(monolith: port, service: port).replacingOccurrences(
                of: #""path": "/slow/{id}", "service": "contacts", "stage": "transform""#,
                with: #""path": "/slow/{id}", "service": "contacts", "stage": "transform", "timeout": "120s""#)
            #expect(text.contains(#""timeout": "120s""#))
            try text.write(toFile: routes, atomically: true, encoding: .utf8)
            var configuration = ProxyConfiguration()
            configuration.port = 0
            configuration.adminPort = 0
            configuration.routesPath = routes
            configuration.dataDirectory = directory.path
            configuration.adminToken = "t"
            let proxy = try ProxyApplication(configuration: configuration, logger: logger)
            // The process's one group (SIGTERM there triggers the same graceful shutdown as below).
            let serviceGroup = proxy.makeServiceGroup()
            let stopped = NIOLockedValueBox(false)
            group.addTask {
                try await proxy.run(serviceGroup)
                stopped.withLockedValue { $0 = true }
            }
            let ports = await proxy.listeningPorts()
            // The request in flight must outlast every step below however loaded the machine (its client deadline
            // is an upper bound: a deadline that passed would close the connection from this side, not the proxy).
            async let inFlight = RawHTTP.get("/slow/1", port: ports.proxy, deadline: .seconds(90))
            #expect(await eventually(within: .seconds(30)) { monolith.gate.arrived == 1 })
            await serviceGroup.triggerGracefulShutdown()
            // New connections are turned away once draining has begun (the services after the data plane stop first,
            // so the first probes may still be answered), while the request in flight goes on.
            #expect(await eventually(within: .seconds(30)) { await Self.isTurnedAway(port: ports.proxy) })
            #expect(!stopped.withLockedValue { $0 })
            monolith.gate.open()
            let answer = try await inFlight
            #expect(answer.status == 200)
            #expect(json(answer.body)["upstream"] as? String == "monolith")
            #expect(await eventually(within: .seconds(30)) { stopped.withLockedValue { $0 } })
            await upstreams.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
