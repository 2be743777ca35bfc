import Testing

@testable import RouteTable

@Suite("Canonical paths")
struct CanonicalPathTests {
    func normalized(_ path: String) -> String? {
        try? CanonicalPath.normalize(path).get()
    }

    func verdict(_ target: String) -> (pathLength: Int, verdict: CanonicalPath.Verdict) {
        Array(target.utf8).withUnsafeBufferPointer { CanonicalPath.scan($0) }
    }

    /// RFC 3986 §5.2.4's own examples, and §5.4's normal and abnormal examples as the paths they merge to (base
    /// `http://a/b/c/d;p?q`).
    @Test(arguments: [
        ("/a/b/c/./../../g", "/a/g"), ("/mid/content=5/../6", "/mid/6"),
        ("/b/c/g", "/b/c/g"), ("/b/c/./g", "/b/c/g"), ("/b/c/g/", "/b/c/g/"), ("/b/c/.", "/b/c/"), ("/b/c/./", "/b/c/"),
        ("/b/c/..", "/b/"), ("/b/c/../", "/b/"), ("/b/c/../g", "/b/g"), ("/b/c/../..", "/"), ("/b/c/../../", "/"),
        ("/b/c/../../g", "/g"),
        ("/b/c/../../../g", "/g"), ("/b/c/../../../../g", "/g"), ("/./g", "/g"), ("/../g", "/g"),
        ("/b/c/g.", "/b/c/g."),
        ("/b/c/.g", "/b/c/.g"), ("/b/c/g..", "/b/c/g.."), ("/b/c/..g", "/b/c/..g"), ("/b/c/./../g", "/b/g"),
        ("/b/c/./g/.", "/b/c/g/"),
        ("/b/c/g/./h", "/b/c/g/h"), ("/b/c/g/../h", "/b/c/h"), ("/b/c/g;x=1/./y", "/b/c/g;x=1/y"),
        ("/b/c/g;x=1/../y", "/b/c/y"),
    ])
    func removesDotSegmentsAsRFC3986Says(path: String, expected: String) {
        #expect(self.normalized(path) == expected)
    }

    @Test(arguments: [
        // Empty segments merge, as origin routers read them.
        ("//deals/7", "/deals/7"), ("/deals//7", "/deals/7"), ("/deals/7//", "/deals/7/"), ("//", "/"), ("/", "/"),
        ("", "/"),
        ("/a//../b", "/b"),
        // Unreserved characters are decoded, other encodings get uppercase hex digits.
        ("/deals/%49D", "/deals/ID"), ("/%7Euser/%2d%5f%2e1", "/~user/-_.1"), ("/a%2fb", "/a%2Fb"),
        ("/a%2Fb/c", "/a%2Fb/c"), ("/caf%c3%a9", "/caf%C3%A9"), ("/%20x", "/%20x"),
        // Encoded dots are data, never dot-segments.
        ("/r/%2E%2E", "/r/%2E%2E"), ("/r/%2e%2e/x", "/r/%2E%2E/x"), ("/r/.%2E", "/r/%2E%2E"), ("/r/%2E", "/r/%2E"),
        ("/r/%2E%2E%2E", "/r/..."),
        ("/r/a%2Eb", "/r/a.b"), ("/r/%2E%2E/../x", "/r/x"),
        // `..` never climbs above the root; `*` is asterisk-form.
        ("/..", "/"), ("/../..", "/"), ("*", "*"),
    ])
    func mergesSlashesAndNormalizesPercentEncoding(path: String, expected: String) {
        #expect(self.normalized(path) == expected, "\(path)")
    }

    @Test(arguments: ["/a%zz", "/a%", "/a%4", "/%g0/b", "/a/%%41"])
    func refusesInvalidPercentEncodings(path: String) {
        #expect(throws: CanonicalPath.Problem.invalidPercentEncoding) { try CanonicalPath.normalize(path).get() }
        #expect(self.verdict(path).verdict == .invalid(.invalidPercentEncoding))
    }

    @Test func refusesFragments() {
        #expect(throws: CanonicalPath.Problem.fragment) { try CanonicalPath.normalize("/r/ID#x").get() }
        #expect(self.verdict("/r/a#/../ID?q").verdict == .invalid(.fragment))
        #expect(self.verdict("/r/a#/../ID?q").pathLength == 11)
        #expect(self.verdict("/r/ID?q=#").verdict == .canonical, "the query is not the path")
    }

    @Test func refusesTargetsThatAreNotPaths() {
        #expect(throws: CanonicalPath.Problem.notAPath) { try CanonicalPath.normalize("deals/7").get() }
        #expect(self.verdict("deals/7?x").verdict == .invalid(.notAPath))
        #expect(self.verdict("*").verdict == .canonical)
    }

    @Test func theScanStopsAtTheQueryAndLeavesItAlone() {
        #expect(self.verdict("/deals/7?a=%zz&b=//..").pathLength == 8)
        #expect(self.verdict("/deals/7?a=%zz&b=//..").verdict == .canonical)
        #expect(self.verdict("/deals//7?x").pathLength == 9)
        #expect(self.verdict("/deals//7?x").verdict == .normalizable)
        #expect(self.verdict("?x").pathLength == 0)
        #expect(self.verdict("/a%4?x").verdict == .invalid(.invalidPercentEncoding))
    }

    /// The one scan and the rewrite agree: a path is canonical exactly when normalizing it changes nothing, and a
    /// normalized path is canonical (over every path of up to four pieces of an alphabet of troublemakers).
    @Test func theScanAgreesWithTheRewrite() {
        let pieces = ["/", ".", "a", "%2E", "%2e", "%41", "%2F", "%zz", "~", "%7e", "%", "..", "#"]
        var checked = 0
        func visit(_ path: String, depth: Int) {
            let candidate = "/" + path
            let scan = self.verdict(candidate).verdict
            switch CanonicalPath.normalize(candidate) {
            case .failure(let problem):
                #expect(scan == .invalid(problem), "\(candidate)")
            case .success(let canonical):
                #expect((scan == .canonical) == (canonical == candidate), "\(candidate) → \(canonical): \(scan)")
                #expect(self.verdict(canonical).verdict == .canonical, "\(candidate) → \(canonical) is not canonical")
                #expect(self.normalized(canonical) == canonical, "\(candidate): normalizing twice changes \(canonical)")
            }
            checked += 1
            guard depth < 4 else { return }
            for piece in pieces { visit(path + piece, depth: depth + 1) }
        }
        visit("", depth: 0)
        #expect(checked > 20_000)
    }
}

@Suite("routes.json: paths and trailing slashes")
struct RouteTablePathTests {
    func table(_ routes: String, paths: String? = nil) throws -> RouteTable {
        try RouteTable.parse(
            """
            { "monolith": "http://127.0.0.1:8081", "services": { "s": "http://127.0.0.1:8082" },\
            \(paths.map { " \"paths\": \($0)," } ?? "")
              "routes": [ \(routes) ] }
            """)
    }

    func problems(_ paths: String) -> [String] {
        do {
            _ = try self.table(#"{ "id": "a", "method": "GET", "path": "/a", "stage": "transform" }"#, paths: paths)
            return []
        } catch let error as RouteTableError {
            return error.problems.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    @Test func pathsIsNormalizeByDefaultAndStrictOnRequest() throws {
        let route = #"{ "id": "a", "method": "GET", "path": "/a", "stage": "transform" }"#
        #expect(try self.table(route).paths == .normalize)
        #expect(try self.table(route, paths: #""normalize""#).paths == .normalize)
        #expect(try self.table(route, paths: #""strict""#).paths == .strict)
    }

    @Test(arguments: [#""lenient""#, "true", "1", #"["strict"]"#])
    func refusesAnyOtherPathsValue(value: String) {
        let problems = self.problems(value)
        #expect(problems.count == 1)
        #expect(
            problems.first?.hasPrefix("$.paths: must be \"normalize\" (the default) or \"strict\"") == true,
            "\(problems)")
    }

    func routing(_ table: RouteTable, _ method: String, _ path: String) -> (id: String?, dropsSlash: Bool) {
        let result = Array(path.utf8).withUnsafeBufferPointer { table.routing(method: method, path: $0) }
        return (result.route?.id, result.dropsTrailingSlash)
    }

    @Test func aTrailingSlashTemplateIsItsOwnRoute() throws {
        let table = try self.table(
            """
            { "id": "orders.list", "method": "GET", "path": "/orders", "stage": "transform" },
            { "id": "orders.index", "method": "GET", "path": "/orders/", "stage": "transform" },
            { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "stage": "transform" },
            { "id": "orders.any", "method": "GET", "path": "/orders/*", "stage": "transform" },
            { "id": "files", "method": "GET", "path": "/files/*", "stage": "transform" }
            """)
        #expect(self.routing(table, "GET", "/orders") == ("orders.list", false))
        #expect(self.routing(table, "GET", "/orders/") == ("orders.index", false))
        // No slash template: the route of the path without the slash, forwarded without it.
        #expect(self.routing(table, "GET", "/orders/7") == ("orders.get", false))
        #expect(self.routing(table, "GET", "/orders/7/") == ("orders.get", true))
        #expect(self.routing(table, "HEAD", "/orders/7/") == ("orders.get", true))
        // A trailing wildcard keeps the slash; what matches nothing keeps it too.
        #expect(self.routing(table, "GET", "/orders/7/lines/") == ("orders.any", false))
        #expect(self.routing(table, "GET", "/files/") == ("files", false))
        #expect(self.routing(table, "GET", "/leads/") == (nil, false))
        #expect(self.routing(table, "GET", "/") == (nil, false))
        #expect(table.match(method: "GET", path: "/orders/7/")?.id == "orders.get")
    }

    @Test func aTemplateDeclaredOnlyWithTheSlashAlsoTakesThePathWithoutIt() throws {
        // Origins read both spellings alike: neither may pass the route by (to the monolith, or to a wildcard).
        let table = try self.table(
            """
            { "id": "orders.create", "method": "POST", "path": "/orders/", "service": "s", "stage": "eliminate" },
            { "id": "orders.item", "method": "POST", "path": "/orders/{id}/", "service": "s", "stage": "eliminate" },
            { "id": "everything", "method": "POST", "path": "/*", "stage": "transform" },
            { "id": "deep", "method": "POST", "path": "/orders/{id}/lines", "stage": "transform" }
            """)
        #expect(self.routing(table, "POST", "/orders/") == ("orders.create", false))
        #expect(self.routing(table, "POST", "/orders") == ("orders.create", false))
        #expect(self.routing(table, "POST", "/orders/7") == ("orders.item", false))
        // A more specific template without the slash keeps its own path.
        #expect(self.routing(table, "POST", "/orders/7/lines") == ("deep", false))
        #expect(self.routing(table, "POST", "/leads") == ("everything", false))
        // Without any slash template, nothing changes.
        let plain = try self.table(#"{ "id": "a", "method": "GET", "path": "/a", "stage": "transform" }"#)
        #expect(self.routing(plain, "GET", "/b") == (nil, false))
    }

    @Test func templatesDifferingOnlyByTheSlashAreDifferentShapes() throws {
        let slash = try PathTemplate.parse("/orders/{id}/").get()
        let plain = try PathTemplate.parse("/orders/{id}").get()
        #expect(slash.hasTrailingSlash && !plain.hasTrailingSlash)
        #expect(slash.shape != plain.shape)
        #expect(slash.matches(Substring("/orders/7/").utf8) && !slash.matches(Substring("/orders/7").utf8))
        #expect(plain.matches(Substring("/orders/7").utf8) && !plain.matches(Substring("/orders/7/").utf8))
        #expect(slash.parameters(in: "/orders/7/") == ["id": "7"])
    }

    @Test(arguments: [
        ("/orders//x", "has an empty segment ('//')"), ("/orders/*/", "'*' is allowed only as the whole last segment"),
        ("/a/../b", "segment '..' is a dot-segment"), ("/a/./b", "segment '.' is a dot-segment"),
        ("/%41pi", "segment '%41pi' is not canonical (write it 'Api')"),
        ("/a%2fb", "segment 'a%2fb' is not canonical (write it 'a%2Fb')"),
        ("/a%zz", "segment 'a%zz' has an invalid percent-encoding"),
    ])
    func templatesMustBeCanonical(template: String, reason: String) {
        switch PathTemplate.parse(template) {
        case .success: Issue.record("\(template) was accepted")
        case .failure(let error): #expect(error.reason.hasPrefix(reason), "\(error.reason)")
        }
    }
}
