import ControlPlane
import DiffStore
import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import Proxy
import ProxyTestSupport
import RouteTable
import Testing

@testable import StranglerCommands

/// A change of a route's diff rules re-judges the evidence already kept: the mismatch samples are compared again.
@Suite("Rule changes re-evaluate the kept mismatch samples")
struct RuleReviewTests {
    /// `/contacts/a` differs at /updatedAt only; `/contacts/b` at /updatedAt and /total (a real bug beside the noise).
    static func prepare(_ harness: ProxyHarness) async throws -> (noise: String, bug: String) {
        harness.monolith.documents.withLockedValue {
            $0["/contacts/a"] = #"{"id":"a","updatedAt":"10:00","total":10}"#
            $0["/contacts/b"] = #"{"id":"b","updatedAt":"10:00","total":10}"#
        }
        harness.service.documents.withLockedValue {
            $0["/contacts/a"] = #"{"id":"a","updatedAt":"10:01","total":10}"#
            $0["/contacts/b"] = #"{"id":"b","updatedAt":"10:01","total":12}"#
        }
        for path in ["/contacts/a", "/contacts/a", "/contacts/a", "/contacts/b"] {
            _ = try await RawHTTP.get(path, port: harness.proxyPort)
        }
        _ = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 4)
        let signatures = (try await harness.diffs("contacts.get")["signatures"] as? [[String: Any]]) ?? []
        func id(_ text: String) -> String {
            (signatures.first { $0["signature"] as? String == text }?["id"] as? String) ?? "?"
        }
        return (id("/updatedAt changed"), id("/total changed, /updatedAt changed"))
    }

    func decision(_ harness: ProxyHarness, _ signature: String) throws -> TriageDecision.Decision? {
        try harness.diffStore.triageDecisions(route: "contacts.get").last { $0.signature == signature }?.decision
    }

    @Test func ignoringNoiseExplainsWhatItCoversAndNotTheBugBesideIt() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let (noise, bug) = try await Self.prepare(harness)

            // The bug's signature spans two pointers: ignoring it whole is refused, with both named.
            let whole = try await run(
                ["triage", "contacts.get", bug, "--ignore", "--reason", "noise"] + harness.cli)
            #expect(whole.status == 2)
            #expect(whole.error.contains("differs at 2 paths: /total, /updatedAt"), "\(whole.error)")
            #expect(whole.error.contains("--paths /total …") && whole.error.contains("--all-paths"))

            // Ignoring only the noise: the noise's own signature is explained now, the bug's still differs.
            let partial = try await run(
                ["triage", "contacts.get", bug, "--ignore", "--paths", "/updatedAt", "--reason", "clock skew"]
                    + harness.cli)
            #expect(partial.status == 0, "\(partial.error)")
            #expect(partial.output.contains("partly ignored"), "\(partial.output)")
            #expect(partial.output.contains("shadow.ignore += /updatedAt"))
            #expect(
                partial.output.contains(
                    "contacts.get: match rate 0.00% → 75.00% of 4; explained now: \(noise) (/updatedAt changed); "
                        + "still differing: \(bug) (/total changed, /updatedAt changed)"),
                "\(partial.output)")
            #expect(try self.decision(harness, noise) == .explained)
            #expect(try self.decision(harness, bug) == nil)
            let evidence = try await harness.admin("GET", "/admin/evidence?route=contacts.get")
            #expect(jsonValue(evidence.body)["routes"]?.at(0)?["explained"]?.numberValue == 3)

            // Undo takes the rule back, and with it what the rule explained.
            let undo = try await run(["undo", "--reason", "too broad"] + harness.cli)
            #expect(undo.status == 0, "\(undo.error)")
            #expect(undo.output.contains("untriaged again: \(noise) (/updatedAt changed)"), "\(undo.output)")
            #expect(try self.decision(harness, noise) == .reset)
        }
    }

    @Test func undoingAnIgnoreRestoresTheSignaturesTriage() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let (noise, _) = try await Self.prepare(harness)
            let ignored = try await run(
                ["triage", "contacts.get", noise, "--ignore", "--reason", "clock skew"] + harness.cli)
            #expect(ignored.status == 0, "\(ignored.error)")
            #expect(try self.decision(harness, noise) == .ignored)
            let undo = try await run(["undo"] + harness.cli)
            #expect(undo.status == 0, "\(undo.error)")
            #expect(try self.decision(harness, noise) == .reset)
            #expect(harness.proxy.store.snapshot.table.route(id: "contacts.get")?.shadow?.ignore ?? [] == [])
            // A reset through the proxy is a reset (it used to be sent as an ignore).
            _ = try await run(["triage", "contacts.get", noise, "--accept", "--reason", "known"] + harness.cli)
            let reset = try await run(
                ["triage", "contacts.get", noise, "--reset", "--reason", "not agreed"] + harness.cli)
            #expect(reset.status == 0, "\(reset.error)")
            #expect(try self.decision(harness, noise) == .reset)
        }
    }

    @Test func aHandEditOfTheRulesIsReviewedToo() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let (noise, bug) = try await Self.prepare(harness)
            let text = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            let edited = text.replacingOccurrences(
                of: #""stage": "coexist", "shadow": { "timeout": "30s" } }"#,
                with: #""stage": "coexist", "shadow": { "timeout": "30s", "ignore": ["/updatedAt", "/total"] } }"#)
            #expect(edited != text)
            try edited.write(toFile: harness.routesPath, atomically: true, encoding: .utf8)
            #expect(try await eventually { try self.decision(harness, bug) == .explained })
            #expect(try self.decision(harness, noise) == .explained)
        }
    }
}
