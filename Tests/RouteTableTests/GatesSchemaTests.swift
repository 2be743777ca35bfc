import JSON
import Testing

@testable import RouteTable

@Suite("routes.json: gates")
struct GatesSchemaTests {
    static func table(gates: String) -> String {
        """
        { "monolith": "http://127.0.0.1:8081", "services": { "contacts": "http://127.0.0.1:8082" },
          "routes": [ { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", \
        "stage": "transform" } ],
          "gates": \(gates) }
        """
    }

    func problems(_ gates: String) -> [String] {
        do {
            _ = try RouteTable.parse(Self.table(gates: gates))
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func absentGatesAreTheIssuesDefaults() throws {
        let table = try RouteTable.parse(RouteTableValidationTests.valid)
        #expect(table.gates == .defaults)
        #expect(table.gates.coexist.maxSyncLag == 99 && table.gates.coexist.health)
        #expect(
            table.gates.eliminate.minSamples == 1000 && table.gates.eliminate.minMatchRate == 0.999
                && table.gates.eliminate.confidence == 0.95)
        #expect(
            table.gates.eliminate.maxSyncLag == 0 && table.gates.eliminate.reconcile && table.gates.eliminate.triage)
        #expect(table.gates.eliminate.dryRun && table.gates.eliminate.reverseSync && table.gates.rollback.reverseSync)
    }

    @Test func givenKeysOverrideTheDefaultsAndTheRestStay() throws {
        let table = try RouteTable.parse(
            Self.table(
                gates:
                    #"{"coexist":{"maxSyncLag":500},"eliminate":{"minSamples":50,"minMatchRate":0.99,"#
                    + #""reconcile":false},"rollback":{"reverseSync":false}}"#
            ))
        #expect(table.gates.coexist.maxSyncLag == 500 && table.gates.coexist.health)
        #expect(
            table.gates.eliminate.minSamples == 50 && table.gates.eliminate.minMatchRate == 0.99
                && !table.gates.eliminate.reconcile)
        #expect(table.gates.eliminate.confidence == 0.95 && table.gates.eliminate.triage)
        #expect(!table.gates.rollback.reverseSync)
    }

    @Test func badGatesAreRefusedWithTheirPaths() {
        #expect(self.problems("[]") == [#"$.gates: must be an object (with coexist, eliminate, rollback), not array"#])
        let found = self.problems(
            #"{"coexist":{"maxSyncLag":-1,"healthy":true},"eliminate":{"minSamples":1.5,"minMatchRate":2,"#
                + #""confidence":0.3,"triage":"yes"},"promote":{},"rollback":3}"#
        )
        #expect(
            found.contains(
                "$.gates.coexist.maxSyncLag: must be a whole number (0 or more), or false or null to turn it off"))
        #expect(found.contains { $0.hasPrefix("$.gates.coexist.healthy: unknown key") })
        #expect(
            found.contains("$.gates.eliminate.minSamples: must be a whole number (0 or more), or false to turn it off"))
        #expect(
            found.contains("$.gates.eliminate.minMatchRate: must be a number from 0.0 to 1.0, or false to turn it off"))
        #expect(
            found.contains(
                "$.gates.eliminate.confidence: must be a number from 0.5 to 0.9999 (the interval's confidence level, not "
                    + "a gate)"))
        #expect(found.contains("$.gates.eliminate.triage: must be true or false, not string"))
        #expect(found.contains { $0.hasPrefix("$.gates.promote: unknown key") })
        #expect(found.contains("$.gates.rollback: must be an object, not number"))
        #expect(found.count == 8, "\(found)")
    }

    @Test func everyGateTurnsOffWithFalse() throws {
        let off = try RouteTable.parse(
            Self.table(
                gates: #"{"coexist":{"health":false,"maxSyncLag":false},"eliminate":{"minSamples":false,"#
                    + #""minMatchRate":false,"maxSyncLag":null,"reconcile":false,"reconcileMaxAge":false,"#
                    + #""triage":false,"dryRun":false,"reverseSync":false},"rollback":{"reverseSync":false}}"#)
        ).gates
        #expect(!off.coexist.health && off.coexist.maxSyncLag == nil)
        #expect(off.eliminate.minSamples == 0 && off.eliminate.minMatchRate == 0 && off.eliminate.maxSyncLag == nil)
        #expect(!off.eliminate.reconcile && off.eliminate.reconcileMaxAge == nil && !off.eliminate.triage)
        #expect(!off.eliminate.dryRun && !off.eliminate.reverseSync && !off.rollback.reverseSync)
        #expect(
            try RouteTable.parse(Self.table(gates: #"{"coexist":{"maxSyncLag":null}}"#)).gates.coexist.maxSyncLag == nil
        )
        #expect(
            self.problems(#"{"eliminate":{"confidence":false}}"#) == [
                "$.gates.eliminate.confidence: must be a number from 0.5 to 0.9999 (the interval's confidence level, "
                    + "not a gate)"
            ])
    }

    @Test func aSyncLagGateThatIsOffNeverBlocks() throws {
        let route = Route(
            id: "orders.get", method: "GET", path: try PathTemplate.parse("/orders/{id}").get(),
            service: "orders", stage: .transform)
        var evidence = RouteEvidence()
        evidence.health = .ok
        evidence.syncLag = nil
        evidence.syncProblem = "GET /sync/status answered 404"
        var policy = GatePolicy()
        #expect(!Gates.evaluate(route: route, to: .coexist, evidence: evidence, policy: policy).reasons.isEmpty)
        policy.coexist.maxSyncLag = nil
        #expect(Gates.evaluate(route: route, to: .coexist, evidence: evidence, policy: policy).reasons.isEmpty)
    }

    @Test func theReconcileAgeLimitIsADurationOrNull() throws {
        #expect(GatePolicy.defaults.eliminate.reconcileMaxAge == .seconds(86_400), "a day by default")
        #expect(
            try RouteTable.parse(Self.table(gates: #"{"eliminate":{"reconcileMaxAge":"90m"}}"#)).gates.eliminate
                .reconcileMaxAge == .seconds(5400))
        #expect(
            try RouteTable.parse(Self.table(gates: #"{"eliminate":{"reconcileMaxAge":"2h"}}"#)).gates.eliminate
                .reconcileMaxAge == .seconds(7200))
        #expect(
            try RouteTable.parse(Self.table(gates: #"{"eliminate":{"reconcileMaxAge":null}}"#)).gates.eliminate
                .reconcileMaxAge == nil)
        for bad in [#""soon""#, "5", #""0s""#, #""-1h""#, "true"] {
            #expect(
                self.problems(#"{"eliminate":{"reconcileMaxAge":\#(bad)}}"#)
                    == [
                        #"$.gates.eliminate.reconcileMaxAge: must be a duration such as "24h" or "90m", or null or "#
                            + #"false for any age"#
                    ], "\(bad)")
        }
    }
}

@Suite("Gates: evaluation")
struct GateEvaluationTests {
    static let read = Route(
        id: "contacts.get", method: "GET", path: try! PathTemplate.parse("/contacts/{id}").get(), service: "contacts",
        stage: .transform)
    static let write = Route(
        id: "contacts.create", method: "POST", path: try! PathTemplate.parse("/contacts").get(), service: "contacts",
        stage: .coexist)

    static func at(_ route: Route, _ stage: Stage) -> Route {
        var route = route
        route.stage = stage
        return route
    }

    /// Evidence that passes every gate.
    static var good: RouteEvidence {
        var evidence = RouteEvidence()
        evidence.health = .ok
        evidence.syncLag = 0
        evidence.compared = 5000
        evidence.matched = 5000
        evidence.reconcile = .init(
            clean: true, at: "2026-11-28T10:00:00Z", summary: "40 compared; 0 missing, 0 extra, 0 differing")
        evidence.reverseSync = .ok
        return evidence
    }

    func reasons(_ route: Route, _ to: Stage, _ evidence: RouteEvidence, _ policy: GatePolicy = .defaults) -> [String] {
        Gates.evaluate(route: route, to: to, evidence: evidence, policy: policy).reasons
    }

    @Test func wilsonLowerBoundMatchesKnownValues() {
        #expect(abs(Wilson.normalQuantile(0.975) - 1.959964) < 1e-6)
        #expect(abs(Wilson.normalQuantile(0.99995) - 3.890592) < 1e-5)
        // 1000 of 1000: the raw rate is 100%, the 95% lower bound only 99.62%.
        #expect(abs(Wilson.lowerBound(successes: 1000, trials: 1000, confidence: 0.95) - 0.996173) < 1e-6)
        #expect(abs(Wilson.lowerBound(successes: 95, trials: 100, confidence: 0.95) - 0.888249) < 1e-5)
        #expect(Wilson.lowerBound(successes: 0, trials: 0, confidence: 0.95) == 0)
        // With every sample matching, 99.9% is reached at 3,838 samples.
        #expect(Wilson.lowerBound(successes: 3838, trials: 3838, confidence: 0.95) >= 0.999)
        #expect(Wilson.lowerBound(successes: 3837, trials: 3837, confidence: 0.95) < 0.999)
    }

    @Test func coexistNeedsAHealthyServiceAndLagUnder100() {
        #expect(self.reasons(Self.read, .coexist, Self.good).isEmpty)
        var evidence = Self.good
        evidence.syncLag = 99
        #expect(self.reasons(Self.read, .coexist, evidence).isEmpty)
        evidence.syncLag = 100
        evidence.health = .failed("connection refused")
        #expect(
            self.reasons(Self.read, .coexist, evidence) == [
                "service contacts is not healthy: connection refused",
                "service contacts is 100 events behind the monolith (at most 99 allowed)",
            ])
        evidence.syncLag = nil
        evidence.syncProblem = "GET /sync/status answered 404"
        #expect(
            self.reasons(Self.read, .coexist, evidence).last
                == "service contacts's sync lag is unknown: GET /sync/status answered 404")
        var policy = GatePolicy()
        policy.coexist.health = false
        policy.coexist.maxSyncLag = 1000
        evidence.syncLag = 500
        #expect(self.reasons(Self.read, .coexist, evidence, policy).isEmpty)
    }

    @Test func eliminateNeedsSamplesMatchRateTriageSyncAndReconcile() {
        let coexist = Self.at(Self.read, .coexist)
        #expect(self.reasons(coexist, .eliminate, Self.good).isEmpty)

        var evidence = Self.good
        evidence.compared = 999
        evidence.matched = 999
        evidence.since = "2026-11-28T09:00:00Z"
        let few = self.reasons(coexist, .eliminate, evidence)
        #expect(few.first == "999 compared samples since 2026-11-28T09:00:00Z, needs 1000")
        // 99.6% lower bound: the raw 100% does not count.
        #expect(few.contains { $0.hasPrefix("match rate 100.00% of 999: its 95% lower bound 99.61% is under 99.90%") })

        evidence = Self.good
        evidence.matched = 4990
        evidence.signatures = [.init(id: "aaaa000000000001", text: "/email changed", count: 10)]
        let mismatching = self.reasons(coexist, .eliminate, evidence)
        #expect(mismatching.count == 2)
        #expect(mismatching[0].hasPrefix("match rate 99.80% of 5000"))
        #expect(mismatching[1] == "1 untriaged mismatch signature: aaaa000000000001 (/email changed, 10×)")
        // Triaged, the signature explains its mismatches: they count as matches, and it no longer blocks.
        evidence.signatures[0].decision = "accepted"
        #expect(self.reasons(coexist, .eliminate, evidence).isEmpty)

        evidence = Self.good
        evidence.syncLag = 1
        evidence.reconcile?.clean = false
        evidence.reconcile?.summary = "40 compared; 1 missing, 0 extra, 0 differing"
        #expect(
            self.reasons(coexist, .eliminate, evidence) == [
                "service contacts is 1 events behind the monolith (at most 0 allowed)",
                "the last reconcile of contacts (2026-11-28T10:00:00Z) was not clean: 40 compared; 1 missing, 0 extra, "
                    + "0 differing",
            ])
        evidence.syncLag = 0
        evidence.reconcile = nil
        #expect(
            self.reasons(coexist, .eliminate, evidence) == [
                "service contacts was never reconciled (run: strangler reconcile contacts)"
            ])
    }

    @Test func eliminateNeedsAReconcileNoOlderThanTheLimit() {
        let coexist = Self.at(Self.read, .coexist)
        var evidence = Self.good
        evidence.reconcile?.age = .seconds(23 * 3600)
        #expect(self.reasons(coexist, .eliminate, evidence).isEmpty)
        evidence.reconcile?.age = .seconds(25 * 3600)
        #expect(
            self.reasons(coexist, .eliminate, evidence) == [
                "the last reconcile of contacts (2026-11-28T10:00:00Z) is older than 24h (run: strangler reconcile "
                    + "contacts)"
            ])
        var policy = GatePolicy()
        policy.eliminate.reconcileMaxAge = .seconds(90 * 60)
        evidence.reconcile?.age = .seconds(2 * 3600)
        #expect(self.reasons(coexist, .eliminate, evidence, policy).first?.contains("is older than 90m") == true)
        policy.eliminate.reconcileMaxAge = nil
        #expect(self.reasons(coexist, .eliminate, evidence, policy).isEmpty, "null: any age")
        policy.eliminate.reconcile = false
        policy.eliminate.reconcileMaxAge = .seconds(60)
        #expect(self.reasons(coexist, .eliminate, evidence, policy).isEmpty, "no reconcile gate, no age limit")
    }

    @Test func eliminateOfAWriteNeedsDryRunComparisonsAndReverseSync() {
        #expect(self.reasons(Self.write, .eliminate, Self.good).isEmpty)
        var evidence = Self.good
        evidence.compared = 0
        evidence.matched = 0
        evidence.reverseSync = .failed("the monolith lists no reverse-sync feed for contacts")
        let reasons = self.reasons(Self.write, .eliminate, evidence)
        #expect(reasons.contains("write route with no dry-run comparisons so far (set shadow.writes to \"dry-run\")"))
        #expect(
            reasons.contains(
                "reverse sync of contacts into the monolith is not running: the monolith lists no reverse-sync feed "
                    + "for contacts"
            ))
        // A read needs neither.
        evidence = Self.good
        evidence.reverseSync = .failed("down")
        #expect(self.reasons(Self.at(Self.read, .coexist), .eliminate, evidence).isEmpty)
    }

    @Test func rollbackIsFreeForReadsAndNeedsReverseSyncForWrites() {
        var evidence = RouteEvidence()
        evidence.reverseSync = .failed("connection refused")
        #expect(self.reasons(Self.at(Self.read, .eliminate), .coexist, evidence).isEmpty)
        #expect(
            self.reasons(Self.at(Self.write, .eliminate), .coexist, evidence) == [
                "reverse sync of contacts into the monolith is not running: connection refused"
            ])
        #expect(self.reasons(Self.at(Self.write, .eliminate), .transform, evidence).count == 1)
        evidence.reverseSync = .ok
        #expect(self.reasons(Self.at(Self.write, .eliminate), .coexist, evidence).isEmpty)
        // Back from coexist: always.
        #expect(self.reasons(Self.at(Self.write, .coexist), .transform, RouteEvidence()).isEmpty)
    }

    @Test func aSkipMustPassTheGatesOfBothSteps() {
        var evidence = Self.good
        evidence.health = .failed("GET /healthz answered 503")
        evidence.compared = 10
        evidence.matched = 10
        let reasons = self.reasons(Self.read, .eliminate, evidence)
        #expect(reasons.first == "service contacts is not healthy: GET /healthz answered 503")
        #expect(reasons.contains("10 compared samples so far, needs 1000"))
        #expect(self.reasons(Self.read, .eliminate, Self.good).isEmpty)
    }

    @Test func percentagesNeverRoundUpTo100() {
        #expect(Gates.percent(0.99999) == "99.99%")
        #expect(Gates.percent(1) == "100.00%")
        #expect(Gates.percent(0.95, digits: 0) == "95%")
    }
}
