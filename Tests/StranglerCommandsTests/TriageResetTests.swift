import ArgumentParser
import DiffStore
import Foundation
import ProxyTestSupport
import Testing

@testable import StranglerCommands

@Suite("strangler triage --reset")
struct TriageResetTests {
    @Test func aResetSignatureIsUntriagedAgainAndTheHistorySaysSo() async throws {
        let copy = try FileCopy(routes: GateFixture.routes(monolith: 1, service: 1))
        defer { copy.remove() }
        try GateFixture.reconcile(clean: true, dataDirectory: copy.dataDirectory)
        try GateFixture.record(
            try copy.store(), route: "contacts.get", compared: 5000, matched: 4998,
            signatures: [(id: "s1", text: "/phone changed", count: 2)])
        func untriaged() async throws -> Bool {
            let routes = try await run(["routes", "contacts.get"] + copy.cli)
            #expect(routes.status == 0, "\(routes.error)")
            return routes.output.contains("untriaged mismatch signature")
        }
        #expect(try await untriaged())

        let accepted = try await run(["triage", "contacts.get", "s1", "--accept", "--reason", "known"] + copy.cli)
        #expect(accepted.status == 0, "\(accepted.error)")
        #expect(try await !untriaged())

        let reset = try await run(["triage", "contacts.get", "s1", "--reset", "--reason", "not agreed"] + copy.cli)
        #expect(reset.status == 0, "\(reset.error)")
        #expect(reset.output.contains("contacts.get s1 (/phone changed): untriaged again (blocks eliminate)"))
        #expect(try await untriaged())
        // The decisions stay, newest last; the one in force is the reset.
        #expect(try copy.store().triageDecisions(route: "contacts.get").map(\.decision) == [.accepted, .reset])
        let history = try await run(["history"] + copy.cli)
        #expect(history.output.contains("contacts.get s1 reset"), "\(history.output)")
    }

    @Test func oneDecisionAtATime() throws {
        #expect(throws: (any Error).self) {
            _ = try Strangler.parseAsRoot(["triage", "r", "s", "--accept", "--reset", "--reason", "x"])
        }
        #expect(throws: (any Error).self) { _ = try Strangler.parseAsRoot(["triage", "r", "s", "--reason", "x"]) }
    }
}
