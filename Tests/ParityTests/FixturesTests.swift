import ArgumentParser
import Diff
import DiffStore
import Foundation
import JSON
import RouteTable
import StranglerTesting
import Testing

@testable import StranglerCommands

/// `strangler fixtures export` turns stored mismatch samples into fixture files; the harness (and `strangler
/// fixtures replay`) replays them against live targets and says which differ from the monolith's recorded answer.
@Suite("Fixtures: stored mismatches exported and replayed")
struct FixturesTests {
    /// The routes.json the replays use: contacts.create ignores what a create makes anew on every call.
    static func routes(_ stack: Stack) -> String {
        stack.routesText.replacingFirst(
            #""id": "contacts.create","#,
            with: #""id": "contacts.create", "shadow": { "ignore": ["/id", "/createdAt", "/updatedAt"] },"#)
    }

    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-fixtures-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A sample as the proxy would store it: `request` sent to both sides live, their answers recorded.
    static func sample(
        _ route: String, signature: String, _ request: HTTPRequestData, monolith: HTTPEndpoint, service: HTTPEndpoint,
        dryRun: Bool = false
    ) async throws -> DiffSample {
        var sent = request
        if dryRun { sent.headers.append(("Strangler-Dry-Run", "1")) }
        let client = HTTPTestClient()
        let left = try await client.send(sent, to: monolith)
        let right = try await client.send(sent, to: service)
        let query = request.target.firstIndex(of: "?").map {
            String(request.target[request.target.index(after: $0)...])
        }
        return DiffSample(
            route: route, signature: signature, recordedAt: Date(), requestID: "req-\(signature)", servedBy: "monolith",
            method: request.method,
            path: request.path, query: query,
            requestHeaders: [("host", "proxy:8080"), ("authorization", "[redacted]")] + request.headers,
            requestBody: request.body,
            monolith: StoredResponse(status: left.status, headers: left.headers, body: left.body),
            service: StoredResponse(status: right.status, headers: right.headers, body: right.body),
            diff: #"{"status":{"monolith":201,"service":400}}"#)
    }

    @Test func mismatchesExportedAsFixturesReplayAgainstTheMonolithAndAService() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            try await stack.settle()
            let contacts = stack.service("contacts").endpoint
            let data = try Self.directory()
            let out = data.appendingPathComponent("fixtures")
            defer { try? FileManager.default.removeItem(at: data) }

            // Two samples of contacts routes: a read both sides answer alike, and a create whose body has a trailing
            // comma (the monolith's JSONDecoder takes it, the services' strict parser answers 400: a known difference).
            let store = try DiffStore.open(path: data.appendingPathComponent("diffs.sqlite").path)
            var batch = DiffBatch()
            batch.counts["contacts.get"] = {
                var counts = RouteCounts()
                counts.compared = 1
                counts.mismatched = 1
                return counts
            }()
            batch.counts["contacts.create"] = batch.counts["contacts.get"]
            batch.count(signature: "00000000000000a1", text: "/title changed", on: "contacts.get")
            batch.count(signature: "00000000000000b2", text: "status changed", on: "contacts.create")
            batch.samples.append(
                try await Self.sample(
                    "contacts.get", signature: "00000000000000a1",
                    HTTPRequestData(method: "GET", target: "/contacts/\(ids["ada"]!)?fields=all"),
                    monolith: stack.monolith, service: contacts))
            let trailingComma =
                #"{"accountId":"\#(ids["acme"]!)","firstName":"T","lastName":"C","email":"tc@acme.example.com",}"#
            batch.samples.append(
                try await Self.sample(
                    "contacts.create", signature: "00000000000000b2",
                    HTTPRequestData(
                        method: "POST", target: "/contacts", headers: [("Content-Type", "application/json")],
                        body: Array(trailingComma.utf8)),
                    monolith: stack.monolith, service: contacts, dryRun: true))
            try store.apply(batch)

            // Export, through the command line as a user runs it.
            #expect(await Strangler.execute(["fixtures", "export", "--data", data.path, "--out", out.path]) == 0)
            let exported = try await FixturesExportCommand.parse(["--data", data.path, "--out", out.path]).outcome()
            #expect(exported.status == 0 && exported.files.count == 2, "\(exported.error)")
            #expect(exported.output.contains("wrote 2 fixtures"), "\(exported.output)")
            let only = try await FixturesExportCommand.parse([
                "--data", data.path, "--out", out.path, "--route", "contacts.create", "--signature", "00000000000000b2",
            ])
            .outcome()
            #expect(
                only.files.count == 1 && only.files[0].hasSuffix("contacts.create-00000000000000b2-2.json"),
                "\(only.files)")

            // The files: the documented format.
            let fixtures = try Fixture.load(directory: out.path)
            #expect(
                fixtures.map(\.file) == [
                    "contacts.create-00000000000000b2-2.json", "contacts.get-00000000000000a1-1.json",
                ])
            let create = try #require(fixtures.first?.fixture)
            #expect(
                create.route == "contacts.create" && create.signature == "00000000000000b2"
                    && create.signatureText == "status changed")
            #expect(
                create.request.method == "POST" && create.request.target == "/contacts"
                    && create.request.body == Array(trailingComma.utf8))
            #expect(create.monolith.status == 201 && create.service?.status == 400)
            #expect(fixtures[1].fixture.request.target == "/contacts/\(ids["ada"]!)?fields=all")
            let file = try JSONParser.parse(Array(try Data(contentsOf: out.appendingPathComponent(fixtures[1].file))))
            #expect(file["format"]?.stringValue == "strangler-fixture/1")
            #expect(file["request"]?["query"]?.stringValue == "fields=all")

            // Replayed: the read matches on both; the create matches on the monolith (its rules ignore the new id and
            // times) and differs on the service, which still refuses the trailing comma.
            let harness = ParityHarness(
                routes: try RouteTable.parse(Self.routes(stack)), comparedHeaders: ["content-type"])
            let report = try await harness.replay(
                fixturesIn: out.path, against: [Target("monolith", stack.monolith), Target("contacts", contacts)])
            #expect(report.differing(on: "monolith") == [], "\(report)")
            #expect(report.differing(on: "contacts") == ["contacts.create-00000000000000b2-2.json"], "\(report)")
            #expect(report.description.contains("status changed: 201 → 400"), "\(report)")
            // Dry run: the replays created nothing.
            let created = try await HTTPTestClient().json(
                "GET", "/contacts?email=tc@acme.example.com", to: stack.monolith, status: 200)
            #expect(created["items"]?.arrayValue?.isEmpty == true)

            // The same through `strangler fixtures replay`: exit status 1, the differing file named.
            let routesFile = data.appendingPathComponent("routes.json")
            try Self.routes(stack).write(to: routesFile, atomically: true, encoding: .utf8)
            let replay = try FixturesReplayCommand.parse([
                out.path, "--routes", routesFile.path, "--target", "monolith=\(stack.monolith)", "--target",
                "contacts=\(contacts)",
            ])
            let replayed = await replay.outcome()
            #expect(replayed.status == 1, "\(replayed.error)")
            #expect(
                replayed.output.contains(
                    "contacts.create-00000000000000b2-2.json (contacts.create, POST /contacts): monolith: same, "
                        + "contacts: differs"
                ), "\(replayed.output)")
            let monolithOnly = try FixturesReplayCommand.parse([
                out.path, "--routes", routesFile.path, "--target", "monolith=\(stack.monolith)",
            ])
            #expect(await monolithOnly.outcome().status == 0)
        }
    }

    @Test func badInputGivesAClearErrorAndExitStatus2() async throws {
        let data = try Self.directory()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out").path

        // No --out.
        #expect(await Strangler.execute(["fixtures", "export", "--data", data.path]) == 2)
        #expect(throws: (any Error).self) { try FixturesExportCommand.parse(["--data", data.path]) }
        do {
            _ = try await FixturesExportCommand.parse(["--data", data.path])
        } catch {
            #expect(
                FixturesExportCommand.message(for: error).contains("--out DIR is required"),
                "\(FixturesExportCommand.message(for: error))")
        }
        #expect(
            await Strangler.execute(["fixtures", "export", "--out", out, "--signature", "xyz", "--route", "a"]) == 2)

        // No store where --data points.
        let missing = try await FixturesExportCommand.parse(["--data", data.path, "--out", out]).outcome()
        #expect(missing.status == 2 && missing.error.contains("no diff store at"), "\(missing.error)")

        // An unknown route, an unknown signature.
        let store = try DiffStore.open(path: data.appendingPathComponent("diffs.sqlite").path)
        var batch = DiffBatch()
        batch.counts["contacts.get"] = {
            var counts = RouteCounts()
            counts.compared = 1
            return counts
        }()
        try store.apply(batch)
        let unknown = try await FixturesExportCommand.parse([
            "--data", data.path, "--out", out, "--route", "contacts.gte",
        ])
        .outcome()
        #expect(
            unknown.status == 2 && unknown.error.contains(#"no route "contacts.gte" (routes it knows: contacts.get)"#),
            "\(unknown.error)")
        #expect(
            await Strangler.execute([
                "fixtures", "export", "--data", data.path, "--out", out, "--route", "contacts.gte",
            ]) == 2)
        let signature = try await FixturesExportCommand.parse([
            "--data", data.path, "--out", out, "--route", "contacts.get", "--signature", "0123456789abcdef",
        ]).outcome()
        #expect(signature.status == 2 && signature.error.contains("no mismatch signature"), "\(signature.error)")
        // A known route with no sample: nothing to do, not an error.
        let empty = try await FixturesExportCommand.parse([
            "--data", data.path, "--out", out, "--route", "contacts.get",
        ])
        .outcome()
        #expect(empty.status == 0 && empty.output.contains("nothing to export"), "\(empty.output)")

        // A store that is not a SQLite database.
        let garbage = try Self.directory()
        defer { try? FileManager.default.removeItem(at: garbage) }
        try Data(repeating: 0x41, count: 4096).write(to: garbage.appendingPathComponent("diffs.sqlite"))
        let unreadable = try await FixturesExportCommand.parse(["--data", garbage.path, "--out", out]).outcome()
        #expect(
            unreadable.status == 2 && unreadable.error.contains("cannot read the diff store at"), "\(unreadable.error)")
        #expect(await Strangler.execute(["fixtures", "export", "--data", garbage.path, "--out", out]) == 2)

        // Replay: no target, a bad target, a folder that is not there.
        #expect(await Strangler.execute(["fixtures", "replay", out]) == 2)
        #expect(await Strangler.execute(["fixtures", "replay", out, "--target", "nope"]) == 2)
        let noFolder = try FixturesReplayCommand.parse([
            data.appendingPathComponent("none").path, "--routes", "/dev/null/x", "--target", "m=http://127.0.0.1:1",
        ])
        #expect(await noFolder.outcome().status == 2)
    }
}
