import JSON
import Testing

@testable import RouteTable

@Suite("routes.json: services and the monolith as objects")
struct DeclarationSchemaTests {
    static func table(monolith: String = #""http://127.0.0.1:8081""#, orders: String) -> String {
        """
        { "monolith": \(monolith), "services": { "orders": \(orders) },
          "routes": [ { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "service": "orders", \
        "stage": "transform" } ] }
        """
    }

    func problems(_ text: String) -> [String] {
        do {
            _ = try RouteTable.parse(text)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func aURLStringKeepsTheDefaultsAndOneEntityNamedAsTheService() throws {
        let table = try RouteTable.parse(Self.table(orders: #""http://127.0.0.1:9002""#))
        #expect(table.probes(of: "orders") == .serviceDefaults)
        #expect(table.monolithProbes == .monolithDefaults)
        #expect(table.declarations["orders"]?.entities == [Entity(name: "orders", path: "/orders", key: "id")])
        #expect(table.services["orders"]?.port == 9002)
    }

    @Test func probesSetToNullAreNoneAndTheRestKeepTheirDefaults() throws {
        let table = try RouteTable.parse(
            Self.table(
                monolith: #"{ "url": "http://127.0.0.1:8081", "probes": { "reverseSync": null, "events": false } }"#,
                orders:
                    #"{ "url": "http://127.0.0.1:9002", "probes": { "health": null, "syncLag": null }, "#
                    + #""entities": {} }"#))
        let probes = table.probes(of: "orders")
        #expect(probes.health == nil && probes.syncLag == nil && probes.reverseSync == .monolith)
        #expect(table.monolithProbes.reverseSync == .none && table.monolithProbes.events == nil)
        #expect(table.declarations["orders"]?.entities == [])
        #expect(table.monolith.port == 8081)
    }

    @Test func aPrometheusMetricOrAPathIsTheSyncLagProbe() throws {
        let metric = try RouteTable.parse(
            Self.table(
                orders:
                    #"{ "url": "http://127.0.0.1:9002", "probes": { "health": "/health", "#
                    + #""syncLag": { "metrics": "/metrics", "name": "orders_sync_lag_events" }, "#
                    + #""reverseSync": "/reverse/status" } }"#))
        #expect(metric.probes(of: "orders").syncLag == .metric(path: "/metrics", name: "orders_sync_lag_events"))
        #expect(metric.probes(of: "orders").health == "/health")
        #expect(metric.probes(of: "orders").reverseSync == .service("/reverse/status"))
        let path = try RouteTable.parse(
            Self.table(orders: #"{ "url": "http://127.0.0.1:9002", "probes": { "syncLag": "/lag" } }"#))
        #expect(path.probes(of: "orders").syncLag == .status("/lag"))
    }

    @Test func entitiesAreDeclaredWithAPathAndAKey() throws {
        let table = try RouteTable.parse(
            Self.table(
                orders:
                    #"{ "url": "http://127.0.0.1:9002", "entities": { "orders": { "path": "/orders", "key": "number" }, "#
                    + #""items": { "path": "/order-items" } } }"#))
        #expect(table.entity(named: "orders")?.entity == Entity(name: "orders", path: "/orders", key: "number"))
        #expect(table.entity(named: "items")?.service == "orders")
        #expect(table.entity(named: "items")?.entity.key == "id")
        #expect(table.entity(named: "contacts") == nil)
    }

    @Test func everyMistakeIsNamedByItsPlace() {
        let cases: [(String, String)] = [
            (#"{ "probes": {} }"#, "$.services.orders.url: is required"),
            (#"{ "url": 7 }"#, "$.services.orders.url: must be a URL string"),
            (#"{ "url": "ftp://x" }"#, "$.services.orders.url: \"ftp://x\" must be an http:// or https:// URL"),
            (#"{ "url": "http://127.0.0.1:1", "port": 2 }"#, "$.services.orders.port: unknown key"),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "healthz": "/h" } }"#,
                "$.services.orders.probes.healthz: unknown probe"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "health": "healthz" } }"#,
                "$.services.orders.probes.health: \"healthz\" is not a path"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "health": 3 } }"#,
                "$.services.orders.probes.health: must be a path"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "syncLag": { "metrics": "/metrics" } } }"#,
                "$.services.orders.probes.syncLag.name: is required"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "syncLag": { "metrics": "/m", "name": "9lag" } } }"#,
                "$.services.orders.probes.syncLag.name: \"9lag\" is not a Prometheus metric name"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "probes": { "syncLag": 5 } }"#,
                "$.services.orders.probes.syncLag: must be a path"
            ),
            (#"{ "url": "http://127.0.0.1:1", "entities": [] }"#, "$.services.orders.entities: must be an object"),
            (
                #"{ "url": "http://127.0.0.1:1", "entities": { "o": {} } }"#,
                "$.services.orders.entities.o.path: is required"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "entities": { "o": { "path": "/o?x=1" } } }"#,
                "$.services.orders.entities.o.path: \"/o?x=1\" has a query"
            ),
            (
                #"{ "url": "http://127.0.0.1:1", "entities": { "o": { "path": "/o", "key": "" } } }"#,
                "$.services.orders.entities.o.key: must be a field name"
            ),
            ("[]", "$.services.orders: must be a URL string or an object"),
        ]
        for (orders, expected) in cases {
            let found = self.problems(Self.table(orders: orders))
            #expect(found.contains { $0.hasPrefix(expected) }, "\(orders) → \(found)")
        }
        let monolith = self.problems(
            Self.table(
                monolith: #"{ "url": "http://127.0.0.1:1", "probes": { "syncLag": "/s" }, "entities": {} }"#,
                orders: #""http://127.0.0.1:2""#))
        #expect(monolith.contains { $0.hasPrefix("$.monolith.probes.syncLag: unknown probe") })
        #expect(monolith.contains { $0.hasPrefix("$.monolith.entities: unknown key") })
    }

    @Test func anEntityNameIsDeclaredOnce() {
        let text = """
            { "monolith": "http://127.0.0.1:8081",
              "services": { "a": { "url": "http://127.0.0.1:1", "entities": { "orders": { "path": "/orders" } } },
                            "b": { "url": "http://127.0.0.1:2", "entities": { "orders": { "path": "/orders" } } } },
              "routes": [] }
            """
        #expect(
            self.problems(text) == [
                #"$.services.b.entities.orders: entity "orders" is already declared by $.services.a"#
            ])
    }
}

@Suite("Gates: probes the application does not have")
struct UndeclaredProbeGateTests {
    static let read = Route(
        id: "orders.get", method: "GET", path: try! PathTemplate.parse("/orders/{id}").get(), service: "orders",
        stage: .transform)

    @Test func aGateWithNothingToMeasureDoesNotBlockAndSaysSo() {
        var evidence = RouteEvidence()
        evidence.health = .notChecked
        evidence.undeclared = ["health", "syncLag"]
        let verdict = Gates.evaluate(route: Self.read, to: .coexist, evidence: evidence, policy: .defaults)
        #expect(verdict.allowed)
        #expect(verdict.notMeasured == ["no health probe declared for orders", "no syncLag probe declared for orders"])
    }

    @Test func aGateTurnedOffIsNeitherAReasonNorNotMeasured() throws {
        var evidence = RouteEvidence()
        evidence.undeclared = ["health", "syncLag"]
        var policy = GatePolicy.defaults
        policy.coexist.health = false
        policy.coexist.maxSyncLag = nil
        let verdict = Gates.evaluate(route: Self.read, to: .coexist, evidence: evidence, policy: policy)
        #expect(verdict.allowed && verdict.notMeasured.isEmpty)
    }

    @Test func aWriteWithoutReverseSyncOrEntitiesIsNotMeasuredThere() {
        var write = Route(
            id: "orders.create", method: "POST", path: try! PathTemplate.parse("/orders").get(), service: "orders",
            stage: .coexist)
        var evidence = RouteEvidence()
        evidence.compared = 5000
        evidence.matched = 5000
        evidence.undeclared = ["syncLag", "reverseSync", "entities"]
        var policy = GatePolicy.defaults
        policy.eliminate.dryRun = false
        let verdict = Gates.evaluate(route: write, to: .eliminate, evidence: evidence, policy: policy)
        #expect(verdict.reasons == [])
        #expect(
            verdict.notMeasured == [
                "no syncLag probe declared for orders", "no entities declared for orders to reconcile",
                "no reverseSync probe declared for orders",
            ])
        // Back from eliminate: the rollback gate has nothing to measure either.
        write.stage = .eliminate
        let back = Gates.evaluate(route: write, to: .coexist, evidence: evidence, policy: policy)
        #expect(back.allowed && back.notMeasured == ["no reverseSync probe declared for orders"])
    }
}
