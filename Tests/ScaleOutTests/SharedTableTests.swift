import ArgumentParser
import Foundation
import Gateway
import JSON
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import PostgresSupport
import Proxy
import ProxyTestSupport
import RouteTable
import SharedStore
import Testing

@testable import StranglerCommands

/// The route table in a shared PostgreSQL store: every proxy routes by it, a change through one reaches the others, a
/// stale change is refused everywhere, and each proxy shows in the instance list.
// Two proxies, their shadow traffic and PostgreSQL take both cores: kept apart from the tests that measure time.
@Suite("Scale-out: several proxies route by one table in PostgreSQL", .loadsTheMachine)
struct SharedTableTests {
    @Test func aStoreURLIsReadOrRefusedSayingWhy() throws {
        let location = try StoreLocation.parse(
            "postgres://ops@db.internal:6543/strangler?sslmode=require", environment: ["PGPASSWORD": "s3cret"])
        #expect(location.user == "ops" && location.host == "db.internal" && location.port == 6543)
        #expect(location.database == "strangler" && location.tls == .require && location.password == "s3cret")
        #expect(!location.description.contains("s3cret"))
        let withPassword = try StoreLocation.parse("postgresql://ops:hunter2@db/strangler", environment: [:])
        #expect(withPassword.port == 5432 && withPassword.password == "hunter2")
        #expect(!withPassword.description.contains("hunter2"))
        let refused: [(String, String)] = [
            ("mysql://ops@db/strangler", "only postgres://"),
            ("postgres://db/strangler", "no user"),
            ("postgres://ops@db", "no database"),
            ("postgres://ops@db:70000/strangler", "port 70000"),
            ("postgres://ops@db/strangler?sslmode=maybe", "sslmode=maybe"),
            ("postgres://ops@db/strangler?pool=9", "unknown parameter pool"),
            ("postgres://ops:hunter2@db/a/b", "holds a /"),
        ]
        for (text, why) in refused {
            #expect(throws: StoreLocation.Invalid.self, "\(text)") { try StoreLocation.parse(text, environment: [:]) }
            do {
                _ = try StoreLocation.parse(text, environment: [:])
            } catch {
                #expect(error.description.contains(why), "\(text): \(error.description)")
                #expect(!error.description.contains("hunter2"), "the password is never echoed")
            }
        }
    }

    @Test func theSchemaIsMigratedOnceAndANewerOneIsRefused() async throws {
        let server = try await PostgresServer.shared()
        let url = try await server.freshDatabase()
        let logger = Logger(label: "test")
        // Two proxies starting at once: one migrates, the other waits for it and finds nothing to do.
        async let first = SharedStore.connect(try StoreLocation.parse(url), logger: logger, timeout: .seconds(20))
        async let second = SharedStore.connect(try StoreLocation.parse(url), logger: logger, timeout: .seconds(20))
        let stores = try await [first, second]
        let versions = try await Self.migrations(server: server, url: url)
        #expect(versions == [1, 2, 3, 4])
        for store in stores { store.close() }
        try await server.execute(
            "INSERT INTO strangler.migrations (version, name) VALUES (99, 'from the future')",
            database: String(url.split(separator: "/").last!))
        do {
            let store = try await SharedStore.connect(try StoreLocation.parse(url), logger: logger)
            store.close()
            Issue.record("a store at schema 99 was opened")
        } catch {
            #expect("\(error)".contains("version 99, newer than this strangler knows"), "\(error)")
        }
    }

    @Test func aFlipThroughOneProxyIsRoutedByTheOtherByNotification() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url) { harness in
            #expect(harness.stageOf(harness.a, "items.get") == .transform)
            #expect(harness.stageOf(harness.b, "items.get") == .transform)
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            let flipped = ContinuousClock.now
            // B polls only every 60 s: seeing it sooner means the notification carried it.
            #expect(
                await eventually(within: .seconds(30)) { harness.stageOf(harness.b, "items.get") == .coexist },
                "B routes by the flip made through A")
            let seenAfter = ContinuousClock.now - flipped
            #expect(seenAfter < .seconds(30), "seen after \(seenAfter)")
            // B routes by it: a GET through B is shadowed to the service.
            let before = harness.service.seenPaths.withLockedValue { $0.count }
            #expect(try await RawHTTP.get("/items/7", port: harness.b.proxyPort).status == 200)
            #expect(
                await eventually { harness.service.seenPaths.withLockedValue { $0.count } > before },
                "the service got B's shadow")
            // Both report the same version and hash; the audit log (through either) has the change once.
            #expect(harness.a.proxy.store.snapshot.version == harness.b.proxy.store.snapshot.version)
            #expect(try await harness.etag(harness.a) == harness.etag(harness.b))
            let history = jsonValue(try await harness.admin(harness.b, "GET", "/admin/history").body)
            let entries = history["entries"]?.arrayValue ?? []
            #expect(
                entries.filter { $0["reason"]?.stringValue == "scale-out test" }.count == 1,
                "\(history.jsonText)")
        }
    }

    @Test func concurrentFlipsWithTheSameETagCommitOnceAndTheOtherIs412() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url) { harness in
            let etag = try await harness.etag(harness.a)
            #expect(try await harness.etag(harness.b) == etag)
            async let throughA = harness.stage(harness.a, "items.get", "coexist", etag: etag)
            async let throughB = harness.stage(harness.b, "items.create", "coexist", etag: etag)
            let statuses = try await [throughA.status, throughB.status].sorted()
            #expect(statuses == [200, 412], "exactly one commits: \(statuses)")
            // Both converge on the one that won.
            #expect(
                await eventually {
                    harness.a.proxy.store.snapshot.version == harness.b.proxy.store.snapshot.version
                        && harness.a.proxy.store.snapshot.text == harness.b.proxy.store.snapshot.text
                })
            let coexisting = ["items.get", "items.create"].filter { harness.stageOf(harness.a, $0) == .coexist }
            #expect(coexisting.count == 1, "\(coexisting)")
            // A stale ETag is refused by either proxy, and nothing changes.
            let version = harness.a.proxy.store.snapshot.version
            for member in harness.members {
                let stale = try await harness.stage(member, "items.get", "eliminate", etag: etag)
                #expect(stale.status == 412, "\(member.id): \(stale.body)")
            }
            #expect(harness.a.proxy.store.snapshot.version == version)
        }
    }

    @Test func aMissedNotificationIsMadeUpByThePeriodicReread() async throws {
        let server = try await PostgresServer.shared()
        let url = try await server.freshDatabase()
        let database = String(url.split(separator: "/").last!)
        try await SharedStoreHarness.run(store: url, proxies: 1, poll: .milliseconds(200)) { harness in
            let version = harness.a.proxy.store.snapshot.version
            let text = SharedStoreHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "coexist")
            let hash = RouteTable.contentHash(of: text)
            // A commit whose notification never went out (as if the listening connection had dropped).
            try await server.execute(
                """
                INSERT INTO strangler.route_versions (version, text, content_hash, actor, reason)
                VALUES (\(version + 1), '\(text.replacingOccurrences(of: "'", with: "''"))', '\(hash)', 'sql', 'no notify')
                """, database: database)
            try await server.execute(
                "UPDATE strangler.route_head SET version = \(version + 1), content_hash = '\(hash)'", database: database
            )
            #expect(
                await eventually { harness.stageOf(harness.a, "items.get") == .coexist },
                "the re-read found the head")
            #expect(harness.a.proxy.store.snapshot.version == version + 1)
        }
    }

    @Test func everyProxyIsListedAndOneBehindOrSilentIsFlagged() async throws {
        let server = try await PostgresServer.shared()
        let url = try await server.freshDatabase()
        let database = String(url.split(separator: "/").last!)
        try await SharedStoreHarness.run(store: url) { harness in
            var listing = JSONValue.null
            #expect(
                await eventually {
                    listing = jsonValue((try? await harness.admin(harness.a, "GET", "/admin/instances").body) ?? "")
                    return listing["instances"]?.arrayValue?.count == 2
                }, "\(listing.jsonText)")
            let instances = listing["instances"]?.arrayValue ?? []
            #expect(instances.map { $0["id"]?.stringValue } == ["proxy-a", "proxy-b"])
            #expect(instances.allSatisfy { $0["standing"]?.stringValue == "current" }, "\(listing.jsonText)")
            #expect(instances.first?["self"]?.boolValue == true && instances.last?["self"]?.boolValue == false)
            #expect(instances.last?["admin"]?.stringValue == "http://127.0.0.1:\(harness.b.adminPort)")
            #expect(listing["flagged"]?.numberValue == 0)
            // The CLI says the same, exit 0.
            let clean = await Self.instancesCommand(harness.a, harness)
            #expect(clean.status == 0, "\(clean.output)\(clean.error)")
            #expect(clean.output.contains("proxy-a (this one)") && clean.output.contains("proxy-b"), "\(clean.output)")
            // A proxy that stopped reporting a minute ago, and one still on version 1 of the table.
            try await server.execute(
                """
                INSERT INTO strangler.instances (id, proxy, admin, host, pid, version, content_hash, started_at, last_seen)
                VALUES ('gone', '10.0.0.9:8080', 'http://10.0.0.9:8090', 'old-host', 1, 1, 'x', now() - interval '1 hour',
                        now() - interval '1 minute');
                """, database: database)
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200)
            try await server.execute(
                """
                INSERT INTO strangler.instances (id, proxy, admin, host, pid, version, content_hash, started_at, last_seen)
                VALUES ('lagging', '10.0.0.8:8080', 'http://10.0.0.8:8090', 'other-host', 2, 1, 'y', now(), now());
                """, database: database)
            listing = jsonValue(try await harness.admin(harness.b, "GET", "/admin/instances").body)
            let standings = Dictionary(
                uniqueKeysWithValues: (listing["instances"]?.arrayValue ?? []).map {
                    ($0["id"]?.stringValue ?? "", $0["standing"]?.stringValue ?? "")
                })
            #expect(standings["gone"] == "silent" && standings["lagging"] == "behind", "\(listing.jsonText)")
            #expect(listing["flagged"]?.numberValue ?? 0 >= 2)
            let flagged = await Self.instancesCommand(harness.b, harness)
            #expect(flagged.status == 1)
            #expect(flagged.output.contains("SILENT") && flagged.output.contains("BEHIND"), "\(flagged.output)")
        }
    }

    @Test func aStoreThatGoesDownStopsChangesNotRequests() async throws {
        // A server of this test's own, since it is stopped mid-traffic.
        let server = try await PostgresServer.start()
        let url = try await server.freshDatabase()
        try await SharedStoreHarness.run(store: url, poll: .milliseconds(200)) { harness in
            #expect(try await RawHTTP.get("/items/1", port: harness.a.proxyPort).status == 200)
            try await server.stop()
            // Requests go on by the last table through both proxies, while the store is down.
            for member in harness.members {
                for index in 0..<5 {
                    let answer = try await RawHTTP.get("/items/\(index)", port: member.proxyPort)
                    #expect(answer.status == 200, "\(member.id): \(answer.body)")
                }
            }
            // The proxies notice, and say so.
            var status = JSONValue.null
            #expect(
                await eventually {
                    status = jsonValue((try? await harness.admin(harness.b, "GET", "/admin/status").body) ?? "")
                    return status["store"]?["reachable"]?.boolValue == false
                }, "\(status.jsonText)")
            #expect(status["store"]?["lastError"]?["message"]?.stringValue?.isEmpty == false, "\(status.jsonText)")
            let metrics = try await harness.admin(harness.b, "GET", "/metrics").body
            #expect(metrics.contains("strangler_store_up 0"), "\(metrics)")
            // A change is refused, and nothing changes.
            let version = harness.a.proxy.store.snapshot.version
            let refused = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(refused.status == 503, "\(refused.body)")
            #expect(jsonValue(refused.body)["code"]?.stringValue == "store_unavailable", "\(refused.body)")
            #expect(harness.a.proxy.store.snapshot.version == version)
            #expect(harness.stageOf(harness.a, "items.get") == .transform)
            // Back up: the proxies find it again, and a change goes through and reaches both.
            try await server.restart()
            #expect(
                await eventually {
                    let body = (try? await harness.admin(harness.a, "GET", "/admin/status").body) ?? ""
                    return jsonValue(body)["store"]?["reachable"]?.boolValue == true
                })
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            #expect(await eventually { harness.stageOf(harness.b, "items.get") == .coexist })
        }
        try await server.stop()
    }

    @Test func withoutAStoreTheInstanceListIsThisProxy() async throws {
        try await ProxyHarness.run { harness in
            let listing = jsonValue(try await harness.admin("GET", "/admin/instances").body)
            let instances = listing["instances"]?.arrayValue ?? []
            #expect(instances.count == 1 && instances.first?["self"]?.boolValue == true, "\(listing.jsonText)")
            let status = jsonValue(try await harness.admin("GET", "/admin/status").body)
            #expect(status["store"] == .null && status["routesFile"]?.stringValue == harness.routesPath)
        }
    }

    /// `strangler instances` against `member`'s admin API, with the harness's token.
    static func instancesCommand(
        _ member: SharedStoreHarness.Member, _ harness: SharedStoreHarness
    ) async -> (status: Int32, output: String, error: String) {
        let tokenFile = harness.directory.appendingPathComponent("token").path
        try? SharedStoreHarness.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        guard
            let command = try? InstancesCommand.parse([
                "--admin", "http://127.0.0.1:\(member.adminPort)", "--token-file", tokenFile,
            ])
        else { return (2, "", "did not parse") }
        let outcome = await command.outcome()
        return (outcome.status, outcome.output, outcome.error)
    }

    static func migrations(server: PostgresServer, url: String) async throws -> [Int] {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: server.host, port: server.port, username: server.user, password: nil,
                database: String(url.split(separator: "/").last!), tls: .disable),
            id: 1, logger: Logger(label: "test"))
        var versions: [Int] = []
        let rows = try await connection.query(
            "SELECT version FROM strangler.migrations ORDER BY version", logger: Logger(label: "test"))
        for try await version in rows.decode(Int.self) { versions.append(version) }
        try await connection.close()
        return versions
    }
}
