import AdminAPI
import ArgumentParser
import DiffStore
import Foundation
import Gateway
import JSON
import ProxyTestSupport
import RouteTable
import StranglerTesting
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports
@testable import StranglerCommands

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ProxyHarness {
    /// The CLI's flags for this proxy's admin API.
    var cli: [String] {
        [
            "--admin", "http://127.0.0.1:\(self.adminPort)", "--token-file", self.tokenFile, "--data",
            self.dataDirectory, "--actor", "tester",
        ]
    }
}

/// A copy of a harness's starting table and evidence in a folder of its own, for the CLI's file path.
struct FileCopy {
    let directory: URL
    var routesPath: String { self.directory.appendingPathComponent("routes.json").path }
    var dataDirectory: String { self.directory.appendingPathComponent("data").path }
    var cli: [String] { ["--file", "--routes", self.routesPath, "--data", self.dataDirectory, "--actor", "tester"] }
    var audit: [JSONValue] {
        RouteControl.readAudit(
            path: URL(fileURLWithPath: self.dataDirectory).appendingPathComponent("audit.jsonl").path)
    }

    init(routes: String) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        try routes.write(toFile: self.routesPath, atomically: true, encoding: .utf8)
    }

    func store() throws -> DiffStore {
        try DiffStore.open(path: URL(fileURLWithPath: self.dataDirectory).appendingPathComponent("diffs.sqlite").path)
    }

    func remove() { try? FileManager.default.removeItem(at: self.directory) }
}

/// Runs a command line through the parser, as `strangler` does, and returns its outcome.
func run(_ arguments: [String]) async throws -> CommandOutcome {
    try await Strangler.outcome(of: arguments)
}

@Suite("strangler stage, promote, rollback, undo, history, triage, routes")
struct StageCommandTests {
    @Test func commandsThroughTheProxyAndTheirExitCodes() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness)
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 5000, matched: 4999,
                signatures: [("e1", "/email changed", 1)])
            let cli = harness.cli

            let moved = try await run(["stage", "contacts.list", "coexist", "--reason", "reads ready"] + cli)
            #expect(moved.status == 0, "\(moved.error)")
            #expect(moved.output.hasPrefix("contacts.list: transform → coexist\n"))

            let dead = try await run(["promote", "dead.get"] + cli)
            #expect(dead.status == 1)
            #expect(
                dead.error.contains(
                    "dead.get transform → coexist:\n    - service dead is not "
                        + "healthy"), "\(dead.error)"
            )

            let untriaged = try await run(["promote", "contacts.get"] + cli)
            #expect(untriaged.status == 1)
            #expect(untriaged.error.contains("1 untriaged mismatch signature: e1 (/email changed, 1×)"))
            let triaged = try await run(["triage", "contacts.get", "e1", "--accept", "--reason", "known"] + cli)
            #expect(triaged.status == 0, "\(triaged.error)")
            #expect(triaged.output == "contacts.get e1 (/email changed): accepted\n")
            let promoted = try await run(["promote", "contacts.get"] + cli)
            #expect(promoted.status == 0, "\(promoted.error)")
            #expect(harness.stageOf("contacts.get") == .eliminate)

            let noNext = try await run(["promote", "contacts.get"] + cli)
            #expect(noNext.status == 2 && noNext.error.contains("there is no next stage"))
            #expect(try await run(["stage", "nope", "coexist", "--reason", "r"] + cli).status == 2)
            let stale = try await run(
                ["stage", "contacts.get", "coexist", "--reason", "r", "--if-match", "0000000000000000"] + cli)
            #expect(stale.status == 4 && stale.error.contains("the table changed since you read it"))

            #expect(try await run(["rollback", "contacts.get", "--reason", "latency"] + cli).status == 0)
            #expect(harness.stageOf("contacts.get") == .coexist)
            let undone = try await run(["undo", "--reason", "too soon"] + cli)
            #expect(undone.status == 0, "\(undone.error)")
            #expect(undone.output.contains("contacts.get: coexist → eliminate"))
            #expect(harness.stageOf("contacts.get") == .eliminate)

            let history = try await run(["history", "contacts.get"] + cli)
            #expect(history.status == 0)
            let lines = history.output.split(separator: "\n")
            #expect(lines.first?.hasPrefix("TIME") == true && lines.count == 6, "\(history.output)")
            #expect(history.output.contains("contacts.get coexist→eliminate"))
            #expect(history.output.contains("undo stage of "))
            let json = try JSONParser.parse(try await run(["history", "--output", "json"] + cli).output)
            #expect(json["entries"]?.arrayValue?.count == 5)

            let routes = try await run(["routes"] + cli)
            #expect(routes.status == 0)
            #expect(routes.output.hasPrefix("ROUTE "))
            #expect(!routes.output.contains("\u{1B}["))
            #expect(routes.output.contains("→ transform") == false)
            #expect(
                routes.output.contains("dead.get")
                    && routes.output.contains("→ coexist: blocked: service dead is not healthy"))
            let hash = harness.proxy.store.snapshot.contentHash
            #expect(
                routes.output.hasSuffix(
                    "4 routes (1 transform, 2 coexist, 1 eliminate); table \(hash), from the proxy at "
                        + "http://127.0.0.1:\(harness.adminPort)\n"
                ))
            #expect(routes.output.contains("write route with no dry-run comparisons so far\n"))
            let routesJSON = try JSONParser.parse(
                try await run(["routes", "contacts.list", "--output", "json"] + cli).output)
            #expect(routesJSON["routes"]?.arrayValue?.count == 1)
            #expect(routesJSON["routes"]?.at(0)?["next"]?["stage"]?.stringValue == "eliminate")

            let closed = try ClosedPort()
            defer { closed.release() }
            let unreachable = try await run([
                "routes", "--admin", "http://127.0.0.1:\(closed.port)", "--token-file", harness.tokenFile,
            ])
            #expect(unreachable.status == 3 && unreachable.error.contains("the proxy is unreachable"))
            let wrongFile = harness.directory.appendingPathComponent("wrong-token").path
            try "wrong\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
            let badToken = try await run([
                "routes", "--admin", "http://127.0.0.1:\(harness.adminPort)", "--token-file", wrongFile,
            ])
            #expect(badToken.status == 2 && badToken.error.contains("refused the token"))
        }
    }

    @Test func twoWritersRacingGetOneSuccessAndOne412() async throws {
        try await ProxyHarness.runGates { harness in
            let etag = try await harness.etag().trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let arguments =
                ["stage", "contacts.get", "transform", "--reason", "race", "--if-match", etag] + harness.cli
            async let first = run(arguments)
            async let second = run(arguments.map { $0 == "contacts.get" ? "contacts.create" : $0 })
            let statuses = try await [first.status, second.status].sorted()
            #expect(statuses == [0, 4])
            #expect(GateFixture.audit(harness).count == 1)

            // The same on the file path: the routes.json lock and its check that the file is still the one read.
            let copy = try FileCopy(
                routes: GateFixture.routes(monolith: harness.monolithPort, service: harness.servicePort))
            defer { copy.remove() }
            let hash = RouteTable.contentHash(of: try String(contentsOfFile: copy.routesPath, encoding: .utf8))
            let onFile = ["stage", "contacts.get", "transform", "--reason", "race", "--if-match", hash] + copy.cli
            async let one = run(onFile)
            async let two = run(onFile.map { $0 == "contacts.get" ? "contacts.create" : $0 })
            let (oneOutcome, twoOutcome) = try await (one, two)
            #expect(
                [oneOutcome.status, twoOutcome.status].sorted() == [0, 4], "\(oneOutcome.error) \(twoOutcome.error)")
            #expect(copy.audit.count == 1)
        }
    }

    @Test func theFilePathAndTheAPIPathGiveTheSameResult() async throws {
        try await ProxyHarness.runGates { harness in
            let copy = try FileCopy(
                routes: GateFixture.routes(monolith: harness.monolithPort, service: harness.servicePort))
            defer { copy.remove() }
            try GateFixture.prepare(harness)
            try GateFixture.reconcile(clean: true, dataDirectory: copy.dataDirectory)
            let signatures = [(id: "s1", text: "/phone changed", count: 2)]
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 5000, matched: 4998, signatures: signatures)
            try GateFixture.record(
                try copy.store(), route: "contacts.get", compared: 5000, matched: 4998, signatures: signatures)

            let steps: [[String]] = [
                ["stage", "contacts.list", "coexist", "--reason", "reads"],
                ["promote", "contacts.get"],
                ["triage", "contacts.get", "s1", "--ignore", "--reason", "phone formatting"],
                ["promote", "contacts.get", "--reason", "ready"],
                ["stage", "contacts.*", "transform", "--reason", "all back"],
                ["promote", "dead.get", "--force", "--reason", "testing"],
                ["undo", "--reason", "no"],
                ["history"],
            ]
            for step in steps {
                let viaAPI = try await run(step + harness.cli)
                let viaFile = try await run(step + copy.cli)
                #expect(viaAPI.status == viaFile.status, "\(step)")
                #expect(viaAPI.error == viaFile.error, "\(step)")
                // The same text, but for where the change went, the flags that reach it again (in the undo hint)
                // and the seconds at which it happened.
                func normalised(_ text: String, _ target: String) -> String {
                    text.replacingOccurrences(of: target, with: "X")
                        .replacingOccurrences(
                            of: #"undo with: strangler undo.*"#, with: "undo with: strangler undo",
                            options: .regularExpression
                        )
                        .replacingOccurrences(
                            of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, with: "T", options: .regularExpression)
                }
                if step[0] != "history" {
                    #expect(
                        normalised(viaAPI.output, "the proxy at http://127.0.0.1:\(harness.adminPort)")
                            == normalised(viaFile.output, "\(copy.routesPath) (no proxy running)"), "\(step)")
                }
            }
            #expect(
                try String(contentsOfFile: harness.routesPath, encoding: .utf8)
                    == String(contentsOfFile: copy.routesPath, encoding: .utf8))
            func withoutTimes(_ entry: JSONValue) -> String {
                var members = (entry.objectValue ?? []).filter { $0.key != "time" }
                if let index = members.firstIndex(where: { $0.key == "undoes" }),
                    var undone = members[index].value.objectValue
                {
                    undone.removeAll { $0.key == "time" }
                    members[index].value = .object(undone)
                }
                members.removeAll { $0.key == "reason" && entry["action"]?.stringValue == "undo" }
                return JSONValue.object(members).jsonText
            }
            let apiAudit = GateFixture.audit(harness).map(withoutTimes)
            #expect(apiAudit.count == 6)
            #expect(apiAudit == copy.audit.map(withoutTimes))
            #expect(
                try harness.diffStore.triageDecisions().map(\.decision)
                    == copy.store().triageDecisions().map(\.decision))
        }
    }

    @Test func withNoProxyRunningTheCLIEditsTheFileUnlessAdminWasGiven() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        let closedPort = try ClosedPort()
        defer { closedPort.release() }
        let closed = "http://127.0.0.1:\(closedPort.port)"
        var options = try ControlOptions.parse(["--routes", copy.routesPath, "--data", copy.dataDirectory])
        let session = try await ControlSession.open(options, defaultAdmin: closed)
        #expect(session.target == "\(copy.routesPath) (no proxy running)")
        // Backwards from coexist needs no evidence: done on the file, audited.
        let change = try await session.stage(
            selector: "contacts.get", to: .transform, expectedHash: try await session.table().contentHash, reason: "r",
            force: false)
        #expect(change.changed == [StageChange(route: "contacts.get", from: .coexist, to: .transform)])
        #expect(
            try RouteTable.parse(String(contentsOfFile: copy.routesPath, encoding: .utf8)).route(id: "contacts.get")?
                .stage == .transform)
        #expect(copy.audit.count == 1)

        options.routes = copy.directory.appendingPathComponent("missing.json").path
        await #expect(throws: CommandFailure.self) { try await ControlSession.open(options, defaultAdmin: closed) }
        do {
            _ = try await ControlSession.open(options, defaultAdmin: closed)
        } catch {
            #expect(error.status == 3 && error.message.contains("no proxy answers at \(closed), and there is no"))
        }
        // --admin given: never the file.
        let explicit = try await run([
            "routes", "--admin", closed, "--routes", copy.routesPath, "--data", copy.dataDirectory,
        ])
        #expect(explicit.status == 3)
        // An invalid routes.json on the file path is a validation error.
        try #"{"monolith":"http://127.0.0.1:1","routes":[{"id":"a"}]}"#.write(
            toFile: copy.routesPath, atomically: true, encoding: .utf8)
        let invalid = try await run(["routes"] + copy.cli)
        #expect(invalid.status == 2 && invalid.error.contains("$.routes[0].method: is required"))
    }

    @Test func usageErrorsExitWith2() async throws {
        #expect(await Strangler.execute(["stage", "contacts.get", "coexist"]) == 2)  // no --reason
        #expect(await Strangler.execute(["stage", "contacts.get", "sideways", "--reason", "r"]) == 2)
        #expect(await Strangler.execute(["promote", "contacts.get", "--force"]) == 2)  // --force without --reason
        #expect(await Strangler.execute(["triage", "r", "s", "--reason", "r"]) == 2)  // neither --accept nor --ignore
        #expect(await Strangler.execute(["triage", "r", "s", "--accept", "--ignore", "--reason", "r"]) == 2)
        #expect(await Strangler.execute(["history", "--limit", "0"]) == 2)
        #expect(await Strangler.execute(["routes", "--output", "yaml"]) == 2)
        #expect(await Strangler.execute(["routes", "--file", "--admin", "http://127.0.0.1:1"]) == 2)
        #expect(await Strangler.execute(["stage", "--help"]) == 0)
    }

    @Test func everyRouteCommandHasAnExampleInItsHelp() {
        let commands: [any ParsableCommand.Type] = [
            RoutesCommand.self, StageCommand.self, PromoteCommand.self, RollbackCommand.self, UndoCommand.self,
            HistoryCommand.self, TriageCommand.self,
        ]
        for command in commands {
            let help = command.helpMessage()
            #expect(help.contains("Example"), "\(command)")
            #expect(help.contains("Exit status"), "\(command)")
        }
    }

    @Test func readingCommandsTakeNoActorAndChangingOnesSayTheirDefault() {
        for command in [RoutesCommand.self, HistoryCommand.self, ReportCommand.self] as [any ParsableCommand.Type] {
            let help = command.helpMessage(columns: 400)
            #expect(!help.contains("--actor"), "\(command)")
            #expect(!help.contains("edited"), "\(command)")
        }
        for command in [
            StageCommand.self, PromoteCommand.self, RollbackCommand.self, UndoCommand.self, TriageCommand.self,
        ] as [any ParsableCommand.Type] {
            #expect(command.helpMessage(columns: 400).contains("(default: $USER, else strangler-cli)"), "\(command)")
        }
    }

    @Test func routesTakesAPatternLikeStage() async throws {
        try await ProxyHarness.runGates { harness in
            let group = try await run(["routes", "contacts.*", "--output", "json"] + harness.cli)
            #expect(group.status == 0)
            let ids = (jsonValue(group.output)["routes"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(ids == ["contacts.get", "contacts.list", "contacts.create"])
            let one = try await run(["routes", "contacts.li?t", "--output", "json"] + harness.cli)
            #expect(
                (jsonValue(one.output)["routes"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue } == [
                    "contacts.list"
                ])
            let text = try await run(["routes", "contacts.*"] + harness.cli)
            #expect(
                text.output.contains("\n3 of 4 routes (2 coexist, 1 transform); table ")
                    || text.output.contains("\n3 of 4 routes (1 transform, 2 coexist); table "), "\(text.output)")
            let none = try await run(["routes", "orders.*"] + harness.cli)
            #expect(none.status == 2 && none.error.contains(#"no route id matches "orders.*""#))
        }
    }

    @Test func coloursOnlyOnATerminalAndNeverWithNoColour() {
        #expect(TerminalStyle.detect(environment: ["NO_COLOR": "1"]).colours == false)
        // Tests do not run on a terminal.
        #expect(TerminalStyle.detect(environment: [:]).colours == false)
        let style = TerminalStyle(colours: true)
        var table = TextTable(headers: ["A", "B", "C"])
        table.rows = [[style.paint("coexist", .yellow), "x", "end"], ["transform", "yy", "z"]]
        let lines = table.render(style: .plain).split(separator: "\n").map(String.init)
        #expect(lines[0] == "A          B   C")
        #expect(lines[1] == "\u{1B}[33mcoexist\u{1B}[0m    x   end")
        #expect(lines[2] == "transform  yy  z")
    }
}

@Suite("strangler --help texts")
struct HelpTextTests {
    /// Every command, subcommands of subcommands included.
    static func commands(_ root: any ParsableCommand.Type = Strangler.self) -> [any ParsableCommand.Type] {
        [root] + root.configuration.subcommands.flatMap { Self.commands($0) }
    }

    /// Paragraphs are written as one line each (Swift's `\` continuations), so the help wraps them at the terminal's
    /// width: a hard line break inside a paragraph, or a run of spaces from a joined line, shows as a ragged gap.
    @Test func discussionsHaveNoHardBreaksInsideParagraphsNorStrayGaps() {
        for command in Self.commands() {
            let lines = command.configuration.discussion.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() where !line.isEmpty && !line.hasPrefix(" ") && !line.hasPrefix("- ")
            {
                #expect(!line.contains("   "), "\(command): \(line)")
                guard index + 1 < lines.count else { continue }
                let next = lines[index + 1]
                #expect(
                    next.isEmpty || next.hasPrefix(" ") || next.hasPrefix("- "),
                    "\(command): a paragraph breaks after \"\(line.suffix(40))\"")
            }
            let text = command.configuration.discussion
            if text.contains("Exit status") {
                #expect(
                    text.contains("\n\nExit status") || text.hasPrefix("Exit status"),
                    "\(command): Exit status is its own paragraph")
            }
        }
    }

    @Test func theTopLevelExampleLeadsWithUpAsTheReadmeDoes() {
        let discussion = Strangler.configuration.discussion
        #expect(discussion.contains("  strangler up\n"))
        #expect(!discussion.contains("strangler monolith"))
    }
}
