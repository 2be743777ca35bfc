import ArgumentParser
import Foundation
import Gateway
import JSON
import Logging
import NIOConcurrencyHelpers
import Proxy
import ProxyTestSupport
import RouteTable
import ServiceKit
import ServiceLifecycle
import Testing

@testable import StranglerCommands

/// A whole migration in front of an application that is not the demo: `init` from its OpenAPI document, coexist,
/// report, triage, promote to eliminate and back, for one read and one write route, with no probe declared and never
/// `--force`.
@Suite("Your own monolith: from init to eliminate and back")
struct OwnMonolithMigrationTests {
    static let openapi = """
        openapi: 3.0.3
        info: { title: Orders, version: "1" }
        paths:
          /orders:
            get: { operationId: orders.list, tags: [orders] }
            post: { operationId: orders.create, tags: [orders] }
          /orders/{id}:
            get: { operationId: orders.get, tags: [orders] }
        """

    /// The two apps, then the proxy on the table `init` wrote (gates and write shadowing set as a team would).
    struct Stack {
        let monolith: OrdersApp
        let service: OrdersApp
        let folder: URL
        let proxy: ProxyApplication
        let proxyPort: Int
        let adminPort: Int
        var routesPath: String { self.folder.appendingPathComponent("routes.json").path }
        var dataDirectory: String { self.folder.appendingPathComponent("data").path }
        var tokenFile: String { self.folder.appendingPathComponent("token").path }
        var cli: [String] { self.admin + ["--actor", "ops"] }
        var admin: [String] { ["--admin", "http://127.0.0.1:\(self.adminPort)", "--token-file", self.tokenFile] }

        func get(_ path: String) async throws -> RawResponse {
            try await RawHTTP.get(path, port: self.proxyPort, headers: ["Accept-Encoding: gzip"])
        }

        func post(_ body: String) async throws -> RawResponse {
            let text =
                "POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Type: application/json\r\nContent-Length: "
                + "\(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            return try #require(RawHTTP.parse(try await RawHTTP.send(text, port: self.proxyPort).text).first)
        }
    }

    static func run(_ body: (Stack) async throws -> Void) async throws {
        let logger = Logger(label: "own-monolith")
        let monolith = OrdersApp(name: "monolith", paging: .linkHeader)
        let service = OrdersApp(name: "service", paging: .cursorField, gzip: true)
        monolith.peer.withLockedValue { $0 = service }
        service.peer.withLockedValue { $0 = monolith }
        service.clockSkew.withLockedValue { $0 = true }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("own-monolith-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try ProxyHarness.token.write(
            to: folder.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        let (monolithApp, monolithPort) = monolith.service(logger: logger)
        let (serviceApp, servicePort) = service.service(logger: logger)
        let apps = ServiceGroup(services: [monolithApp, serviceApp], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await apps.run() }
            let spec = folder.appendingPathComponent("openapi.yaml").path
            try Self.openapi.write(toFile: spec, atomically: true, encoding: .utf8)
            let routesPath = folder.appendingPathComponent("routes.json").path
            var failure: (any Error)?
            do {
                try
                    (try Strangler.parseAsRoot([
                        "init", "--openapi", spec, "--monolith", "http://127.0.0.1:\(await monolithPort.value)",
                        "--service", "orders=http://127.0.0.1:\(await servicePort.value)", "--no-probes", "--out",
                        routesPath,
                    ]) as! InitCommand).run()
                // What the team sets before it starts: evidence it finds enough, and writes shadowed as dry runs.
                var table = try JSONParser.parse(try String(contentsOfFile: routesPath, encoding: .utf8))
                table = Self.setting(
                    "gates", to: try JSONParser.parse(#"{"eliminate": {"minSamples": 20, "minMatchRate": 0.8}}"#),
                    in: table)
                table = Self.settingShadow(
                    of: "orders.create", to: try JSONParser.parse(#"{"writes": "dry-run"}"#), in: table)
                try table.prettyJSONText.write(toFile: routesPath, atomically: true, encoding: .utf8)

                var configuration = ProxyConfiguration.testing(
                    routesPath: routesPath, dataDirectory: folder.appendingPathComponent("data").path,
                    token: ProxyHarness.token)
                configuration.recordInterval = .milliseconds(50)
                let proxy = try ProxyApplication(configuration: configuration, logger: logger)
                let proxyGroup = proxy.makeServiceGroup()
                group.addTask { try await proxy.run(proxyGroup) }
                let ports = await proxy.listeningPorts()
                do {
                    try await body(
                        Stack(
                            monolith: monolith, service: service, folder: folder, proxy: proxy, proxyPort: ports.proxy,
                            adminPort: ports.admin))
                } catch {
                    failure = error
                }
                await proxyGroup.triggerGracefulShutdown()
            } catch {
                failure = error
            }
            await apps.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    static func settingShadow(of id: String, to shadow: JSONValue, in table: JSONValue) -> JSONValue {
        let routes = (table["routes"]?.arrayValue ?? []).map { route -> JSONValue in
            guard route["id"]?.stringValue == id else { return route }
            return Self.setting("shadow", to: shadow, in: route)
        }
        return Self.setting("routes", to: .array(routes), in: table)
    }

    static func setting(_ key: String, to value: JSONValue, in table: JSONValue) -> JSONValue {
        var members = table.objectValue ?? []
        members.removeAll { $0.key == key }
        members.append((key, value))
        return .object(members)
    }

    /// The route's mismatch signature ids by text, from the admin API.
    static func signatures(_ stack: Stack, _ route: String) async throws -> [String: String] {
        let summary = try await stack.admin("GET", "/admin/diffs?route=\(route)")
        var found: [String: String] = [:]
        for signature in jsonValue(summary.body)["routes"]?.at(0)?["signatures"]?.arrayValue ?? [] {
            if let text = signature["signature"]?.stringValue, let id = signature["id"]?.stringValue {
                found[text] = id
            }
        }
        return found
    }

    @Test func aReadAndAWriteRouteGoFromInitToEliminateAndBackWithoutForce() async throws {
        try await Self.run { stack in
            // Coexist: no health or sync-lag probe is declared, so those gates are not measured, and say so.
            for route in ["orders.get", "orders.create"] {
                let moved = try await command(["stage", route, "coexist", "--reason", "start shadowing"] + stack.cli)
                #expect(moved.status == 0, "\(moved.error)")
                #expect(moved.output.contains("\(route): not measured: no health probe declared for orders"))
                #expect(moved.output.contains("\(route): not measured: no syncLag probe declared for orders"))
            }

            // Shadow traffic: the service answers gzip and its clock runs a minute ahead.
            for round in 0..<6 {
                for id in 1...5 {
                    let answer = try await stack.get("/orders/\(id)")
                    #expect(answer.status == 200 && answer.body.contains(#""id":\#(id)"#), "\(round): \(answer.body)")
                }
            }
            for id in 100..<120 {
                let created = try await stack.post(#"{"id":\#(id),"item":"new","total":\#(id)}"#)
                #expect(created.status == 201, "\(created.body)")
            }
            _ = try await eventually {
                let get = try await stack.diffs("orders.get")
                let create = try await stack.diffs("orders.create")
                return get["compared"]?.numberValue == 30 && create["compared"]?.numberValue == 20
            }
            let readSignatures = try await Self.signatures(stack, "orders.get")
            // gzip on one side only is not a difference: the one signature is the clock.
            #expect(Array(readSignatures.keys) == ["/updatedAt changed"], "\(readSignatures)")

            // The report shows why the read route is not ready, and what is not measured.
            let report = try await command(["report"] + stack.cli)
            #expect(report.status == 0, "\(report.error)")
            #expect(report.output.contains("1 untriaged mismatch signature"), "\(report.output)")
            #expect(report.output.contains("not measured: no entities declared for orders to reconcile"))
            #expect(
                report.output.contains("lag not measured (no syncLag probe); health not measured"), "\(report.output)")

            // Triage: the clock skew is noise. Ignoring it explains what was kept, and the match rate follows.
            for route in ["orders.get", "orders.create"] {
                let id = try #require(try await Self.signatures(stack, route)["/updatedAt changed"])
                let triaged = try await command(
                    ["triage", route, id, "--ignore", "--reason", "the service's clock runs ahead"] + stack.cli)
                #expect(triaged.status == 0, "\(triaged.error)")
                #expect(triaged.output.contains("shadow.ignore += /updatedAt"), "\(triaged.output)")
                #expect(triaged.output.contains("\(route): match rate 0.00% → 100.00%"), "\(triaged.output)")
            }

            // Eliminate, on the evidence: the gates without a probe say so and do not block.
            let promoted = try await command(["promote", "orders.get", "--reason", "30 of 30 explained"] + stack.cli)
            #expect(promoted.status == 0, "\(promoted.error)")
            #expect(promoted.output.contains("orders.get: coexist → eliminate"))
            #expect(promoted.output.contains("not measured: no entities declared for orders to reconcile"))
            let before = stack.monolith.seenPaths.withLockedValue { $0.count }
            let answered = try await stack.get("/orders/2")
            #expect(answered.status == 200 && answered.header("content-encoding") == "gzip")
            #expect(stack.monolith.seenPaths.withLockedValue { $0.count } == before, "the monolith is not asked")

            let write = try await command(["promote", "orders.create", "--reason", "dry runs match"] + stack.cli)
            #expect(write.status == 0, "\(write.error)")
            #expect(write.output.contains("not measured: no reverseSync probe declared for orders"), "\(write.output)")
            let created = try await stack.post(#"{"id":20,"item":"after","total":5}"#)
            #expect(created.status == 201)
            #expect(stack.monolith.orders.withLockedValue { $0[20] } != nil, "the service's write reached the monolith")

            // And back, without --force: the rollback gate has no reverse-sync probe to measure.
            let back = try await command(["rollback", "orders.create", "--reason", "rehearsal"] + stack.cli)
            #expect(back.status == 0, "\(back.error)")
            #expect(back.output.contains("orders.create: eliminate → coexist"))
            let readBack = try await command(["rollback", "orders.get", "--reason", "rehearsal"] + stack.cli)
            #expect(readBack.status == 0, "\(readBack.error)")
            let history = try await command(["history"] + stack.cli)
            #expect(history.output.components(separatedBy: "\n").filter { $0.contains("forced") }.isEmpty)
            #expect(!history.output.contains("FORCED"))
        }
    }

    @Test func routesAreSuggestedFromTheTrafficNoRouteMatched() async throws {
        try await Self.run { stack in
            for path in [
                "/orders/3/items", "/orders/4/items", "/orders/3f2a9c1e-1b2c-4d5e-8f90-123456789abc/items", "/health",
            ] {
                _ = try await stack.get(path)
            }
            _ = try await stack.get("/orders/1")  // routed: not counted
            let listed = try await command(["routes", "suggest"] + stack.admin)
            #expect(listed.status == 0, "\(listed.error)")
            let lines = listed.output.components(separatedBy: "\n")
            #expect(
                lines.contains {
                    $0.hasPrefix("get.orders.id.items") && $0.contains("/orders/{id}/items") && $0.contains(" 3 ")
                }, "\(listed.output)")
            #expect(lines.contains { $0.hasPrefix("get.health") && $0.contains(" 1 ") })
            #expect(!listed.output.contains("/orders/{id} "), "a routed request is not unmatched")
            #expect(listed.output.contains("add them with: strangler routes suggest --apply --admin"))

            let applied = try await command(
                ["routes", "suggest", "--apply", "--min-count", "2", "--reason", "items are a real endpoint"]
                    + stack.admin)
            #expect(applied.status == 0, "\(applied.error)")
            #expect(applied.output.contains("added 1 route in transform"), "\(applied.output)")
            #expect(applied.output.contains("seen 1×, under --min-count 2"))
            let table = stack.proxy.store.snapshot.table
            #expect(table.route(id: "get.orders.id.items")?.path.description == "/orders/{id}/items")
            #expect(table.route(id: "get.orders.id.items")?.stage == .transform)

            let again = try await command(["routes", "suggest", "--output", "json"] + stack.admin)
            let items = try JSONParser.parse(again.output).arrayValue?.first {
                $0["path"]?.stringValue == "/orders/{id}/items"
            }
            #expect(items?["skipped"]?.stringValue == "routed by now (get.orders.id.items)", "\(again.output)")
            #expect(throws: (any Error).self) { _ = try Strangler.parseAsRoot(["routes", "orders.get", "--apply"]) }
        }
    }

    @Test func recordThenReplayRoundTripsAHAR() async throws {
        try await Self.run { stack in
            let file = stack.folder.appendingPathComponent("orders.har").path
            let recording = Task {
                try await command(["record", "--route", "orders.*", "--out", file, "--limit", "3"] + stack.admin)
            }
            // Traffic until the recording has its three (it may start listening after the first requests).
            let finished = try await eventually(within: .seconds(60)) {
                _ = try await RawHTTP.get(
                    "/orders/2?view=full", port: stack.proxyPort, headers: ["Authorization: Bearer s3cret-token"])
                return FileManager.default.fileExists(atPath: file)
            }
            #expect(finished)
            let recorded = try await recording.value
            #expect(recorded.status == 0, "\(recorded.error)")
            #expect(recorded.output.contains("3 exchanges of orders.* recorded (redacted)"), "\(recorded.output)")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(!text.contains("s3cret-token"), "credentials are never kept")
            let entries = try HAR.read(file)
            #expect(entries.count == 3)
            #expect(entries.allSatisfy { $0.target == "/orders/2?view=full" && $0.status == 200 && $0.method == "GET" })
            #expect(
                entries.first.map { String(decoding: $0.response.body, as: UTF8.self) }?.contains(#""id":2"#) == true)

            // The file replays against the monolith itself, every answer as recorded.
            let monolith = "http://127.0.0.1:\(stack.proxy.store.snapshot.table.monolith.port)"
            let replay = try #require(
                try Strangler.parseAsRoot(["replay", file, "--target", monolith]) as? ReplayCommand)
            let summary = await replay.replay(entries)
            #expect(summary.errors == 0 && summary.asRecorded == 3)

            // Never over the file without --force; an unknown pattern is refused by the proxy.
            let again = try await command(
                ["record", "--route", "orders.*", "--out", file, "--limit", "1"] + stack.admin)
            #expect(again.status == 2 && again.error.contains("exists"))
            let unknown = try await command(
                ["record", "--route", "invoices.*", "--out", file + "2", "--seconds", "1"] + stack.admin)
            #expect(unknown.status == 2 && unknown.error.contains("no route id matches"), "\(unknown.error)")
        }
    }

    @Test func reconcileFindsAMissingAnExtraAndAChangedRecordAcrossPagingStyles() async throws {
        try await Self.run { stack in
            stack.service.clockSkew.withLockedValue { $0 = false }
            stack.service.orders.withLockedValue { orders in
                orders[2] = nil
                orders[3]?.total = 301
                orders[9] = OrdersApp.Order(id: 9, item: "only here", total: 1, updatedAt: "2026-12-01T10:00:00Z")
            }
            // Declare the entity, as the application's lists are: paged by a Link header on one side, a cursor field
            // on the other.
            var table = try JSONParser.parse(try String(contentsOfFile: stack.routesPath, encoding: .utf8))
            let services = try JSONParser.parse(
                #"{"orders": {"url": "\#(stack.proxy.store.snapshot.table.services["orders"]!.url)", "#
                    + #""entities": {"orders": {"path": "/orders", "key": "id"}}}}"#)
            table = Self.setting("services", to: services, in: table)
            let path = stack.folder.appendingPathComponent("reconcile-routes.json").path
            try table.prettyJSONText.write(toFile: path, atomically: true, encoding: .utf8)
            let command = try #require(
                try Strangler.parseAsRoot([
                    "reconcile", "orders", "--routes", path, "--data", stack.dataDirectory,
                ]) as? ReconcileCommand)
            let plan = try command.plan()
            let report = try await Reconciler(path: plan.entity.path, key: plan.entity.key, options: plan.options)
                .reconcile(monolith: plan.monolith, service: plan.service)
            #expect(report.compared == 5)
            #expect(report.missing == ["2"] && report.extra == ["9"])
            #expect(report.differing.map(\.id) == ["3"] && report.differing.first?.differences == ["/total changed"])
            let pages = stack.service.seenPaths.withLockedValue { $0.filter { $0 == "/orders" }.count }
            #expect(pages == 3, "three pages of two, by cursor")

            let undeclared = try #require(
                try Strangler.parseAsRoot(["reconcile", "invoices", "--routes", path]) as? ReconcileCommand)
            do {
                _ = try undeclared.plan()
                Issue.record("an undeclared entity was accepted")
            } catch let failure as CommandFailure {
                #expect(
                    failure.message.contains("declares no entity \"invoices\" (declared: orders)"), "\(failure.message)"
                )
            }
        }
    }
}

extension OwnMonolithMigrationTests.Stack {
    func admin(_ method: String, _ path: String) async throws -> RawResponse {
        let text =
            "\(method) \(path) HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nAuthorization: Bearer "
            + "\(ProxyHarness.token)\r\n\r\n"
        return try #require(RawHTTP.parse(try await RawHTTP.send(text, port: self.adminPort).text).first)
    }

    func diffs(_ route: String) async throws -> JSONValue {
        jsonValue(try await self.admin("GET", "/admin/diffs?route=\(route)").body)["routes"]?.at(0) ?? .null
    }
}

/// Runs a CLI command in-process, its output and exit status captured.
func command(_ arguments: [String]) async throws -> CommandOutcome {
    try await Strangler.outcome(of: arguments)
}
