import Foundation
import JSON
import Testing

@testable import RouteTable

@Suite("routes.json: validation")
struct RouteTableValidationTests {
    static let valid = """
        { "monolith": "http://127.0.0.1:8081",
          "services": { "contacts": "http://127.0.0.1:8082" },
          "routes": [
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", "stage": \
        "transform" } ] }
        """

    func problems(_ text: String) -> [String] {
        do {
            _ = try RouteTable.parse(text)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func acceptsTheIssuesExample() throws {
        let table = try RouteTable.parse(Self.valid)
        #expect(table.routes.count == 1)
        #expect(table.monolith.port == 8081)
        #expect(table.services["contacts"]?.authority == "127.0.0.1:8082")
        #expect(table.routes[0].timeout == .seconds(30))
    }

    @Test func theRepositorysOwnRoutesFileIsValid() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("routes.json")
        let table = try RouteTable.parse(Array(try Data(contentsOf: url)))
        #expect(table.routes.count >= 26)
        #expect(table.routes.allSatisfy { $0.stage == .transform })
        #expect(table.match(method: "GET", path: "/contacts/con_1")?.id == "contacts.get")
        #expect(table.match(method: "POST", path: "/leads/led_1/convert")?.id == "monolith.convertLead")
        // Lead conversion stays in the monolith (no service serves it), so `leads.*` names only the leads service's
        // routes.
        #expect(table.route(id: "monolith.convertLead")?.service == nil)
        #expect(table.routes.filter { $0.id.hasPrefix("leads.") }.allSatisfy { $0.service == "leads" })
    }

    @Test func refusesUnknownKeysWithTheirPath() {
        let text = Self.valid.replacingOccurrences(
            of: #""stage": "transform" }"#, with: #""stage": "transform", "colour": "red" }"#
        )
        .replacingOccurrences(of: #""monolith""#, with: #""extra": 1, "monolith""#)
        let found = self.problems(text)
        #expect(found.contains { $0.hasPrefix("$.routes[0].colour: unknown key") })
        #expect(found.contains { $0.hasPrefix("$.extra: unknown key") })
    }

    @Test func refusesUnknownStage() {
        let found = self.problems(
            Self.valid.replacingOccurrences(of: #""stage": "transform""#, with: #""stage": "coexit""#))
        #expect(found == [#"$.routes[0].stage: unknown stage "coexit" (expected transform, coexist or eliminate)"#])
    }

    @Test func refusesUndeclaredService() {
        let found = self.problems(
            Self.valid.replacingOccurrences(of: #""service": "contacts""#, with: #""service": "billing""#))
        #expect(found == [#"$.routes[0].service: service "billing" is not declared in $.services"#])
    }

    @Test func refusesDuplicateIdsAndDuplicateMethodAndTemplate() {
        let text = """
            { "monolith": "http://127.0.0.1:8081", "services": { "c": "http://127.0.0.1:8082" },
              "routes": [
                { "id": "a", "method": "GET", "path": "/contacts/{id}", "service": "c", "stage": "transform" },
                { "id": "a", "method": "POST", "path": "/contacts", "service": "c", "stage": "transform" },
                { "id": "b", "method": "GET", "path": "/contacts/{contactId}", "service": "c", "stage": "transform" } \
            ] }
            """
        let found = self.problems(text)
        #expect(found.contains(#"$.routes[1].id: duplicate id "a" (also $.routes[0])"#))
        #expect(found.contains("$.routes[2].path: GET /contacts/{contactId} is already routed by $.routes[0]"))
    }

    @Test func refusesBadURLs() {
        for (url, fragment) in [
            ("ftp://x", "must be an http:// or https:// URL"), ("http://h/a b", "not canonical"),
            ("http://", "has no host"),
            ("http://h:99999", "outside 1–65535"), ("http://h/path?q", "no query"), ("http://h:port", "invalid port"),
        ] {
            let found = self.problems(Self.valid.replacingOccurrences(of: "http://127.0.0.1:8081", with: url))
            #expect(
                found.count == 1 && found[0].hasPrefix("$.monolith: \"\(url)\"") && found[0].contains(fragment),
                "\(url): \(found)")
        }
        let service = self.problems(
            Self.valid.replacingOccurrences(of: "http://127.0.0.1:8082", with: "localhost:8082"))
        #expect(service.first?.hasPrefix("$.services.contacts:") == true)
    }

    @Test func refusesMalformedDocumentsAndFieldsWithReasons() {
        #expect(self.problems("{ \"monolith\": ")[0].hasPrefix("$: not valid JSON: line 1"))
        #expect(self.problems("[]") == ["$: must be an object, not array"])
        let missing = self.problems(#"{ "routes": [ { "id": "x" } ] }"#)
        #expect(missing.contains { $0.hasPrefix("$.monolith: is required") })
        #expect(missing.contains("$.routes[0].method: is required"))
        #expect(missing.contains("$.routes[0].path: is required"))
        #expect(missing.contains("$.routes[0].stage: is required"))
        let wrong = self.problems(
            Self.valid.replacingOccurrences(of: #""method": "GET""#, with: #""method": "FETCH""#)
                .replacingOccurrences(of: #""/contacts/{id}""#, with: #""contacts/{id""#))
        #expect(wrong.contains { $0.hasPrefix(#"$.routes[0].method: unknown method "FETCH""#) })
        #expect(wrong.contains { $0.hasPrefix(#"$.routes[0].path: "contacts/{id" must start with '/'"#) })
        let eliminateWithoutService = self.problems(
            Self.valid.replacingOccurrences(
                of: #""service": "contacts", "stage": "transform""#, with: #""stage": "eliminate""#))
        #expect(
            eliminateWithoutService == [#"$.routes[0].stage: stage eliminate needs a "service" to send requests to"#])
        let badShadow = self.problems(
            Self.valid.replacingOccurrences(
                of: #""stage": "transform" }"#,
                with:
                    #""stage": "coexist", "timeout": "soon", "shadow": { "sample": 2, "sampleBy": "{nope}", "writes": "#
                    + #""always", "ignore": ["updatedAt"] } }"#
            ))
        #expect(badShadow.contains { $0.hasPrefix("$.routes[0].timeout:") })
        #expect(badShadow.contains("$.routes[0].shadow.sample: must be a number from 0.0 to 1.0"))
        #expect(badShadow.contains("$.routes[0].shadow.sampleBy: the route's path has no parameter {nope}"))
        #expect(badShadow.contains { $0.hasPrefix("$.routes[0].shadow.writes:") })
        #expect(badShadow.contains { $0.hasPrefix("$.routes[0].shadow.ignore[0]:") })
    }

    @Test func acceptsAFullShadowPolicy() throws {
        let table = try RouteTable.parse(
            Self.valid.replacingOccurrences(
                of: #""stage": "transform" }"#,
                with:
                    #""stage": "coexist", "timeout": "1.5s", "shadow": { "sample": 0.5, "sampleBy": "{id}", "writes": "#
                    + #""dry-run", "timeout": "250ms", "ignore": ["/updatedAt", "/items/*/version"], "arrays": { "#
                    + #""/items": "id" }, "redact": ["/email"], "serve": 0.1, "version": ["/meta/version"] } }"#
            ))
        let route = table.routes[0]
        #expect(route.timeout == .milliseconds(1500))
        let shadow = try #require(route.shadow)
        #expect(shadow.sample == 0.5)
        #expect(shadow.sampleBy == .pathParameter("id"))
        #expect(shadow.writes == .dryRun)
        #expect(shadow.timeout == .milliseconds(250))
        #expect(shadow.arrays == ["/items": "id"])
        #expect(shadow.serve == 0.1)
        #expect(shadow.version == ["/meta/version"])
        #expect(
            ShadowPolicy().version == ["/version", "/items/*/version"],
            "records' versions are looked for where the CRM keeps them")
        let refused = self.problems(
            Self.valid.replacingOccurrences(
                of: #""stage": "transform" }"#, with: #""stage": "coexist", "shadow": { "version": "/version" } }"#))
        #expect(refused.contains { $0.hasPrefix("$.routes[0].shadow.version:") }, "\(refused)")
    }

    /// Policies and upstreams keep their fields in a shared box: still values, copies independent and compared by
    /// content.
    @Test func policiesAndUpstreamsAreValues() throws {
        var policy = ShadowPolicy()
        policy.ignore = ["/a"]
        var copy = policy
        #expect(copy == policy)
        copy.ignore.append("/b")
        copy.sample = 0.25
        #expect(policy.ignore == ["/a"] && policy.sample == 1.0, "a copy's change stays in the copy")
        #expect(copy.ignore == ["/a", "/b"] && copy.sample == 0.25)
        #expect(copy != policy)
        var same = ShadowPolicy()
        same.ignore = ["/a"]
        #expect(same == policy, "equal by content, not by box")

        let upstream = try Upstream.parse("http://127.0.0.1:8082").get()
        #expect(upstream == (try Upstream.parse("http://127.0.0.1:8082").get()))
        #expect(upstream != (try Upstream.parse("http://localhost:8082").get()))
        #expect(
            upstream.host == "127.0.0.1" && upstream.port == 8082 && upstream.authority == "127.0.0.1:8082"
                && upstream.url == "http://127.0.0.1:8082")
    }
}

@Suite("routes.json: matching")
struct RouteMatchingTests {
    static let table = try! RouteTable.parse(
        """
        { "monolith": "http://127.0.0.1:8081", "services": { "s": "http://127.0.0.1:8082" },
          "routes": [
            { "id": "all", "method": "GET", "path": "/*", "service": "s", "stage": "transform" },
            { "id": "contacts.any", "method": "GET", "path": "/contacts/*", "service": "s", "stage": "transform" },
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "s", "stage": "eliminate" },
            { "id": "contacts.me", "method": "GET", "path": "/contacts/me", "service": "s", "stage": "transform" },
            { "id": "contacts.deals", "method": "GET", "path": "/contacts/{id}/deals", "service": "s", "stage": \
        "transform" },
            { "id": "contacts.list", "method": "GET", "path": "/contacts", "service": "s", "stage": "transform" },
            { "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "s", "stage": "transform" } ] }
        """)

    @Test(arguments: [
        ("GET", "/contacts/con_1", "contacts.get"),
        ("GET", "/contacts/me", "contacts.me"),
        ("GET", "/contacts/con_1/deals", "contacts.deals"),
        ("GET", "/contacts/con_1/notes/3", "contacts.any"),
        ("GET", "/contacts", "contacts.list"),
        ("GET", "/leads", "all"),
        ("GET", "/", "all"),
        ("POST", "/contacts", "contacts.create"),
        ("HEAD", "/contacts/con_1", "contacts.get"),
    ])
    func mostSpecificWins(method: String, path: String, expected: String) {
        #expect(Self.table.match(method: method, path: path)?.id == expected)
    }

    @Test func unmatchedGoesToTheMonolith() {
        #expect(Self.table.match(method: "POST", path: "/leads") == nil)
        #expect(Self.table.match(method: "DELETE", path: "/contacts/con_1") == nil)
        #expect(Self.table.upstream(for: nil) == Self.table.monolith)
        #expect(Self.table.upstream(for: Self.table.match(method: "GET", path: "/contacts/con_1")).port == 8082)
        #expect(Self.table.upstream(for: Self.table.match(method: "GET", path: "/contacts")).port == 8081)
    }

    @Test func templatesMatchWholeSegmentsOnly() throws {
        let template = try PathTemplate.parse("/contacts/{id}").get()
        #expect(template.matches(Substring("/contacts/1").utf8))
        #expect(!template.matches(Substring("/contacts/").utf8))
        #expect(!template.matches(Substring("/contacts").utf8))
        #expect(!template.matches(Substring("/contacts/1/").utf8))
        #expect(!template.matches(Substring("/contactsx/1").utf8))
        #expect(!template.matches(Substring("/contacts//1").utf8))
        #expect(template.parameters(in: "/contacts/abc") == ["id": "abc"])
        #expect(throws: TemplateError.self) { try PathTemplate.parse("/a/*/b").get() }
        #expect(throws: TemplateError.self) { try PathTemplate.parse("/a/{x}/{x}").get() }
    }
}
