import ArgumentParser
import Foundation
import Gateway
import JSON
import Logging
import Proxy
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import StranglerCommands

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the CLI finds a running proxy (`--admin`, `STRANGLER_ADMIN`, `<data>/proxy.json`), and that it never edits
/// the file a proxy serves.
@Suite("The CLI finds the proxy")
struct ProxyPresenceTests {
    /// No process has this id (above Linux's largest pid_max).
    static let deadPID: Int32 = 99_999_999

    @Test func aRecordNamesALiveProcessOrIsIgnored() throws {
        let copy = try FileCopy(routes: "{}")
        defer { copy.remove() }
        #expect(try ProxyPresence.live(in: copy.dataDirectory) == nil)
        let mine = ProxyPresence(
            admin: "http://127.0.0.1:1", pid: getpid(), routes: ProxyPresence.canonicalPath(copy.routesPath))
        try mine.write(in: copy.dataDirectory)
        #expect(try ProxyPresence.live(in: copy.dataDirectory) == mine)
        #expect(mine.serves(copy.routesPath))
        // The same file by another spelling of its path.
        #expect(mine.serves(copy.directory.appendingPathComponent("data/../routes.json").path))

        // One that another proxy wrote since is not removed by this one.
        let other = ProxyPresence(admin: "http://127.0.0.1:2", pid: getpid(), routes: mine.routes)
        try other.write(in: copy.dataDirectory)
        mine.remove(from: copy.dataDirectory)
        #expect(try ProxyPresence.live(in: copy.dataDirectory) == other)
        other.remove(from: copy.dataDirectory)
        #expect(!FileManager.default.fileExists(atPath: ProxyPresence.path(in: copy.dataDirectory)))

        // A proxy killed outright leaves its record: a dead pid is no proxy.
        try ProxyPresence(admin: "http://127.0.0.1:3", pid: Self.deadPID, routes: mine.routes)
            .write(in: copy.dataDirectory)
        #expect(try ProxyPresence.live(in: copy.dataDirectory) == nil)
    }

    /// Two proxies on one data directory would share its diff store, audit log and presence record.
    @Test func aSecondProxyOnALiveProxysDataDirectoryIsRefused() throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        // pid 1 is always alive: it stands for the other proxy's process.
        try ProxyPresence(admin: "http://127.0.0.1:7", pid: 1, routes: ProxyPresence.canonicalPath(copy.routesPath))
            .write(in: copy.dataDirectory)
        let configuration = ProxyConfiguration.testing(
            routesPath: copy.routesPath, dataDirectory: copy.dataDirectory, token: "t")
        do {
            _ = try ProxyApplication(configuration: configuration, logger: Logger(label: "test"))
            Issue.record("a second proxy started on a live proxy's data directory")
        } catch let error as DataDirectoryInUse {
            #expect(error.description.contains("another proxy (pid 1, admin API http://127.0.0.1:7) uses the data"))
        }
        #expect(try ProxyPresence.live(in: copy.dataDirectory)?.pid == 1, "the other's record is left alone")
    }

    @Test(arguments: [
        ("[]", "must be an object"),
        ("not json", "not JSON"),
        (#"{"admin":"ftp://x","pid":1,"routes":"/r"}"#, "$.admin must be an http:// or https:// URL"),
        (#"{"admin":"http://127.0.0.1:1","pid":1.5,"routes":"/r"}"#, "$.pid must be a process id"),
        (#"{"admin":"http://127.0.0.1:1","pid":1,"routes":"r.json"}"#, "$.routes must be an absolute path"),
    ])
    func aMalformedRecordIsRefusedWithWhereAndWhy(text: String, reason: String) throws {
        let copy = try FileCopy(routes: "{}")
        defer { copy.remove() }
        try FileManager.default.createDirectory(atPath: copy.dataDirectory, withIntermediateDirectories: true)
        let path = ProxyPresence.path(in: copy.dataDirectory)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let failure = #expect(throws: CommandFailure.self) {
            try AdminOptions.parse(["--data", copy.dataDirectory]).resolve(environment: [:])
        }
        #expect(failure?.status == ControlExit.usage)
        #expect(failure?.message.hasPrefix(path + ": " + reason) == true)
    }

    @Test func theAdminURLComesFromTheFlagThenTheEnvironmentThenTheRecord() throws {
        let copy = try FileCopy(routes: "{}")
        defer { copy.remove() }
        let presence = ProxyPresence(
            admin: "http://127.0.0.1:3", pid: getpid(), routes: ProxyPresence.canonicalPath(copy.routesPath))
        try presence.write(in: copy.dataDirectory)
        let environment = ["STRANGLER_ADMIN": "http://127.0.0.1:2"]
        let flagged = try AdminOptions.parse(["--admin", "http://127.0.0.1:1", "--data", copy.dataDirectory])
        #expect(try flagged.resolve(environment: environment) == ("http://127.0.0.1:1", .flag))
        let plain = try AdminOptions.parse(["--data", copy.dataDirectory])
        #expect(try plain.resolve(environment: environment) == ("http://127.0.0.1:2", .environment))
        #expect(try plain.resolve(environment: ["STRANGLER_ADMIN": ""]) == (presence.admin, .presence(presence)))
        presence.remove(from: copy.dataDirectory)
        #expect(try plain.resolve(environment: [:]) == (AdminOptions.defaultAdmin, .fallback))
    }

    @Test func aBadAdminURLIsRefusedNamingWhereItCameFrom() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        let options = try ControlOptions.parse(["--routes", copy.routesPath, "--data", copy.dataDirectory])
        let failure = await #expect(throws: CommandFailure.self) {
            _ = try await ControlSession.open(options, environment: ["STRANGLER_ADMIN": "ftp://127.0.0.1:1"])
        }
        #expect(failure?.status == ControlExit.usage)
        #expect(
            failure?.message.hasPrefix("STRANGLER_ADMIN must be an http or https URL") == true,
            "\(failure?.message ?? "")")
    }

    @Test func theCLINeverEditsAFileAProxyServes() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        let before = try String(contentsOfFile: copy.routesPath, encoding: .utf8)
        try ProxyPresence(
            admin: "http://127.0.0.1:1", pid: getpid(), routes: ProxyPresence.canonicalPath(copy.routesPath)
        ).write(in: copy.dataDirectory)
        let outcome = try await run(["rollback", "contacts.get", "--reason", "r"] + copy.cli)
        #expect(outcome.status == ControlExit.usage)
        #expect(outcome.error.contains("a proxy (pid \(getpid())) serves \(copy.routesPath)"))
        #expect(outcome.error.contains("--admin http://127.0.0.1:1"))
        #expect(try String(contentsOfFile: copy.routesPath, encoding: .utf8) == before)
        #expect(copy.audit.isEmpty)

        // A registered proxy that does not answer is an error, never a reason to edit the file.
        let session = await #expect(throws: CommandFailure.self) {
            _ = try await ControlSession.open(
                try ControlOptions.parse(["--routes", copy.routesPath, "--data", copy.dataDirectory]),
                environment: [:])
        }
        #expect(session?.status == ControlExit.unreachable)
        #expect(session?.message.contains("the proxy that wrote") == true)
        #expect(try String(contentsOfFile: copy.routesPath, encoding: .utf8) == before)
    }

    @Test func aRunningProxyIsFoundThroughItsDataDirectory() async throws {
        // A data directory that outlives the harness, to see the record go when the proxy stops.
        let copy = try FileCopy(routes: "{}")
        defer { copy.remove() }
        let dataDirectory = copy.dataDirectory
        let path = ProxyPresence.path(in: dataDirectory)
        try await ProxyHarness.run(configure: { $0.dataDirectory = dataDirectory }) { harness in
            #expect(await eventually { FileManager.default.fileExists(atPath: path) })
            let presence = try #require(try ProxyPresence.live(in: dataDirectory))
            #expect(presence.admin == "http://127.0.0.1:\(harness.adminPort)")
            #expect(presence.pid == getpid())
            #expect(presence.serves(harness.routesPath))
            // No --admin: the command goes to this proxy, on its own port (not 8090).
            let options = try ControlOptions.parse([
                "--routes", harness.routesPath, "--data", dataDirectory, "--token-file", harness.tokenFile,
            ])
            let session = try await ControlSession.open(options, environment: [:])
            #expect(session.target == "the proxy at http://127.0.0.1:\(harness.adminPort)")
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}

@Suite("Hints the CLI prints work as printed")
struct CommandHintTests {
    @Test func undoAsSuggestedReachesTheSameTable() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        // Paths that need quoting, away from the defaults.
        let folder = copy.directory.appendingPathComponent("team's files")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let routes = folder.appendingPathComponent("my routes.json").path
        try FileManager.default.moveItem(atPath: copy.routesPath, toPath: routes)
        let data = folder.appendingPathComponent("state").path
        let moved = try await run([
            "rollback", "contacts.get", "--reason", "r", "--file", "--routes", routes, "--data", data,
        ])
        #expect(moved.status == 0, "\(moved.error)")
        let hint = try #require(moved.output.components(separatedBy: "undo with: ").last)
            .trimmingCharacters(in: .newlines)
        #expect(
            hint == "strangler undo --data '\(data.replacingOccurrences(of: "'", with: #"'\''"#))' "
                + "--routes '\(routes.replacingOccurrences(of: "'", with: #"'\''"#))' --file")
        let words = DocsTests.shellWords(hint)
        #expect(words.first == "strangler")
        let undone = try await run(Array(words.dropFirst()))
        #expect(undone.status == 0, "\(undone.error)")
        let table = try String(contentsOfFile: routes, encoding: .utf8)
        #expect(table.contains(#""stage": "coexist""#) || table.contains(#""stage":"coexist""#))
    }

    @Test func aMissingRouteNamesTheListingCommandWithItsFlags() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        let outcome = try await run(["promote", "nope.get"] + copy.cli)
        #expect(outcome.status == ControlExit.usage)
        #expect(
            outcome.error.contains(
                "(strangler routes --data \(copy.dataDirectory) --routes \(copy.routesPath) --file lists them)"))
    }
}

@Suite("Hand edits of the routes file are audited")
struct HandEditTests {
    @Test func aHandEditAppearsInHistoryAndUndoRevertsIt() async throws {
        try await ProxyHarness.run { harness in
            let text = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let edited = text.replacingOccurrences(
                of:
                    #""id": "slow.get", "method": "GET", "path": "/slow/{id}", "service": "contacts", "stage": "transform""#,
                with:
                    #""id": "slow.get", "method": "GET", "path": "/slow/{id}", "service": "contacts", "stage": "eliminate""#
            )
            #expect(edited != text)
            try edited.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            await harness.proxy.control.reloadIfChanged()
            let entries = try await harness.proxy.control.auditEntries()
            let entry = try #require(entries.last)
            #expect(entry["action"]?.stringValue == "edit")
            #expect(entry["reason"]?.stringValue == "routes.json edited by hand")
            #expect(entry["actor"]?.stringValue?.isEmpty == false)
            #expect(entry["file"]?.stringValue == harness.routesPath)
            #expect(
                StageChange.changes(entry["changes"]) == [
                    StageChange(route: "slow.get", from: .transform, to: .eliminate)
                ])

            let history = try await run(["history"] + harness.cli)
            #expect(history.status == 0, "\(history.error)")
            #expect(history.output.contains("edited by hand: slow.get transform→eliminate"))
            #expect(history.output.contains("routes.json edited by hand"))

            // The proxy's own writes are not taken for hand edits; undo puts the table back and says what it undid.
            let undone = try await run(["undo", "--reason", "not by hand"] + harness.cli)
            #expect(undone.status == 0, "\(undone.error)")
            #expect(undone.output.contains("slow.get: eliminate → transform"), "\(undone.output)")
            await harness.proxy.control.reloadIfChanged()
            let after = try await harness.proxy.control.auditEntries()
            #expect(after.count == entries.count + 1)
            #expect(after.last?["action"]?.stringValue == "undo")
        }
    }

    @Test func undoRefusesATableNoOneAudited() async throws {
        // With no proxy running nothing watches the file: an edit then is in no audit entry, and undo refuses to
        // put back a table over it.
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        let moved = try await run(["rollback", "contacts.get", "--reason", "r"] + copy.cli)
        #expect(moved.status == 0, "\(moved.error)")
        let text = try String(contentsOfFile: copy.routesPath, encoding: .utf8)
        let edited = text.replacingOccurrences(of: #""id": "dead.get","#, with: #""id": "dead.get", "timeout": "5s","#)
        #expect(edited != text)
        try edited.write(toFile: copy.routesPath, atomically: true, encoding: .utf8)
        let undo = try await run(["undo"] + copy.cli)
        #expect(undo.status == ControlExit.refused)
        #expect(undo.error.contains("it changed since"), "\(undo.error)")
        #expect(try String(contentsOfFile: copy.routesPath, encoding: .utf8) == edited)
    }

    @Test func anEditWithoutStageMovesNamesTheRoutesItChanged() async throws {
        try await ProxyHarness.run { harness in
            let text = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let edited = text.replacingOccurrences(of: #""timeout": "300ms""#, with: #""timeout": "400ms""#)
            #expect(edited != text)
            try edited.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            await harness.proxy.control.reloadIfChanged()
            let history = try await run(["history"] + harness.cli)
            #expect(history.output.contains("edited by hand: sleep.get"), "\(history.output)")
        }
    }
}
