import Testing

@testable import RouteTable

@Suite("routes.json: several instances, TLS, health, ejection and limits per upstream")
struct UpstreamGroupTests {
    static func table(monolith: String = #""http://127.0.0.1:8081""#, orders: String) -> String {
        DeclarationSchemaTests.table(monolith: monolith, orders: orders)
    }

    func problems(_ text: String) -> [String] { DeclarationSchemaTests().problems(text) }

    @Test func aURLIsOneInstanceWithTheDefaults() throws {
        let table = try RouteTable.parse(Self.table(orders: #""http://127.0.0.1:9002""#))
        let group = try #require(table.groups["orders"])
        #expect(group.instances.map(\.url) == ["http://127.0.0.1:9002"])
        #expect(group.balance == .roundRobin)
        #expect(group.health == nil)
        #expect(group.ejection == .defaults)
        #expect(group.maxConnections == nil && group.maxPending == nil)
        #expect(group.retryBudget == 0.2)
        #expect(group.isSingle)
        #expect(table.monolithGroup.instances == [table.monolith])
    }

    @Test func everyKeyIsRead() throws {
        let table = try RouteTable.parse(
            Self.table(
                monolith: #"{ "instances": ["https://crm.internal/legacy/", "https://crm2.internal:8443/legacy"], "#
                    + #""tls": { "ca": "ca.pem", "cert": "proxy.pem", "key": "proxy.key" } }"#,
                orders: """
                    { "instances": ["http://127.0.0.1:9002", "http://127.0.0.1:9003", "http://[::1]:9004"],
                      "balance": "least-requests",
                      "health": { "path": "/healthz", "interval": "500ms", "timeout": "200ms", "unhealthyAfter": 2,
                                  "healthyAfter": 1 },
                      "eject": { "consecutive": 3, "base": "1s", "max": "30s", "maxPercent": 34 },
                      "maxConnections": 10, "maxPending": 5, "retryBudget": 0.5, "dnsRefresh": "5s" }
                    """))
        let orders = try #require(table.groups["orders"])
        #expect(orders.instances.map(\.authority) == ["127.0.0.1:9002", "127.0.0.1:9003", "[::1]:9004"])
        #expect(orders.balance == .leastRequests)
        #expect(
            orders.health
                == .init(
                    path: "/healthz", interval: .milliseconds(500), timeout: .milliseconds(200), unhealthyAfter: 2,
                    healthyAfter: 1))
        #expect(orders.ejection == .init(consecutive: 3, base: .seconds(1), max: .seconds(30), maxPercent: 34))
        #expect(orders.maxEjected == 1)
        #expect(orders.maxConnections == 10 && orders.maxPending == 5)
        #expect(orders.retryBudget == 0.5 && orders.resolveInterval == .seconds(5))
        #expect(!orders.isSingle)
        #expect(table.services["orders"]?.url == "http://127.0.0.1:9002", "the control plane asks the first")

        let monolith = table.monolithGroup.instances
        #expect(monolith.map(\.isTLS) == [true, true])
        #expect(monolith.map(\.authority) == ["crm.internal", "crm2.internal:8443"])
        #expect(monolith.map(\.port) == [443, 8443])
        #expect(monolith.map(\.pathPrefix) == ["/legacy", "/legacy"])
        #expect(monolith.allSatisfy { $0.tls == UpstreamTLS(ca: "ca.pem", cert: "proxy.pem", key: "proxy.key") })
        #expect(table.monolith == monolith[0])
        #expect(!table.monolithGroup.isInsecure)
    }

    @Test func tlsSettingsApplyToHTTPSInstancesOnlyAndAreRecordedWhenInsecure() throws {
        let table = try RouteTable.parse(
            Self.table(
                orders: #"{ "instances": ["https://10.0.0.1", "http://10.0.0.2"], "tls": { "insecure": true } }"#))
        let orders = try #require(table.groups["orders"])
        #expect(orders.instances[0].tls == UpstreamTLS(insecure: true))
        #expect(orders.instances[1].tls == nil)
        #expect(orders.isInsecure)
        #expect(orders.instances[0] != (try Upstream.parse("https://10.0.0.1").get()), "TLS settings are identity")
    }

    @Test func ejectionCanBeSwitchedOffAndOneInstanceIsNeverEjected() throws {
        let off = try RouteTable.parse(Self.table(orders: #"{ "url": "http://127.0.0.1:1", "eject": false }"#))
        #expect(off.groups["orders"]?.ejection == nil)
        #expect(off.groups["orders"]?.maxEjected == 0)
        let one = try RouteTable.parse(Self.table(orders: #"{ "instances": ["http://127.0.0.1:1"] }"#))
        #expect(one.groups["orders"]?.maxEjected == 0)
        #expect(one.groups["orders"]?.isSingle == true)
    }

    @Test func aURLPathIsAPrefix() throws {
        for (url, prefix) in [
            ("http://h:1", ""), ("http://h:1/", ""), ("http://h:1/api", "/api"), ("http://h:1/api/v2/", "/api/v2"),
            ("https://h/%C3%A9", "/%C3%A9"),
        ] {
            #expect(try Upstream.parse(url).get().pathPrefix == prefix, "\(url)")
        }
        for url in [
            "http://h/a//b", "http://h/a/../b", "http://h/./a", "http://h/%zz", "http://h/a?x=1", "http://u@h/",
        ] {
            if case .success = Upstream.parse(url) { Issue.record("\(url) was accepted") }
        }
    }

    @Test func everyMistakeIsNamedByItsPlace() {
        let one = #""url": "http://127.0.0.1:1""#
        let cases: [(String, String)] = [
            (#"{ "url": "http://127.0.0.1:1", "instances": [] }"#, "$.services.orders.instances: give either"),
            (#"{ "instances": [] }"#, "$.services.orders.instances: must be a non-empty array"),
            (#"{ "instances": "http://127.0.0.1:1" }"#, "$.services.orders.instances: must be a non-empty array"),
            (#"{ "instances": ["http://127.0.0.1:1", 7] }"#, "$.services.orders.instances[1]: must be a URL string"),
            (#"{ "instances": ["http://127.0.0.1:1", "ftp://x"] }"#, "$.services.orders.instances[1]: \"ftp://x\""),
            (
                #"{ "instances": ["http://127.0.0.1:1", "http://127.0.0.1:1/"] }"#,
                "$.services.orders.instances[1]: \"http://127.0.0.1:1/\" is the same instance as"
            ),
            (
                #"{ "instances": ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"] }"#,
                "$.services.orders.instances[1]: has the path prefix \"/b\""
            ),
            ("{ \(one), \"balance\": \"random\" }", "$.services.orders.balance: \"random\" is not a balancing policy"),
            ("{ \(one), \"tls\": { \"ca\": \"x.pem\" } }", "$.services.orders.tls: applies to https:// instances"),
            ("{ \(one), \"tls\": true }", "$.services.orders.tls: must be an object"),
            (#"{ "url": "https://h", "tls": { "ca": 3 } }"#, "$.services.orders.tls.ca: must be the path of a PEM"),
            (#"{ "url": "https://h", "tls": { "cert": "c.pem" } }"#, "$.services.orders.tls.key: is required"),
            (#"{ "url": "https://h", "tls": { "key": "k.pem" } }"#, "$.services.orders.tls.cert: is required"),
            (#"{ "url": "https://h", "tls": { "insecure": "yes" } }"#, "$.services.orders.tls.insecure: must be true"),
            (
                #"{ "url": "https://h", "tls": { "insecure": true, "ca": "c.pem" } }"#,
                "$.services.orders.tls.insecure: true verifies nothing"
            ),
            (#"{ "url": "https://h", "tls": { "sni": "x" } }"#, "$.services.orders.tls.sni: unknown key"),
            ("{ \(one), \"health\": \"/healthz\" }", "$.services.orders.health: must be an object"),
            ("{ \(one), \"health\": { \"interval\": \"1s\" } }", "$.services.orders.health.path: is required"),
            (
                "{ \(one), \"health\": { \"path\": \"healthz\" } }",
                "$.services.orders.health.path: \"healthz\" is not a"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"interval\": \"2\" } }",
                "$.services.orders.health.interval: must be a duration"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"interval\": \"1ms\" } }",
                "$.services.orders.health.interval: \"1ms\" is shorter than 100ms"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"timeout\": 1 } }",
                "$.services.orders.health.timeout: must be a duration"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"unhealthyAfter\": 0 } }",
                "$.services.orders.health.unhealthyAfter: must be a whole number"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"healthyAfter\": 1.5 } }",
                "$.services.orders.health.healthyAfter: must be a whole number"
            ),
            (
                "{ \(one), \"health\": { \"path\": \"/h\", \"every\": 1 } }",
                "$.services.orders.health.every: unknown key"
            ),
            ("{ \(one), \"eject\": true }", "$.services.orders.eject: must be an object"),
            ("{ \(one), \"eject\": { \"consecutive\": 0 } }", "$.services.orders.eject.consecutive: must be a whole"),
            ("{ \(one), \"eject\": { \"maxPercent\": 101 } }", "$.services.orders.eject.maxPercent: must be a whole"),
            ("{ \(one), \"eject\": { \"base\": \"soon\" } }", "$.services.orders.eject.base: must be a duration"),
            (
                "{ \(one), \"eject\": { \"base\": \"1m\", \"max\": \"10s\" } }",
                "$.services.orders.eject.max: 10s is shorter than base 60s"
            ),
            ("{ \(one), \"eject\": { \"after\": 3 } }", "$.services.orders.eject.after: unknown key"),
            ("{ \(one), \"maxConnections\": 0 }", "$.services.orders.maxConnections: must be a whole number"),
            ("{ \(one), \"maxConnections\": \"10\" }", "$.services.orders.maxConnections: must be a whole number"),
            ("{ \(one), \"maxPending\": 2.5 }", "$.services.orders.maxPending: must be a whole number"),
            ("{ \(one), \"retryBudget\": 1.5 }", "$.services.orders.retryBudget: must be a share"),
            ("{ \(one), \"retryBudget\": \"20%\" }", "$.services.orders.retryBudget: must be a share"),
            ("{ \(one), \"dnsRefresh\": \"10ms\" }", "$.services.orders.dnsRefresh: \"10ms\" is shorter than 1s"),
            ("{ \(one), \"weight\": 2 }", "$.services.orders.weight: unknown key"),
        ]
        for (orders, expected) in cases {
            let found = self.problems(Self.table(orders: orders))
            #expect(found.contains { $0.hasPrefix(expected) }, "\(orders) → \(found)")
        }
        let monolith = self.problems(
            Self.table(
                monolith: #"{ "instances": ["http://127.0.0.1:1", "https://h"], "balance": 3 }"#,
                orders: #""http://127.0.0.1:2""#))
        #expect(monolith.contains { $0.hasPrefix("$.monolith.balance: 3 is not a balancing policy") }, "\(monolith)")
    }

    @Test func anInstanceThatDoesNotResolveIsNamedByItsIndex() {
        let table = try? RouteTable.parse(
            Self.table(orders: #"{ "instances": ["http://127.0.0.1:1", "http://nowhere.invalid:2"] }"#))
        struct Unknown: Error {}
        #expect(throws: RouteTableError.self) {
            _ = try table?.resolvingUpstreams { upstream throws(Unknown) -> Int in
                if upstream.host == "nowhere.invalid" { throw Unknown() }
                return upstream.port
            }
        }
        do {
            _ = try table?.resolvingUpstreams { upstream throws -> Int in
                if upstream.host == "nowhere.invalid" { throw Unknown() }
                return upstream.port
            }
        } catch {
            #expect(error.problems.map(\.path) == ["$.services.orders.instances[1]"])
        }
    }
}
