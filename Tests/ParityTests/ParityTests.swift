import Diff
import Foundation
import RouteTable
import StranglerTesting
import Testing

/// Every endpoint of contacts, leads and deals answers alike on both paths — the monolith directly and the extracted
/// service directly — and through the proxy with the routes in transform, coexist and eliminate: reads, filters,
/// pages (cursor captured from `next`), validation errors (422 with fields), 404s, 409s (duplicate, version_conflict,
/// has_dependents), dry-run writes and real writes (the service's own synced back by reverse sync).
@Suite("Parity: the monolith and the services answer alike, directly and through the proxy")
struct ParityTests {
    @Test func contactsAgreeOnBothPaths() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let targets = [
                Target("monolith", stack.monolith), Target("contacts service", stack.service("contacts").endpoint),
            ]
            let harness = try stack.harness()
            try await harness.run(Scenarios.contactReads(ids), against: targets)
            try await harness.run(Scenarios.contactWrites(ids), against: targets)
        }
    }

    @Test func leadsAgreeOnBothPaths() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let targets = [
                Target("monolith", stack.monolith), Target("leads service", stack.service("leads").endpoint),
            ]
            let harness = try stack.harness()
            try await harness.run(Scenarios.leadReads(ids), against: targets)
            try await harness.run(Scenarios.leadWrites(ids), against: targets)
        }
    }

    /// The leads service on PostgreSQL answers as the monolith does, directly and through the proxy after eliminate
    /// (its writes synced back by reverse sync).
    @Test func leadsOnPostgreSQLAgreeOnBothPathsAndThroughTheProxy() async throws {
        try await Stack.run(leadsOnPostgres: true) { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let direct = [
                Target("monolith", stack.monolith), Target("leads service", stack.service("leads").endpoint),
            ]
            let harness = try stack.harness()
            try await harness.run(Scenarios.leadReads(ids), against: direct)
            try await harness.run(Scenarios.leadWrites(ids), against: direct)
            let proxied = [
                Target("monolith", stack.monolith),
                stack.admin.target("proxy leads eliminate", proxy: stack.proxy, routes: "leads.*", stage: .eliminate),
            ]
            try await harness.run(Scenarios.leadReads(ids), against: proxied)
            try await harness.run(Scenarios.leadWrites(ids), against: proxied)
        }
    }

    @Test func dealsAgreeOnBothPaths() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let targets = [
                Target("monolith", stack.monolith), Target("deals service", stack.service("deals").endpoint),
            ]
            let harness = try stack.harness()
            try await harness.run(Scenarios.dealReads(ids), against: targets)
            try await harness.run(Scenarios.dealWrites(ids), against: targets)
        }
    }

    /// Through the proxy, with the contacts routes in each stage (moved once through the admin API, forced: a test has
    /// no shadow evidence), every contacts endpoint answers as the monolith does.
    @Test(arguments: [Stage.transform, .coexist, .eliminate])
    func contactsAgreeThroughTheProxy(in stage: Stage) async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let targets = [
                Target("monolith", stack.monolith),
                stack.admin.target("proxy \(stage.rawValue)", proxy: stack.proxy, routes: "contacts.*", stage: stage),
            ]
            let harness = try stack.harness()
            try await harness.run(Scenarios.contactReads(ids), against: targets)
            try await harness.run(Scenarios.contactWrites(ids), against: targets)
        }
    }

    /// One scenario sees the proxy in all three stages at every step: before each request of a proxy target, its
    /// `prepare` moves the routes to that target's stage.
    @Test func aScenarioSeesTheProxyInEveryStageAtEveryStep() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let targets =
                [Target("monolith", stack.monolith)]
                + [Stage.transform, .coexist, .eliminate].map {
                    stack.admin.target("proxy \($0.rawValue)", proxy: stack.proxy, routes: "contacts.*", stage: $0)
                }
            let scenario = Scenario(
                "a contact's life in every stage", variables: ids,
                steps: [
                    .post(
                        "/contacts",
                        json:
                            #"{"accountId":"{{acme}}","firstName":"Every","lastName":"Stage","email":"every-{{unique}}"#
                            + #"@acme.example.com"}"#
                    )
                    .expecting(201).capture("id", "/id").ignoring(Scenarios.made),
                    .get("/contacts/{{id}}").expecting(200).ignoring(Scenarios.made),
                    .patch("/contacts/{{id}}", json: #"{"title":"Staged"}"#).ifMatch("1").expecting(200).ignoring(
                        Scenarios.made),
                    .get("/accounts/{{acme}}/contacts").expecting(200).ignoring(Scenarios.madeItems),
                    .delete("/contacts/{{id}}").ifMatch("2").expecting(204),
                    .get("/contacts/{{id}}").expecting(404),
                ])
            let run = try await stack.harness().run(scenario, against: targets)
            #expect(run.requests == 4 * scenario.steps.count)
            // Each proxy target's requests were answered by its stage's side.
            let servers = run.steps.map { step in (1...3).map { step.answer($0)?.header("Server") ?? "?" } }
            #expect(
                servers.allSatisfy { $0 == ["strangler-monolith", "strangler-monolith", "strangler-contacts"] },
                "\(servers)")
        }
    }

    /// Leads and deals answered by their services behind the proxy (eliminate) agree with the monolith. (The leads
    /// scenario leaves out conversion, which the leads service does not serve.)
    @Test func leadsAndDealsAgreeThroughTheProxyAfterEliminate() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let harness = try stack.harness()
            let leads = [
                Target("monolith", stack.monolith),
                stack.admin.target("proxy leads eliminate", proxy: stack.proxy, routes: "leads.*", stage: .eliminate),
            ]
            try await harness.run(Scenarios.leadReads(ids), against: leads)
            try await harness.run(Scenarios.leadWrites(ids), against: leads)
            let deals = [
                Target("monolith", stack.monolith),
                stack.admin.target("proxy deals eliminate", proxy: stack.proxy, routes: "deals.*", stage: .eliminate),
            ]
            try await harness.run(Scenarios.dealReads(ids), against: deals)
            try await harness.run(Scenarios.dealWrites(ids), against: deals)
        }
    }
}
