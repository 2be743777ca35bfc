import ArgumentParser
import Foundation
import Gateway
import JSON
import Logging
import ProxyTestSupport
import RouteTable
import Testing

@testable import AdminAPI
@testable import ControlPlane
@testable import Proxy
@testable import Reports
@testable import StranglerCommands

/// The admin API and the routes file under hostile or unlucky input: a change that cannot be served is refused before
/// anything is written, a whole-table PUT passes the same gates as a stage change, files are the owner's, and no
/// symbolic link decides what is written.
@Suite("Proxy: control-plane safety")
struct ControlSafetyTests {
    /// A table whose `ghost` service names a host that does not resolve (`.invalid` is reserved: RFC 6761).
    static func unresolvable(monolith: Int, service: Int) -> String {
        ProxyHarness.routes(monolith: monolith, service: service)
            .replacingOccurrences(
                of: #""dead": "http://127.0.0.1:1""#,
                with: #""dead": "http://127.0.0.1:1", "ghost": "http://no-such-host.invalid:80""#)
    }

    @Test func aPutWhoseHostDoesNotResolveChangesNothingAndTheNextChangeWorks() async throws {
        try await ProxyHarness.run { harness in
            let fileBefore = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let etag = try await harness.etag()
            let bad = Self.unresolvable(monolith: harness.monolithPort, service: harness.servicePort)
            let refused = try await harness.admin("PUT", "/admin/routes", headers: ["If-Match: \(etag)"], body: bad)
            #expect(refused.status == 422)
            let error = jsonValue(refused.body)["error"]
            #expect(error?["code"]?.stringValue == "invalid_routes")
            let problem = error?["problems"]?.at(0)
            #expect(problem?["path"]?.stringValue == "$.services.ghost")
            #expect(problem?["reason"]?.stringValue?.contains(#"host "no-such-host.invalid" does not resolve"#) == true)
            // Nothing written, nothing audited, nothing swapped.
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == fileBefore)
            #expect(!FileManager.default.fileExists(atPath: harness.auditPath))
            #expect(harness.proxy.store.snapshot.version == 1)
            #expect(try await harness.etag() == etag)
            // The ETag read before still works: no 412 jam.
            let timeout = fileBefore.replacingOccurrences(
                of: #""path": "/dead", "service": "dead", "stage": "eliminate""#,
                with: #""path": "/dead", "service": "dead", "stage": "eliminate", "timeout": "2s""#)
            #expect(timeout != fileBefore)
            let next = try await harness.admin("PUT", "/admin/routes", headers: ["If-Match: \(etag)"], body: timeout)
            #expect(next.status == 200)
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == timeout)
            let stage = try await harness.stage("contacts.get", "transform")
            #expect(stage.status == 200)
        }
    }

    @Test func aStageChangeWhoseTableCannotResolveIsRefusedTooAndTheCLIFileEditLeavesNoTrace() async throws {
        // The same rule on the CLI's file path (no proxy): the table is checked whole before routes.json is touched.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-resolve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let routes = directory.appendingPathComponent("routes.json").path
        let data = directory.appendingPathComponent("data").path
        let text = Self.unresolvable(monolith: 1, service: 2)
        try text.write(toFile: routes, atomically: true, encoding: .utf8)
        let table = try RouteTable.parse(text)
        #expect(throws: RouteTableError.self) { try RouteTableStore(table: table, text: text) }
        let result = try await run([
            "stage", "contacts.get", "coexist", "--file", "--routes", routes, "--data", data, "--reason", "t",
            "--force",
        ])
        #expect(result.status == 2)
        #expect(result.error.contains("$.services.ghost"))
        #expect(try String(contentsOfFile: routes, encoding: .utf8) == text)
        #expect(
            !FileManager.default.fileExists(
                atPath: URL(fileURLWithPath: data).appendingPathComponent("audit.jsonl").path))
    }

    @Test func aHandEditTheWatcherHasNotReadIsLoadedAndItsETagWorks() async throws {
        try await ProxyHarness.run(configure: { $0.watchInterval = .seconds(3600) }) { harness in
            let etag = try await harness.etag()
            let edited = ProxyHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "coexist")
            try edited.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            // The operator's change still carries the ETag read before the edit: refused as stale, and the edit is live
            // now.
            let stale = try await harness.admin(
                "POST", "/admin/stage", headers: ["If-Match: \(etag)"],
                body: #"{"routes":"dead.get","stage":"transform","reason":"r"}"#)
            #expect(stale.status == 412)
            let current = try #require(jsonValue(stale.body)["error"]?["currentHash"]?.stringValue)
            #expect(current == RouteTable.contentHash(of: edited))
            #expect(try await harness.etag() == "\"\(current)\"")
            #expect(harness.stageOf("contacts.get") == .coexist)
            let next = try await harness.admin(
                "POST", "/admin/stage", headers: ["If-Match: \(current)"],
                body: #"{"routes":"dead.get","stage":"transform","reason":"r"}"#)
            #expect(next.status == 200)
            #expect(harness.stageOf("dead.get") == .transform)
        }
    }

    @Test func aChangeOverAnInvalidHandEditIsRefusedWithWhyAndTheEditIsKept() async throws {
        try await ProxyHarness.run(configure: { $0.watchInterval = .seconds(3600) }) { harness in
            let etag = try await harness.etag()
            let broken = #"{ "monolith": "http://127.0.0.1:1", "routes": [ { "id": "x" "#
            try broken.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            let refused = try await harness.admin(
                "POST", "/admin/stage", headers: ["If-Match: \(etag)"],
                body: #"{"routes":"contacts.get","stage":"coexist","reason":"r","force":true}"#)
            #expect(refused.status == 409)
            let error = jsonValue(refused.body)["error"]
            #expect(error?["code"]?.stringValue == "routes_file_invalid")
            #expect(error?["message"]?.stringValue?.contains("was edited since the live table") == true)
            #expect(error?["message"]?.stringValue?.contains("not valid JSON") == true)
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == broken)
            #expect(harness.proxy.store.snapshot.version == 1)
            // Once the file is valid again, the proxy's ETag works once more.
            let fixed = ProxyHarness.routes(monolith: harness.monolithPort, service: harness.servicePort)
            try fixed.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            let again = try await harness.admin(
                "POST", "/admin/stage", headers: ["If-Match: \(etag)"],
                body: #"{"routes":"contacts.get","stage":"coexist","reason":"r","force":true}"#)
            #expect(again.status == 200)
        }
    }

    // MARK: PUT through the gates

    @Test func aPutThatMovesAStagePassesTheSameGatesAsAStageChange() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, lag: 0, reconcileClean: true)
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            // contacts.create (a write, coexist) straight to eliminate with no dry-run evidence.
            let jump = before.replacingOccurrences(
                of: #""service": "contacts", "stage": "coexist", "shadow""#,
                with: #""service": "contacts", "stage": "eliminate", "shadow""#)
            #expect(jump != before)
            let stageAnswer = try await harness.admin(
                "POST", "/admin/stage", headers: ["If-Match: \(try await harness.etag())"],
                body: #"{"routes":"contacts.create","stage":"eliminate","reason":"r"}"#)
            #expect(stageAnswer.status == 409)
            let refused = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: jump)
            #expect(refused.status == 409)
            let error = jsonValue(refused.body)["error"]
            #expect(error?["code"]?.stringValue == "gate_refused")
            #expect(error?["refusals"]?.at(0)?["route"]?.stringValue == "contacts.create")
            #expect(
                error?["refusals"]?.at(0)?["reasons"]
                    == jsonValue(stageAnswer.body)["error"]?["refusals"]?.at(0)?["reasons"])
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == before)
            #expect(harness.stageOf("contacts.create") == .coexist)

            // A route that is new in the table moves from transform: a new route straight into eliminate is gated too.
            let added = before.replacingOccurrences(
                of: #"{ "id": "dead.get""#,
                with:
                    #"{ "id": "contacts.delete", "method": "DELETE", "path": "/contacts/{id}", "service": "contacts", "#
                    + #""stage": "eliminate" }, { "id": "dead.get""#
            )
            let newRoute = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: added)
            #expect(newRoute.status == 409)
            #expect(jsonValue(newRoute.body)["error"]?["refusals"]?.at(0)?["from"]?.stringValue == "transform")

            // force needs a reason; with one, it goes through and the audit entry says it was forced, and over what.
            let noReason = try await harness.admin(
                "PUT", "/admin/routes?force=true", headers: ["If-Match: \(try await harness.etag())"], body: jump)
            #expect(noReason.status == 422)
            #expect(jsonValue(noReason.body)["error"]?["code"]?.stringValue == "reason_required")
            let badForce = try await harness.admin(
                "PUT", "/admin/routes?force=yes", headers: ["If-Match: \(try await harness.etag())"], body: jump)
            #expect(badForce.status == 422)
            let forced = try await harness.admin(
                "PUT", "/admin/routes?force=true",
                headers: [
                    "If-Match: \(try await harness.etag())", "X-Strangler-Reason: incident 42",
                    "X-Strangler-Actor: ops",
                ],
                body: jump)
            #expect(forced.status == 200)
            #expect(jsonValue(forced.body)["forced"]?.boolValue == true)
            #expect(harness.stageOf("contacts.create") == .eliminate)
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(entry["action"]?.stringValue == "replace")
            #expect(entry["forced"]?.boolValue == true)
            #expect(entry["reason"]?.stringValue == "incident 42")
            #expect(entry["actor"]?.stringValue == "ops")
            #expect(entry["changes"] == jsonValue(#"[{"route":"contacts.create","from":"coexist","to":"eliminate"}]"#))
            #expect(entry["overridden"]?.at(0)?["route"]?.stringValue == "contacts.create")
        }
    }

    @Test func aPutIsJudgedByTheGatesInForceNotTheOnesItBrings() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, lag: 0, reconcileClean: true)
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let lax =
                #", "gates": { "eliminate": { "minSamples": 0, "minMatchRate": 0, "reconcile": false, "triage": false,"#
                + #" "dryRun": false, "reverseSync": false } } }"#
            let relaxed = String(before.dropLast(2)) + lax
            let jump = relaxed.replacingOccurrences(
                of: #""service": "contacts", "stage": "coexist", "shadow""#,
                with: #""service": "contacts", "stage": "eliminate", "shadow""#)
            #expect(try RouteTable.parse(jump).gates != GatePolicy.defaults)
            let refused = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: jump)
            #expect(refused.status == 409)
            let refusals = jsonValue(refused.body)["error"]?["refusals"]?.arrayValue ?? []
            #expect(
                refusals.contains {
                    $0["route"]?.stringValue == "*"
                        && $0["reasons"]?.at(0)?.stringValue?.contains("changes the gates themselves") == true
                })
            // The move itself is judged by the gates in force: no dry-run comparisons, no reverse sync.
            #expect(refusals.contains { $0["route"]?.stringValue == "contacts.create" })
            // The gates alone, without a move, still need force and a reason.
            let gatesOnly = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: relaxed)
            #expect(gatesOnly.status == 409)
            let forced = try await harness.admin(
                "PUT", "/admin/routes?force=true&reason=policy%20review",
                headers: ["If-Match: \(try await harness.etag())"], body: relaxed)
            #expect(forced.status == 200)
            #expect(GateFixture.audit(harness).last?["forced"]?.boolValue == true)
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == relaxed)
        }
    }

    @Test func aPutThatRedefinesOrDropsARouteOutOfTransformIsGated() async throws {
        try await ProxyHarness.run { harness in
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            // sleep.get stays in eliminate but would answer other requests: no evidence for those, judged from
            // transform.
            let moved = before.replacingOccurrences(of: #""path": "/sleep""#, with: #""path": "/sleep/{anything}""#)
            #expect(moved != before)
            let redefined = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: moved)
            #expect(redefined.status == 409)
            let refusal = jsonValue(redefined.body)["error"]?["refusals"]?.at(0)
            #expect(refusal?["route"]?.stringValue == "sleep.get" && refusal?["from"]?.stringValue == "transform")
            // contacts.create (a write in eliminate) dropped: its writes would go back to the monolith, which is the
            // rollback gate's to allow (reverse sync must run; the test monolith has none).
            let withoutCreate = before.replacingOccurrences(
                of:
                    #"{ "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "contacts", "#
                    + #""stage": "eliminate" },"#,
                with: "")
            #expect(withoutCreate != before)
            let dropped = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: withoutCreate)
            #expect(dropped.status == 409)
            let droppedRefusal = jsonValue(dropped.body)["error"]?["refusals"]?.at(0)
            #expect(
                droppedRefusal?["route"]?.stringValue == "contacts.create"
                    && droppedRefusal?["to"]?.stringValue == "transform")
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == before)
        }
    }

    @Test func undoingTheUndoOfAForcedMoveIsAuditedAsForced() async throws {
        try await ProxyHarness.runGates { harness in
            #expect(
                try await harness.stage("contacts.create", "eliminate", reason: "incident 7", force: true).status == 200
            )
            #expect(GateFixture.audit(harness).last?["forced"]?.boolValue == true)
            #expect(try await harness.admin("POST", "/admin/undo", headers: ["X-Strangler-Reason: back"]).status == 200)
            #expect(harness.stageOf("contacts.create") == .coexist)
            #expect(
                GateFixture.audit(harness).last?["forced"] == nil, "undoing a forced move is a rollback: not forced")
            #expect(
                try await harness.admin("POST", "/admin/undo", headers: ["X-Strangler-Reason: again"]).status == 200)
            #expect(harness.stageOf("contacts.create") == .eliminate)
            let redo = try #require(GateFixture.audit(harness).last)
            #expect(redo["action"]?.stringValue == "undo")
            #expect(redo["forced"]?.boolValue == true)
            #expect(redo["overridden"]?.at(0)?["route"]?.stringValue == "contacts.create")
        }
    }

    @Test func aPutWithoutStageMovesNeedsNoGateAndSaysNothingMoved() async throws {
        try await ProxyHarness.runGates { harness in
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let longer = before.replacingOccurrences(
                of: #""path": "/dead", "service": "dead", "stage": "transform""#,
                with: #""path": "/dead", "service": "dead", "stage": "transform", "timeout": "5s""#)
            let answer = try await harness.admin(
                "PUT", "/admin/routes", headers: ["If-Match: \(try await harness.etag())"], body: longer)
            #expect(answer.status == 200)
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(entry["changes"] == .array([]))
            #expect(entry["forced"]?.boolValue == false)
        }
    }

    // MARK: Files

    @Test func aStageChangeRewritesOnlyTheStageAndUndoRestoresTheFileExactly() async throws {
        try await ProxyHarness.run { harness in
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            #expect(try await harness.stage("contacts.get", "coexist", force: true).status == 200)
            let after = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let expected = before.replacingOccurrences(
                of: #""path": "/contacts/{id}", "service": "contacts", "stage": "transform""#,
                with: #""path": "/contacts/{id}", "service": "contacts", "stage": "coexist""#)
            #expect(expected != before)
            #expect(after == expected)
            let undo = try await harness.admin("POST", "/admin/undo", headers: ["X-Strangler-Reason: back"])
            #expect(undo.status == 200)
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == before)
        }
    }

    @Test func theRoutesFileIsNeverWrittenThroughAPlantedLink() async throws {
        try await ProxyHarness.run { harness in
            let directory = harness.directory
            let victim = directory.appendingPathComponent("victim.txt").path
            try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
            // The temporary file's name was once predictable (`.routes.json.tmp-<pid>`): a link there was followed.
            try FileManager.default.createSymbolicLink(
                atPath: directory.appendingPathComponent(".routes.json.tmp-\(getpid())").path,
                withDestinationPath: victim)
            let stage = try await harness.stage("contacts.get", "coexist", force: true)
            #expect(stage.status == 200)
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
            let attributes = try FileManager.default.attributesOfItem(atPath: harness.routesPath)
            #expect(attributes[.type] as? FileAttributeType == .typeRegular)
            #expect(harness.stageOf("contacts.get") == .coexist)
            // No temporary file is left behind.
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
                $0.hasPrefix(".routes.json.tmp-") && $0 != ".routes.json.tmp-\(getpid())"
            }
            #expect(left.isEmpty)
        }
    }

    @Test func aRoutesFileThatIsALinkIsRefusedAtStartOnReloadAndByTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-link-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let real = directory.appendingPathComponent("real.json").path
        let link = directory.appendingPathComponent("routes.json").path
        try ProxyHarness.routes(monolith: 1, service: 2).write(toFile: real, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        var configuration = ProxyConfiguration()
        configuration.routesPath = link
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.adminToken = "t"
        do {
            _ = try ProxyApplication(configuration: configuration, logger: Logger(label: "test"))
            Issue.record("a symlinked routes.json was accepted")
        } catch let error as RouteTableError {
            #expect(error.description.contains("is a symbolic link (to \(real))"))
        }
        let result = try await run(["routes", "--file", "--routes", link, "--data", configuration.dataDirectory])
        #expect(result.status == 2)
        #expect(result.error.contains("is a symbolic link"))
    }

    @Test func aRoutesFileReplacedByALinkWhileRunningIsRefusedAndNotWrittenThrough() async throws {
        try await ProxyHarness.run { harness in
            let real = harness.directory.appendingPathComponent("elsewhere.json").path
            let text = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            try text.write(toFile: real, atomically: true, encoding: .utf8)
            try FileManager.default.removeItem(atPath: harness.routesPath)
            try FileManager.default.createSymbolicLink(atPath: harness.routesPath, withDestinationPath: real)
            #expect(
                await eventually {
                    await harness.proxy.control.lastReloadFailure?.message.contains("is a symbolic link") == true
                })
            let refused = try await harness.stage("contacts.get", "coexist", force: true)
            #expect(refused.status == 500)
            #expect(jsonValue(refused.body)["error"]?["message"]?.stringValue?.contains("is a symbolic link") == true)
            #expect(try String(contentsOfFile: real, encoding: .utf8) == text)
            #expect(harness.stageOf("contacts.get") == .transform)
        }
    }

    @Test func theAuditLogTokenAndLockAreTheOwnersOnlyAndTheTableKeepsItsMode() async throws {
        try await ProxyHarness.run { harness in
            // An audit log left readable by an older version is made the owner's at the next entry.
            try FileManager.default.createDirectory(atPath: harness.dataDirectory, withIntermediateDirectories: true)
            FileManager.default.createFile(
                atPath: harness.auditPath, contents: Data(), attributes: [.posixPermissions: 0o644])
            try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: harness.routesPath)
            #expect(try await harness.stage("contacts.get", "coexist", force: true).status == 200)
            #expect(FileMode.of(harness.auditPath) == 0o600)
            #expect(
                FileMode.of(URL(fileURLWithPath: harness.dataDirectory).appendingPathComponent("routes.lock").path)
                    == 0o600)
            #expect(FileMode.of(harness.routesPath) == 0o640)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data").path
        let token = try AdminToken.resolve(dataDirectory: data, environment: [:])
        #expect(token.count == 64)
        #expect(FileMode.of(AdminToken.path(dataDirectory: data)) == 0o600)
        #expect(FileMode.of(data) == 0o700)
        // A token file others can read is made the owner's when it is read.
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o644], ofItemAtPath: AdminToken.path(dataDirectory: data))
        #expect(try AdminToken.resolve(dataDirectory: data, environment: [:]) == token)
        #expect(FileMode.of(AdminToken.path(dataDirectory: data)) == 0o600)
    }

    @Test func aWriterStuckHoldingTheLockDelaysAChangeButDoesNotFreezeIt() async throws {
        try await ProxyHarness.run { harness in
            try FileManager.default.createDirectory(atPath: harness.dataDirectory, withIntermediateDirectories: true)
            let lockPath = URL(fileURLWithPath: harness.dataDirectory).appendingPathComponent("routes.lock").path
            // Close-on-exec: a process another test spawns meanwhile must not inherit the descriptor, or the lock (held
            // by the open file, not by the descriptor) would outlive `close(holder)` until that process exits.
            let holder = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            #expect(holder >= 0 && flock(holder, LOCK_EX) == 0)
            let refused = try await harness.stage("contacts.get", "coexist", force: true)
            #expect(refused.status == 503)
            #expect(jsonValue(refused.body)["error"]?["code"]?.stringValue == "busy")
            #expect(
                jsonValue(refused.body)["error"]?["message"]?.stringValue?.contains("is held by another process")
                    == true)
            #expect(harness.stageOf("contacts.get") == .transform)
            // The admin API still answers meanwhile and after; once the holder lets go, the change goes through.
            #expect(try await harness.admin("GET", "/admin/status").status == 200)
            close(holder)
            #expect(try await harness.stage("contacts.get", "coexist", force: true).status == 200)
        }
    }

    // MARK: The token

    @Test func theBearerSchemeIsCaseInsensitive() async throws {
        try await ProxyHarness.run { harness in
            for header in [
                "bearer \(ProxyHarness.token)", "BEARER \(ProxyHarness.token)", "Bearer   \(ProxyHarness.token)",
            ] {
                let answer = try await harness.admin(
                    "GET", "/admin/status", token: nil, headers: ["Authorization: \(header)"])
                #expect(answer.status == 200, "\(header)")
            }
            for header in ["Basic \(ProxyHarness.token)", "Bearer", "Bearer\(ProxyHarness.token)", "bearer wrong"] {
                let answer = try await harness.admin(
                    "GET", "/admin/status", token: nil, headers: ["Authorization: \(header)"])
                #expect(answer.status == 401, "\(header)")
            }
        }
        #expect(AdminToken.bearer("bEaReR abc") == "abc")
        #expect(AdminToken.bearer("Bearerabc") == nil)
    }

    @Test func theTokenIsNeverAFlagValue() async throws {
        do {
            _ = try Strangler.parseAsRoot(["routes", "--token", "secret"])
            Issue.record("--token was accepted")
        } catch {
            let message = Strangler.message(for: error)
            #expect(Strangler.exitCode(for: error) == .validationFailure)
            #expect(message.contains("--token was removed"))
            #expect(
                message.contains("--token-file") && message.contains("--token-stdin")
                    && message.contains("STRANGLER_ADMIN_TOKEN"))
        }
        #expect(throws: (any Error).self) { try NoiseCommand.parse(["r", "--token", "secret"]) }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-tokenflags-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("token").path
        try "  from-file \n".write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try TokenOptions.parse(["--token-file", file])
        #expect(try fromFile.resolve(dataDirectory: directory.path) == "from-file")
        let fromStdin = try TokenOptions.parse(["--token-stdin"])
        #expect(try fromStdin.resolve(dataDirectory: directory.path, standardInput: { "from-stdin" }) == "from-stdin")
        #expect(throws: AdminClient.Failure.self) {
            try fromStdin.resolve(dataDirectory: directory.path, standardInput: { nil })
        }
        #expect(throws: AdminClient.Failure.self) {
            try TokenOptions.parse(["--token-file", directory.appendingPathComponent("none").path]).resolve(
                dataDirectory: directory.path)
        }
        #expect(throws: (any Error).self) { try TokenOptions.parse(["--token-file", file, "--token-stdin"]) }
    }
}
