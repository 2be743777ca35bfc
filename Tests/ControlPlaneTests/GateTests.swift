import AdminAPI
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

/// A table, upstream answers and diff-store counts for the gates' tests.

@Suite("Gates: the admin API")
struct GateAdminTests {
    @Test func eliminateIsRefusedWithEveryReasonThenAllowedOnEvidence() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, lag: 3, reconcileClean: nil)
            let refused = try await harness.stage("contacts.get", "eliminate")
            #expect(refused.status == 409)
            let error = jsonValue(refused.body)["error"]
            #expect(error?["code"]?.stringValue == "gate_refused")
            let reasons = (error?["refusals"]?.arrayValue?.first?["reasons"]?.arrayValue ?? []).compactMap(
                \.stringValue)
            #expect(
                reasons == [
                    "0 compared samples so far, needs 1000",
                    "service contacts is 3 events behind the monolith (at most 0 allowed)",
                    "service contacts was never reconciled (run: strangler reconcile contacts --routes "
                        + "\(harness.routesPath) --data \(harness.dataDirectory))",
                ])
            #expect(harness.stageOf("contacts.get") == .coexist)
            #expect(GateFixture.audit(harness).isEmpty)

            // 1,000 of 1,000: enough samples, but the 95% lower bound (99.62%) is under 99.9%.
            try GateFixture.record(harness.diffStore, route: "contacts.get", compared: 1000, matched: 1000)
            try GateFixture.prepare(harness, lag: 0, reconcileClean: true)
            let lowerBound = try await harness.stage("contacts.get", "eliminate")
            #expect(lowerBound.status == 409)
            let why = jsonValue(lowerBound.body)["error"]?["refusals"]?.at(0)?["reasons"]?.arrayValue?.compactMap(
                \.stringValue)
            #expect(why == ["match rate 100.00% of 1000: its 95% lower bound 99.61% is under 99.90%"])

            try GateFixture.record(harness.diffStore, route: "contacts.get", compared: 3000, matched: 3000)
            let allowed = try await harness.stage("contacts.get", "eliminate")
            #expect(allowed.status == 200, "\(allowed.body)")
            #expect(harness.stageOf("contacts.get") == .eliminate)
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(
                entry["route"]?.stringValue == "contacts.get" && entry["forced"] == .bool(false)
                    && entry["actor"]?.stringValue == "tester")
        }
    }

    @Test func aReconcileOlderThanTheLimitBlocksEliminate() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, lag: 0, reconcileClean: true)
            try GateFixture.record(harness.diffStore, route: "contacts.get", compared: 5000, matched: 5000)
            // A clean reconcile, but two days old.
            let old = ReconcileRecord(
                service: "contacts", time: Date().addingTimeInterval(-2 * 86_400), clean: true, compared: 40,
                missing: 0, extra: 0, differing: 0)
            try old.write(dataDirectory: harness.dataDirectory)
            let refused = try await harness.stage("contacts.get", "eliminate")
            #expect(refused.status == 409)
            let reasons =
                jsonValue(refused.body)["error"]?["refusals"]?.at(0)?["reasons"]?.arrayValue?.compactMap(\.stringValue)
                ?? []
            #expect(
                reasons.count == 1
                    && reasons.first?.hasSuffix(
                        "is older than 24h (run: strangler reconcile contacts --routes \(harness.routesPath) --data "
                            + "\(harness.dataDirectory))") == true,
                "\(reasons)")
            // A fresh one lets it through.
            try GateFixture.reconcile(clean: true, dataDirectory: harness.dataDirectory)
            #expect(try await harness.stage("contacts.get", "eliminate").status == 200)
        }
    }

    @Test func coexistNeedsTheServiceHealthyAndInSync() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, lag: 100)
            let lagging = try await harness.stage("contacts.list", "coexist")
            #expect(lagging.status == 409)
            #expect(lagging.body.contains("service contacts is 100 events behind the monolith (at most 99 allowed)"))
            let dead = try await harness.stage("dead.get", "coexist")
            #expect(dead.status == 409)
            #expect(
                dead.body.contains("service dead is not healthy: GET http://127.0.0.1:1/healthz: connection refused"),
                "\(dead.body)")
            // A service whose consumer is stuck reports no lag against the old head it saw; the monolith's own head
            // (read first) tells the truth.
            try GateFixture.prepare(harness, lag: 0)
            harness.monolith.documents.withLockedValue { $0["/events"] = #"{"items":[],"next":0,"head":150}"# }
            let stuck = try await harness.stage("contacts.list", "coexist")
            #expect(
                stuck.status == 409 && stuck.body.contains("service contacts is 140 events behind the monolith"),
                "\(stuck.body)")
            harness.monolith.documents.withLockedValue { $0["/events"] = #"{"items":[],"next":0,"head":109}"# }
            try GateFixture.prepare(harness, lag: 99)
            #expect(try await harness.stage("contacts.list", "coexist").status == 200)
            #expect(harness.stageOf("contacts.list") == .coexist)
        }
    }

    @Test func gatesAreConfigurableInRoutesJSON() async throws {
        try await ProxyHarness.runGates(
            gates: #", "gates": { "eliminate": { "minSamples": 10, "minMatchRate": 0.5, "reconcile": false } }"#
        ) { harness in
            try GateFixture.prepare(harness, reconcileClean: nil)
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 10, matched: 9,
                signatures: [("s1", "/x changed", 1)])
            let untriaged = try await harness.stage("contacts.get", "eliminate")
            #expect(untriaged.status == 409)
            #expect(untriaged.body.contains("1 untriaged mismatch signature: s1 (/x changed, 1×)"))
            let accepted = try await harness.admin(
                "POST", "/admin/triage",
                body: #"{"route":"contacts.get","signature":"s1","decision":"accept","reason":"known"}"#)
            #expect(accepted.status == 200, "\(accepted.body)")
            #expect(try await harness.stage("contacts.get", "eliminate").status == 200)
        }
    }

    @Test func forceOverridesTheGatesNeedsAReasonAndIsAudited() async throws {
        try await ProxyHarness.runGates { harness in
            let noReason = try await harness.stage("contacts.get", "eliminate", reason: nil, force: true)
            #expect(noReason.status == 422)
            #expect(jsonValue(noReason.body)["error"]?["code"]?.stringValue == "reason_required")
            let forced = try await harness.stage("contacts.get", "eliminate", reason: "incident 42", force: true)
            #expect(forced.status == 200, "\(forced.body)")
            #expect(jsonValue(forced.body)["forced"] == .bool(true))
            #expect(harness.stageOf("contacts.get") == .eliminate)
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(entry["forced"] == .bool(true))
            #expect(entry["reason"]?.stringValue == "incident 42")
            let overridden = entry["overridden"]?.at(0)?["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(overridden.contains("0 compared samples so far, needs 1000"))
            // A move that passes is not "forced", even with --force.
            let back = try await harness.stage("contacts.get", "coexist", reason: "back", force: true)
            #expect(back.status == 200)
            #expect(GateFixture.audit(harness).last?["forced"] == .bool(false))
        }
    }

    @Test func aGroupMoveIsAllOrNoneInOneSwapAndOneAuditEntry() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness)
            let before = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let version = harness.proxy.store.snapshot.version
            // contacts.list may move; dead.get may not (its service is down): neither moves.
            let refused = try await harness.stage("*", "coexist")
            #expect(refused.status == 409)
            let refusals = jsonValue(refused.body)["error"]?["refusals"]?.arrayValue ?? []
            #expect(refusals.compactMap { $0["route"]?.stringValue } == ["dead.get"])
            #expect(try String(contentsOfFile: harness.routesPath, encoding: .utf8) == before)
            #expect(harness.proxy.store.snapshot.version == version)
            #expect(harness.stageOf("contacts.list") == .transform)
            #expect(GateFixture.audit(harness).isEmpty)

            // contacts.get and contacts.create go back (always allowed); contacts.list is in transform already.
            let moved = try await harness.stage("contacts.*", "transform")
            #expect(moved.status == 200, "\(moved.body)")
            #expect(harness.proxy.store.snapshot.version == version + 1)
            let audit = GateFixture.audit(harness)
            #expect(audit.count == 1)
            #expect(audit[0]["pattern"]?.stringValue == "contacts.*")
            #expect(
                audit[0]["changes"]?.arrayValue?.compactMap { $0["route"]?.stringValue } == [
                    "contacts.get", "contacts.create",
                ])
            #expect(harness.stageOf("contacts.get") == .transform && harness.stageOf("contacts.create") == .transform)

            let none = try await harness.stage("billing.*", "coexist")
            #expect(none.status == 404)
            let nothing = try await harness.stage("contacts.*", "transform")
            #expect(nothing.status == 200 && jsonValue(nothing.body)["changed"] == .array([]))
            #expect(GateFixture.audit(harness).count == 1)
        }
    }

    @Test func undoRestoresTheExactPreviousTableAndIsAudited() async throws {
        try await ProxyHarness.runGates { harness in
            let empty = try await harness.admin("POST", "/admin/undo")
            #expect(empty.status == 409 && jsonValue(empty.body)["error"]?["code"]?.stringValue == "nothing_to_undo")
            let original = harness.proxy.store.snapshot.table.document
            #expect(try await harness.stage("contacts.*", "transform").status == 200)
            let undone = try await harness.admin(
                "POST", "/admin/undo", headers: ["X-Strangler-Actor: bob"], body: #"{"reason":"oops"}"#)
            #expect(undone.status == 200, "\(undone.body)")
            // The same document, keys in the same order.
            #expect(harness.proxy.store.snapshot.table.document.jsonText == original.jsonText)
            #expect(
                try JSONParser.parse(try String(contentsOfFile: harness.routesPath, encoding: .utf8)).jsonText
                    == original.jsonText)
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(
                entry["action"]?.stringValue == "undo" && entry["actor"]?.stringValue == "bob"
                    && entry["reason"]?.stringValue == "oops")
            #expect(entry["undoes"]?["action"]?.stringValue == "stage")
            // A second undo redoes.
            #expect(try await harness.admin("POST", "/admin/undo").status == 200)
            #expect(harness.stageOf("contacts.get") == .transform)

            // An edit of the file since is audited as a hand edit: undo reverts that edit, not the change before it.
            let edited = try String(contentsOfFile: harness.routesPath, encoding: .utf8).replacingOccurrences(
                of: #""id": "dead.get","#, with: #""id": "dead.get", "timeout": "5s","#)
            try edited.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(
                await eventually { harness.proxy.store.snapshot.table.route(id: "dead.get")?.timeout == .seconds(5) })
            #expect(await eventually { GateFixture.audit(harness).last?["action"]?.stringValue == "edit" })
            let revert = try await harness.admin("POST", "/admin/undo")
            #expect(revert.status == 200)
            #expect(GateFixture.audit(harness).last?["undoes"]?["action"]?.stringValue == "edit")
            #expect(harness.proxy.store.snapshot.table.route(id: "dead.get")?.timeout == Route.defaultTimeout)
            #expect(harness.stageOf("contacts.get") == .transform)
        }
    }

    @Test func triageAcceptsOrTurnsSignaturesIntoIgnoreRules() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 100, matched: 90,
                signatures: [("a1", "/email changed, /items/*/updatedAt changed", 6), ("b2", "status changed", 4)])
            let evidence = jsonValue(try await harness.admin("GET", "/admin/evidence?route=contacts.get").body)
            #expect(evidence["routes"]?.at(0)?["untriaged"] == .number(2))

            let unknown = try await harness.admin(
                "POST", "/admin/triage",
                body: #"{"route":"contacts.get","signature":"zz","decision":"accept","reason":"r"}"#)
            #expect(unknown.status == 404)
            let noReason = try await harness.admin(
                "POST", "/admin/triage", body: #"{"route":"contacts.get","signature":"a1","decision":"accept"}"#)
            #expect(noReason.status == 422)
            let noETag = try await harness.admin(
                "POST", "/admin/triage",
                body: #"{"route":"contacts.get","signature":"a1","decision":"ignore","reason":"r"}"#)
            #expect(noETag.status == 428)
            let statusIgnore = try await harness.admin(
                "POST", "/admin/triage", headers: ["If-Match: \(try await harness.etag())"],
                body: #"{"route":"contacts.get","signature":"b2","decision":"ignore","reason":"r"}"#)
            #expect(statusIgnore.status == 422 && statusIgnore.body.contains("status changed; use --accept instead"))

            // Two pointers: both named, or none ignored.
            let both = try await harness.admin(
                "POST", "/admin/triage", headers: ["If-Match: \(try await harness.etag())"],
                body: #"{"route":"contacts.get","signature":"a1","decision":"ignore","reason":"timestamps"}"#)
            #expect(both.status == 422 && both.body.contains("paths_required"), "\(both.body)")
            let ignored = try await harness.admin(
                "POST", "/admin/triage",
                headers: ["If-Match: \(try await harness.etag())", "X-Strangler-Actor: carol"],
                body:
                    #"{"route":"contacts.get","signature":"a1","decision":"ignore","reason":"timestamps","#
                    + #""allPaths":true}"#)
            #expect(ignored.status == 200, "\(ignored.body)")
            #expect(
                harness.proxy.store.snapshot.table.route(id: "contacts.get")?.shadow?.ignore == [
                    "/email", "/items/*/updatedAt",
                ])
            let entry = try #require(GateFixture.audit(harness).last)
            #expect(entry["action"]?.stringValue == "triage" && entry["actor"]?.stringValue == "carol")
            #expect(entry["ignore"]?.arrayValue?.count == 2)
            #expect(
                try await harness.admin(
                    "POST", "/admin/triage",
                    body: #"{"route":"contacts.get","signature":"b2","decision":"accept","reason":"ok"}"#
                ).status == 200)

            let after = jsonValue(try await harness.admin("GET", "/admin/evidence?route=contacts.get").body)["routes"]?
                .at(0)
            #expect(after?["untriaged"] == .number(0))
            #expect(after?["explained"] == .number(10))
            #expect(
                try harness.diffStore.triageDecisions(route: "contacts.get").map(\.decision) == [.ignored, .accepted])
            let history =
                jsonValue(try await harness.admin("GET", "/admin/history?route=contacts.get").body)["entries"]?
                .arrayValue ?? []
            #expect(history.compactMap { $0["decision"]?.stringValue } == ["ignored", "accepted"])
            #expect(history.allSatisfy { $0["before"] == nil })
        }
    }

    @Test func comparisonsCountSinceTheRoutesLastStageChange() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness)
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 5000, matched: 5000,
                signatures: [("old", "/x changed", 3)])
            #expect(try await harness.stage("contacts.get", "transform").status == 200)
            #expect(try await harness.stage("contacts.get", "coexist").status == 200)
            try GateFixture.record(
                harness.diffStore, route: "contacts.get", compared: 7, matched: 6,
                signatures: [("old", "/x changed", 1)])
            let route = jsonValue(try await harness.admin("GET", "/admin/evidence?route=contacts.get").body)["routes"]?
                .at(0)
            #expect(route?["compared"] == .number(7) && route?["matched"] == .number(6))
            #expect(route?["signatures"]?.at(0)?["count"] == .number(1))
            #expect(route?["since"]?.stringValue != nil)
            let next = route?["next"]
            #expect(next?["stage"]?.stringValue == "eliminate" && next?["allowed"] == .bool(false))
            #expect(next?["reasons"]?.at(0)?.stringValue?.hasPrefix("7 compared samples since ") == true)
            // A stage change by editing routes.json starts an epoch too.
            #expect(try harness.diffStore.epochCounts(route: "contacts.list").since == nil)
            let document = try JSONParser.parse(try String(contentsOfFile: harness.routesPath, encoding: .utf8))
            try RouteControl.settingStage(of: "contacts.list", to: .coexist, in: document).prettyJSONText
                .write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(await eventually { harness.stageOf("contacts.list") == .coexist })
            // The epoch is recorded right after the swap, off the watcher's path.
            #expect(
                try await eventually { try harness.diffStore.epochCounts(route: "contacts.list").stage == "coexist" })
        }
    }

    @Test func rollbackOfAWriteNeedsReverseSync() async throws {
        try await ProxyHarness.runGates { harness in
            try GateFixture.prepare(harness, reverseSync: false)
            #expect(
                try await harness.stage("contacts.create", "eliminate", reason: "cut over", force: true).status == 200)
            let refused = try await harness.stage("contacts.create", "coexist")
            #expect(refused.status == 409)
            #expect(refused.body.contains("the monolith's reverse-sync feed from contacts is not running"))
            try GateFixture.prepare(harness, reverseSync: true)
            #expect(try await harness.stage("contacts.create", "coexist").status == 200)
        }
    }
}

@Suite("Diff store: epochs and triage")
struct DiffStoreEpochTests {
    @Test func reconcileRecordsRoundTripThroughTheDataDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reconcile-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(ReconcileRecord.read(service: "contacts", dataDirectory: directory) == nil)
        let record = ReconcileRecord(
            service: "contacts", time: Date(timeIntervalSince1970: 1_800_000_000), clean: false, compared: 40,
            missing: 1, extra: 2, differing: 3)
        try record.write(dataDirectory: directory)
        #expect(ReconcileRecord.read(service: "contacts", dataDirectory: directory) == record)
        #expect(record.summary == "40 compared; 1 missing, 2 extra, 3 differing")
        let ignoring = ReconcileRecord(
            service: "leads", clean: true, compared: 5, missing: 0, extra: 0, differing: 0,
            ignored: ["/title", "/items/*/x"])
        try ignoring.write(dataDirectory: directory)
        #expect(ReconcileRecord.read(service: "leads", dataDirectory: directory)?.ignored == ["/title", "/items/*/x"])
        #expect(ignoring.summary == "5 compared; 0 missing, 0 extra, 0 differing (ignoring /title, /items/*/x)")
    }

    @Test func countsAndSignaturesSinceTheEpochWithDecisions() throws {
        let store = try DiffStore.open(path: nil)
        try GateFixture.record(store, route: "r", compared: 10, matched: 8, signatures: [("a", "/a changed", 2)])
        var counts = try store.epochCounts(route: "r")
        #expect(
            counts.since == nil && counts.compared == 10 && counts.matched == 8 && counts.signatures.map(\.id) == ["a"])
        try store.startEpoch(route: "r", stage: "coexist", at: Date(timeIntervalSince1970: 1_800_000_000))
        counts = try store.epochCounts(route: "r")
        #expect(counts.since == Date(timeIntervalSince1970: 1_800_000_000) && counts.stage == "coexist")
        #expect(counts.compared == 0 && counts.signatures.isEmpty)
        try GateFixture.record(
            store, route: "r", compared: 5, matched: 2, signatures: [("a", "/a changed", 1), ("b", "/b removed", 2)])
        try store.recordTriage(
            TriageDecision(route: "r", signature: "b", decision: .accepted, reason: "known", actor: "me"))
        counts = try store.epochCounts(route: "r")
        #expect(counts.compared == 5 && counts.matched == 2 && counts.mismatched == 3)
        #expect(counts.signatures.map(\.id) == ["b", "a"])
        #expect(counts.signatures.map(\.count) == [2, 1])
        #expect(counts.signatures.map(\.decision) == ["accepted", nil])
        #expect(try store.epochCounts(route: "unknown") == EpochCounts())
    }
}
