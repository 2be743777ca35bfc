import ArgumentParser
import ControlPlane
import Diff
import DiffStore
import Foundation
import JSON
import Logging
import PostgresSupport
import ProxyTestSupport
import SharedStore
import Testing

@testable import StranglerCommands

/// `strangler store import|export` against a real PostgreSQL server: a table with its audit log, an epoch, counts from
/// before and after it, a signature and its triage go into an empty store and come back out as they went in.
@Suite("strangler store import|export")
struct StoreMoveTests {
    /// A data directory the file default would have: routes.json, two audit entries, a diff store where `items.get`
    /// moved to coexist after 4 comparisons and counted 5 more since (one signature twice, accepted).
    static func makeLocal(in directory: URL) throws -> (routes: String, data: String, signature: String) {
        let data = directory.appendingPathComponent("data").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let routes = directory.appendingPathComponent("routes.json").path
        try SharedStoreHarness.routes(monolith: 1081, service: 1082, stage: "coexist").write(
            toFile: routes, atomically: true, encoding: .utf8)
        try #"{"time":"2026-12-01T10:00:00Z","actor":"ops","action":"stage","route":"items.get"}"#
            .appending("\n")
            .appending(#"{"time":"2026-12-01T11:00:00Z","actor":"ops","action":"triage","route":"items.get"}"#)
            .appending("\n")
            .write(toFile: AuditLog.path(dataDirectory: data), atomically: true, encoding: .utf8)
        let diffs = try DiffStore.open(path: data + "/diffs.sqlite")
        var before = DiffBatch(time: Date(timeIntervalSince1970: 1_764_000_000))
        before.counts["items.get"] = Self.counts(compared: 4, matched: 4, mismatched: 0)
        try diffs.apply(before)
        try diffs.startEpoch(route: "items.get", stage: "coexist", at: Date(timeIntervalSince1970: 1_764_500_000.25))
        var since = DiffBatch(time: Date(timeIntervalSince1970: 1_764_600_000))
        since.counts["items.get"] = Self.counts(compared: 5, matched: 3, mismatched: 2)
        since.counts["items.get"]?.noiseChecks = 3
        since.count(signature: "sig-a", text: "/email changed", on: "items.get", occurrences: 2)
        since.count(pointer: "/email", kind: "changed", on: "items.get")
        since.countNoise(at: "/stamp", on: "items.get")
        since.samples.append(Self.sample)
        try diffs.apply(since)
        try ReconcileRecord(
            service: "items", time: Date(timeIntervalSince1970: 1_764_650_000), clean: true, compared: 7, missing: 0,
            extra: 0, differing: 0, ignored: ["/stamp"]
        ).write(dataDirectory: data)
        try diffs.recordTriage(
            TriageDecision(
                route: "items.get", signature: "sig-a", decision: .accepted, reason: "known", actor: "eng",
                decidedAt: Date(timeIntervalSince1970: 1_764_700_000)))
        return (routes, data, "sig-a")
    }

    /// A kept sample that held a redacted e-mail (its hash `subject-hash`).
    static let sample = DiffSample(
        route: "items.get", signature: "sig-a", recordedAt: Date(timeIntervalSince1970: 1_764_600_000.5),
        requestID: "r-1", servedBy: "monolith", method: "GET", path: "/items/1", query: "a=1",
        requestHeaders: [("accept", "application/json")], requestBody: [],
        monolith: StoredResponse(
            status: 200, headers: [("content-type", "application/json")],
            body: Array(#"{"email":"[redacted:subject-hash]"}"#.utf8)),
        service: StoredResponse(status: 200, headers: [], body: [0xff, 0x00, 0x01]), diff: #"{"body":{}}"#,
        subjects: ["subject-hash"])

    static func counts(compared: Int, matched: Int, mismatched: Int) -> RouteCounts {
        var counts = RouteCounts()
        counts.compared = compared
        counts.matched = matched
        counts.mismatched = mismatched
        return counts
    }

    static func run(_ arguments: [String]) async throws {
        var command = try #require(try Strangler.parseAsRoot(["store"] + arguments) as? any AsyncParsableCommand)
        try await command.run()
    }

    @Test func importThenExportRoundTripsTheTableItsAuditLogAndItsEvidence() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-move-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let local = try Self.makeLocal(in: directory)
        let original = try DiffStore.open(path: local.data + "/diffs.sqlite")
        let counts = try original.epochCounts(route: "items.get")
        #expect(counts.compared == 5 && counts.stage == "coexist" && counts.signatures.first?.decision == "accepted")

        try await Self.run(["import", "--store", url, "--routes", local.routes, "--data", local.data])
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        let table = try String(contentsOfFile: local.routes, encoding: .utf8)
        #expect(try await store.head()?.text == table)
        #expect(try await store.head()?.version == 1)
        // What the gates read through the store is what they read from the file default.
        #expect(try await store.epochCounts(route: "items.get") == counts)
        #expect(try await store.epochCounts(route: "items.create") == (try original.epochCounts(route: "items.create")))
        let audit = try await store.auditEntries()
        #expect(audit.count == 3)
        let last = try JSONParser.parse(Array((audit.last ?? "").utf8))
        #expect(last["action"]?.stringValue == "import")
        #expect(try await store.triageDecisions() == (try original.triageDecisions()))
        // The samples, pointers, noise, buckets, reconcile records and the key came along.
        #expect(
            try await store.samples(route: "items.get", signature: nil, limit: 20).jsonText
                == original.samples(route: "items.get").jsonText)
        #expect(try await store.sampleCount(subjectHash: "subject-hash") == 1)
        let summary = try await store.summary(route: "items.get", pointerLimit: 50)["routes"]?.at(0)
        #expect(summary?["pointers"] == (try original.summary(route: "items.get")["routes"]?.at(0)?["pointers"]))
        #expect(summary?["signatures"]?.at(0)?["samples"]?.numberValue == 1, "\(summary?.jsonText ?? "")")
        #expect(try await store.noise(route: "items.get").checks == 3)
        #expect(try await store.noise(route: "items.get").pointers.map(\.pointer) == ["/stamp"])
        #expect(try await store.buckets(route: nil, since: nil) == original.buckets())
        #expect(try await store.latestReconcile(entity: "items")?.ignored == ["/stamp"])
        #expect(try await store.redactionKey() == original.redactionKey)

        // A store that holds a table is refused, and nothing is written.
        await #expect(throws: ExitCode.self) {
            try await Self.run(["import", "--store", url, "--routes", local.routes, "--data", local.data])
        }
        #expect(try await store.auditEntries().count == 3)
        #expect(try await store.epochCounts(route: "items.get") == counts)

        // Out again, into a fresh place.
        let out = directory.appendingPathComponent("out")
        let routesOut = out.appendingPathComponent("routes.json").path
        let dataOut = out.appendingPathComponent("data").path
        try await Self.run(["export", "--store", url, "--routes", routesOut, "--data", dataOut])
        #expect(try String(contentsOfFile: routesOut, encoding: .utf8) == table)
        let exported = try DiffStore.open(path: dataOut + "/diffs.sqlite")
        #expect(try exported.epochCounts(route: "items.get") == counts)
        #expect(try exported.triageDecisions() == original.triageDecisions())
        #expect(try exported.samples(route: "items.get").jsonText == original.samples(route: "items.get").jsonText)
        #expect(try exported.sampleCount(subjectHash: "subject-hash") == 1)
        #expect(try exported.noise(route: "items.get").pointers.map(\.pointer) == ["/stamp"])
        #expect(try exported.buckets() == original.buckets())
        #expect(exported.redactionKey == original.redactionKey)
        #expect(ReconcileRecord.read(service: "items", dataDirectory: dataOut)?.compared == 7)
        let lines = try String(contentsOfFile: AuditLog.path(dataDirectory: dataOut), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == 3)

        // Not over what exists.
        await #expect(throws: ExitCode.self) {
            try await Self.run(["export", "--store", url, "--routes", routesOut, "--data", dataOut])
        }
    }

    @Test func samplesHashedByAnotherKeyThanTheStoresAreRefused() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-move-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let local = try Self.makeLocal(in: directory)
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        let own = try await store.redactionKey()
        #expect(own != (try DiffStore.open(path: local.data + "/diffs.sqlite").redactionKey))
        let command = try #require(
            try Strangler.parseAsRoot([
                "store", "import", "--store", url, "--routes", local.routes, "--data", local.data,
            ]) as? StoreImportCommand)
        await #expect {
            try await command.move()
        } throws: { error in
            "\(error)".contains("the store already has a redaction key of its own")
        }
        #expect(try await store.head() == nil)
        #expect(try await store.samples(route: "items.get", signature: nil, limit: 20).arrayValue?.isEmpty == true)
        #expect(try await store.redactionKey() == own)
    }

    @Test func aBrokenAuditLogOrTableMovesNothing() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-move-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let local = try Self.makeLocal(in: directory)
        let auditPath = AuditLog.path(dataDirectory: local.data)
        try (try String(contentsOfFile: auditPath, encoding: .utf8) + "not json\n").write(
            toFile: auditPath, atomically: true, encoding: .utf8)
        let command = try #require(
            try Strangler.parseAsRoot([
                "store", "import", "--store", url, "--routes", local.routes, "--data", local.data,
            ])
                as? StoreImportCommand)
        #expect {
            _ = try command.bundle()
        } throws: { error in
            "\(error)".contains("audit.jsonl line 3 is not one JSON object")
        }
        await #expect(throws: ExitCode.self) {
            try await Self.run([
                "import", "--store", url, "--routes", local.routes,
                "--data", local.data,
            ])
        }
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        #expect(try await store.head() == nil)

        // A reconcile record filed under another entity's name moves nothing.
        try FileManager.default.createDirectory(
            atPath: local.data + "/reconcile", withIntermediateDirectories: true)
        try ReconcileRecord(service: "contacts", clean: true, compared: 1, missing: 0, extra: 0, differing: 0).json
            .jsonText.write(toFile: local.data + "/reconcile/orders.json", atomically: true, encoding: .utf8)
        try (try String(contentsOfFile: auditPath, encoding: .utf8)).replacingOccurrences(of: "not json\n", with: "")
            .write(toFile: auditPath, atomically: true, encoding: .utf8)
        #expect {
            _ = try command.bundle()
        } throws: { error in
            "\(error)".contains(#"orders.json holds the record of "contacts", not of orders"#)
        }

        for (arguments, fragment) in [
            (["import", "--store", "mysql://u@h/db"], "only postgres://"),
            (["export", "--store", "postgres://h/db"], "no user before @"),
            (["import", "--store", url, "--routes", ""], "--routes must name a file"),
        ] {
            #expect(throws: (any Error).self) { _ = try Strangler.parseAsRoot(["store"] + arguments) }
            do {
                _ = try Strangler.parseAsRoot(["store"] + arguments)
            } catch {
                #expect(
                    Strangler.message(for: error).contains(fragment), "\(arguments): \(Strangler.message(for: error))")
            }
        }
    }
}
