import Diff
import Foundation
import JSON
import RouteTable
import StranglerTesting
import Testing

/// The harness itself: what it reports when targets disagree, how route rules and step ignores decide what counts,
/// captures and templates, and the problems it names.
@Suite("Harness: reports, rules, captures")
struct HarnessTests {
    @Test func aDisagreementNamesTheStepBothStatusesAndTheDiff() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            // No settle: the service has not read the feed, so it knows no contact yet.
            let harness = ParityHarness(routes: try RouteTable.parse(stack.routesText))
            let scenario = Scenario(
                "unsynced", variables: ids, steps: [.get("/contacts/{{ada}}").expecting(200), .get("/healthz")])
            let targets = [
                Target("monolith", stack.monolith), Target("contacts service", stack.service("contacts").endpoint),
            ]
            let failure = await #expect(throws: ParityFailure.self) {
                try await harness.run(scenario, against: targets)
            }
            let text = failure?.description ?? ""
            #expect(text.contains("1 step differ"), "\(text)")
            #expect(text.contains("step 1: GET /contacts/{{ada}} (route contacts.get)"), "\(text)")
            #expect(text.contains("monolith: GET /contacts/\(ids["ada"]!) → 200"), "\(text)")
            #expect(text.contains("contacts service: GET /contacts/\(ids["ada"]!) → 404"), "\(text)")
            #expect(text.contains("status changed: 200 → 404"), "\(text)")
            #expect(text.contains(#"added /error: {"code":"not_found""#), "\(text)")
            #expect(!text.contains("step 2"), "\(text)")
            #expect(failure?.run.steps[1].differences.isEmpty == true)
        }
    }

    @Test func theRouteRulesAndStepIgnoresDecideWhatCounts() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            try await stack.settle()
            // The monolith changes a title the service has not seen yet.
            try await HTTPTestClient().json(
                "PATCH", "/contacts/\(ids["ada"]!)", #"{"title":"Analyst"}"#, to: stack.monolith, status: 200)
            let targets = [
                Target("monolith", stack.monolith), Target("contacts service", stack.service("contacts").endpoint),
            ]
            let scenario = Scenario(
                "a stale read", variables: ids, steps: [.get("/contacts/{{ada}}"), .get("/contacts?limit=3")])

            let strict = try await ParityHarness(routes: try RouteTable.parse(stack.routesText)).compare(
                scenario, against: targets)
            #expect(
                strict.steps[0].differences.first?.comparison.signature.text
                    == "/title changed, /updatedAt changed, /version changed, header etag changed")
            #expect(
                strict.steps[1].differences.first?.comparison.signature.text
                    == "/items/*/title changed, /items/*/updatedAt changed, /items/*/version changed")

            // The route's own rules (routes.json shadow.ignore and arrays), found by method and path, make both agree.
            let rules = stack.routesText.replacingFirst(
                #""id": "contacts.get","#,
                with: #""id": "contacts.get", "shadow": { "ignore": ["/title", "/version", "/updatedAt"] },"#
            ).replacingFirst(
                #""id": "contacts.list","#,
                with:
                    #""id": "contacts.list", "shadow": { "ignore": ["/items/*/title", "/items/*/version", "#
                    + #""/items/*/updatedAt"], "arrays": { "/items": "id" } },"#
            )
            let lenient = ParityHarness(routes: try RouteTable.parse(rules), comparedHeaders: ["content-type"])
            let agreed = try await lenient.run(scenario, against: targets)
            #expect(agreed.steps.map(\.route) == ["contacts.get", "contacts.list"])
            // …and so do a step's own ignores.
            let stepwise = Scenario(
                "a stale read, ignored by the step", variables: ids,
                steps: [.get("/contacts/{{ada}}").ignoring("/title", "/version", "/updatedAt").ignoringHeaders("etag")])
            try await ParityHarness(routes: try RouteTable.parse(stack.routesText)).run(stepwise, against: targets)
        }
    }

    @Test func capturesUniqueValuesAndProblems() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let harness = try stack.harness()
            // The monolith against itself: each run makes its own record ({{unique}} differs), and answers that name
            // the target's own values compare as {{unique}} and {{id}}.
            let targets = [Target("first", stack.monolith), Target("second", stack.monolith)]
            let scenario = Scenario(
                "captures", variables: ids,
                steps: [
                    .post("/accounts", json: #"{"name":"Account {{unique}}"}"#).expecting(201).capture("account", "/id")
                        .capture("location", "header:Location")
                        .ignoring("/createdAt", "/updatedAt"),
                    .get("{{location}}").expecting(200).ignoring("/createdAt", "/updatedAt"),
                    .post(
                        "/contacts",
                        json:
                            #"{"accountId":"{{account}}","firstName":"U","lastName":"V","email":"u-{{unique}}"#
                            + #"@example.com"}"#
                    ).expecting(201)
                        .capture("id", "/id").capture("version", "/version").ignoring("/createdAt", "/updatedAt"),
                    .patch("/contacts/{{id}}", json: #"{"title":"T"}"#).ifMatch("{{version}}").expecting(200).ignoring(
                        "/createdAt", "/updatedAt"),
                    .get("/accounts/{{account}}/contacts").expecting(200).ignoring(
                        "/items/*/createdAt", "/items/*/updatedAt"),
                ])
            let run = try await harness.run(scenario, against: targets)
            let first = try #require(run.steps[0].answer(0)?.json?["name"]?.stringValue)
            let second = try #require(run.steps[0].answer(1)?.json?["name"]?.stringValue)
            #expect(first != second && first.hasPrefix("Account ") && second.hasPrefix("Account "))
            #expect(
                run.steps[3].exchanges[1]?.request.headers.contains { $0.name == "If-Match" && $0.value == "1" } == true
            )
            #expect(run.requests == 10)

            // Problems: a variable nothing set, a value not there to capture, a status the step did not expect.
            let broken = Scenario(
                "broken", variables: ids,
                steps: [
                    .get("/contacts/{{nothing}}"),
                    .get("/contacts/{{ada}}").capture("missing", "/no/such/member"),
                    .get("/contacts/{{gone}}").expecting(200),
                ])
            let report = try await harness.compare(broken, against: targets)
            #expect(!report.agrees)
            #expect(report.problems.count == 5, "\(report.problems)")
            #expect(
                report.problems.contains {
                    $0.contains("{{nothing}} is not set (no earlier step captured it; variables: acme, ada,")
                }, "\(report.problems)")
            #expect(
                report.problems.contains { $0.contains("nothing to capture as {{missing}} at /no/such/member in 200") },
                "\(report.problems)")
            #expect(
                report.problems.contains { $0.contains("first answered 404, the step expects 200") },
                "\(report.problems)")
            #expect(report.description.contains("problem:"))

            // A target that does not answer is an error naming it, not a disagreement.
            let dead = [Target("monolith", stack.monolith), try Target("nobody", url: "http://127.0.0.1:1")]
            await #expect(throws: HarnessError.self) {
                try await harness.run(Scenario("dead", steps: [.get("/healthz")]), against: dead)
            }
        }
    }
}
