import AdminAPI
import ArgumentParser
import Diff
import DiffStore
import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports
@testable import StranglerCommands

@Suite("strangler noise and strangler purge")
struct ShadowCommandTests {
    @Test func noiseProposesThenAppliesRulesThroughTheAdminAPI() async throws {
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1) }, configure: { $0.noiseShare = 1.0 }
        ) { harness in
            harness.monolith.documents.withLockedValue { $0["/contacts/n1"] = #"{"id":"n1","requestedAt":"t{{n}}"}"# }
            harness.service.documents.withLockedValue { $0["/contacts/n1"] = #"{"id":"n1","requestedAt":"t0"}"# }
            for _ in 1...2 { _ = try await RawHTTP.get("/contacts/n1", port: harness.proxyPort) }
            _ = try await harness.waitForDiffs("contacts.get", "noiseChecks", atLeast: 2)
            let admin = ["--admin", "http://127.0.0.1:\(harness.adminPort)", "--token-file", harness.tokenFile]

            // Without --apply nothing changes.
            let review = try NoiseCommand.parse(["contacts.get"] + admin)
            try await review.run()
            let asJSON = try NoiseCommand.parse(["contacts.get", "--output", "json"] + admin)
            #expect(asJSON.output == .json)
            try await asJSON.run()
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            #expect(!before.contains("requestedAt"))

            let apply = try NoiseCommand.parse(["contacts.get", "--apply", "--reason", "timestamps"] + admin)
            try await apply.run()
            let table = try JSONParser.parse(try String(contentsOfFile: harness.routesPath, encoding: .utf8))
            let route = table["routes"]?.arrayValue?.first { $0["id"]?.stringValue == "contacts.get" }
            #expect(route?["shadow"]?["ignore"]?.arrayValue == [.string("/requestedAt")])
            #expect(
                harness.proxy.store.snapshot.table.route(id: "contacts.get")?.shadow?.ignore == ["/requestedAt"],
                "live at once")
            let audit = try String(contentsOfFile: harness.auditPath, encoding: .utf8)
            #expect(audit.contains("strangler-cli") && audit.contains("timestamps"))

            // Applied rules are not proposed again, and an unknown route is an error (exit 2).
            let again = json(try await harness.admin("GET", "/admin/noise?route=contacts.get").body)
            #expect(again["proposed"] as? [String] == [])
            let unknown = try NoiseCommand.parse(["nope"] + admin)
            await #expect(throws: ExitCode(2)) { try await unknown.run() }
            let wrongFile = harness.directory.appendingPathComponent("wrong-token").path
            try "wrong\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
            let wrongToken = try NoiseCommand.parse([
                "contacts.get", "--admin", "http://127.0.0.1:\(harness.adminPort)", "--token-file", wrongFile,
            ])
            await #expect(throws: ExitCode(2)) { try await wrongToken.run() }
        }
    }

    @Test func noiseRefusesBadFlags() throws {
        for arguments in [["contacts.get", "--min-count", "0"], ["contacts.get", "--admin", "ftp://x"]] {
            if arguments.contains("--admin") {
                #expect(throws: AdminClient.Failure.self) {
                    try AdminClient(url: "ftp://x", token: "t", dataDirectory: "/nonexistent")
                }
            } else {
                #expect(throws: (any Error).self) { try NoiseCommand.parse(arguments) }
            }
        }
    }

    @Test func addingIgnoreRulesKeepsTheRestOfTheTable() throws {
        let table = try JSONParser.parse(
            #"{"monolith":"http://m","routes":[{"id":"a","stage":"coexist","shadow":{"sample":0.5,"ignore":["/x"]}},"#
                + #"{"id":"b"}]}"#
        )
        let updated = NoiseCommand.adding(ignore: ["/y", "/x"], toRoute: "a", in: table)
        #expect(
            updated?.jsonText
                == #"{"monolith":"http://m","routes":[{"id":"a","stage":"coexist","shadow":{"sample":0.5,"#
                + #""ignore":["/x","/y"]}},{"id":"b"}]}"#
        )
        let created = NoiseCommand.adding(ignore: ["/y"], toRoute: "b", in: table)
        #expect(created?["routes"]?.arrayValue?.last?.jsonText == #"{"id":"b","shadow":{"ignore":["/y"]}}"#)
        #expect(NoiseCommand.adding(ignore: ["/y"], toRoute: "c", in: table) == nil)
    }

    @Test func purgeDeletesSamplesFromTheDataDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("purge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try DiffStore.open(path: directory.appendingPathComponent("diffs.sqlite").path)
        var batch = DiffBatch()
        let answer = StoredResponse(status: 200, headers: [], body: [])
        for route in ["a", "a", "b"] {
            batch.samples.append(
                DiffSample(
                    route: route, signature: "s", recordedAt: Date(timeIntervalSince1970: 1_700_000_000),
                    requestID: "r", servedBy: "monolith",
                    method: "GET", path: "/", query: nil, requestHeaders: [], requestBody: [], monolith: answer,
                    service: answer, diff: "{}"))
        }
        try store.apply(batch)
        let command = try PurgeCommand.parse(["--route", "a", "--before", "2024-01-01", "--data", directory.path])
        try await command.run()
        #expect(try store.sampleCount(route: "a", signature: "s") == 0)
        #expect(try store.sampleCount(route: "b", signature: "s") == 1)
        #expect(throws: (any Error).self) { try PurgeCommand.parse(["--before", "yesterday"]) }
        let missing = try PurgeCommand.parse(["--data", directory.appendingPathComponent("none").path])
        await #expect(throws: ExitCode(2)) { try await missing.run() }
    }
}
