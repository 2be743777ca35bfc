import AdminAPI
import Foundation
import Gateway
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

/// A table of the test's own: `/r/{id}` for reads and writes (`stage`), a route declared with a trailing slash and one
/// without it.
func pathRoutes(monolith: Int, service: Int, stage: String, paths: String? = nil) -> String {
    """
    { "monolith": "http://127.0.0.1:\(monolith)", "services": { "svc": "http://127.0.0.1:\(service)" },\
    \(paths.map { #" "paths": "\#($0)","# } ?? "")
      "routes": [
        { "id": "r.get", "method": "GET", "path": "/r/{id}", "service": "svc", "stage": "\(stage)", "shadow": { \
    "timeout": "30s" } },
        { "id": "r.update", "method": "PATCH", "path": "/r/{id}", "service": "svc", "stage": "\(stage)", "shadow": { \
    "writes": "dry-run", "timeout": "30s" } },
        { "id": "orders.list", "method": "GET", "path": "/orders", "stage": "transform" },
        { "id": "orders.index", "method": "GET", "path": "/orders/", "service": "svc", "stage": "eliminate" },
        { "id": "files", "method": "GET", "path": "/files/*", "service": "svc", "stage": "eliminate" } ] }
    """
}

/// Spellings of `/r/ID` that origin routers read as `/r/ID`.
let pathVariants = ["/r/ID/", "//r/ID", "/r//ID", "/r/./ID", "/x/../r/ID", "/r/%49D", "/r/%49%44", "//r/.//ID//"]

extension ProxyHarness {
    func send(_ method: String, _ target: String, body: String? = nil) async throws -> RawResponse {
        var lines = ["\(method) \(target) HTTP/1.1", "Host: proxy.test", "Connection: close"]
        if let body { lines += ["Content-Type: application/json", "Content-Length: \(body.utf8.count)"] }
        let text = lines.joined(separator: "\r\n") + "\r\n\r\n" + (body ?? "")
        guard let response = RawHTTP.parse(try await RawHTTP.send(text, port: self.proxyPort).text).first else {
            throw RawHTTP.RawError.noResponse
        }
        return response
    }

    /// The value of a counter line of `/metrics` (0 when absent).
    func metric(_ series: String) async throws -> Int {
        let text = try await self.admin("GET", "/metrics").body
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(series + " ") }) else { return 0 }
        return Int(line.split(separator: " ").last ?? "") ?? 0
    }
}

func errorCode(_ response: RawResponse) -> String? {
    (json(response.body)["error"] as? [String: Any])?["code"] as? String
}

@Suite("Proxy: one canonical path per resource")
struct CanonicalPathProxyTests {
    /// The vulnerability of issue 17: with a write route in eliminate, its path variants went to the monolith
    /// (`unmatched`), which applied the write.
    @Test func everySpellingOfAnEliminatedWriteReachesTheService() async throws {
        try await ProxyHarness.run(routes: { pathRoutes(monolith: $0, service: $1, stage: "eliminate") }) { harness in
            for target in ["/r/ID"] + pathVariants {
                let answer = try await harness.send("PATCH", target, body: #"{"name":"new"}"#)
                #expect(answer.status == 200, "\(target)")
                #expect(json(answer.body)["upstream"] as? String == "service", "\(target) reached the monolith")
                #expect(
                    json(answer.body)["uri"] as? String == "/r/ID", "\(target): the upstream sees the canonical path")
            }
            #expect(harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty)
            let counted =
                #"strangler_requests_total{route="r.update",stage="eliminate",side="service","#
                + #"upstream="http://127.0.0.1:\#(harness.servicePort)",status="2xx"}"#
            #expect(
                try await harness.metric(counted) == pathVariants.count + 1,
                "every variant counts on the route it matched")
            #expect(try await !harness.admin("GET", "/metrics").body.contains(#"route="unmatched""#))
        }
    }

    /// In coexist, every spelling is shadowed and compared as the route's evidence, and both sides see the canonical
    /// path.
    @Test func everySpellingIsShadowedAndCountedOnItsRoute() async throws {
        try await ProxyHarness.run(
            routes: { pathRoutes(monolith: $0, service: $1, stage: "coexist") }, configure: { $0.noiseShare = 0 }
        ) { harness in
            for target in ["/r/ID"] + pathVariants {
                let answer = try await harness.send("GET", target)
                #expect(json(answer.body)["upstream"] as? String == "monolith", "\(target)")
                #expect(json(answer.body)["uri"] as? String == "/r/ID", "\(target)")
                let write = try await harness.send("PATCH", target, body: #"{"name":"new"}"#)
                #expect(json(write.body)["upstream"] as? String == "monolith", "\(target)")
            }
            let count = pathVariants.count + 1
            let reads = try await harness.waitForDiffs("r.get", "compared", atLeast: count)
            #expect(reads["compared"] as? Int == count)
            let writes = try await harness.waitForDiffs("r.update", "compared", atLeast: count)
            #expect(writes["compared"] as? Int == count, "every spelling of the write is dry-run shadowed")
            let shadowed = harness.service.seenRequests.withLockedValue { $0 }
            #expect(shadowed.count == 2 * count)
            #expect(shadowed.allSatisfy { $0.path == "/r/ID" }, "\(shadowed.map(\.path))")
            #expect(shadowed.filter { $0.method == "PATCH" }.allSatisfy { $0.headers["strangler-dry-run"] == "1" })
            #expect(harness.monolith.seenRequests.withLockedValue { $0 }.allSatisfy { $0.path == "/r/ID" })
        }
    }

    @Test func encodedSlashesAndDotsStayData() async throws {
        try await ProxyHarness.run(routes: { pathRoutes(monolith: $0, service: $1, stage: "eliminate") }) { harness in
            for (target, forwarded) in [
                ("/r/a%2Fb", "/r/a%2Fb"), ("/r/a%2fb", "/r/a%2Fb"), ("/r/%2E%2E", "/r/%2E%2E"),
                ("/r/.%2e", "/r/%2E%2E"),
                ("/r/a%2F..%2Fb", "/r/a%2F..%2Fb"), ("//r/./ID?next=%2F..%2F&x=//./", "/r/ID?next=%2F..%2F&x=//./"),
            ] {
                let answer = try await harness.send("GET", target)
                #expect(json(answer.body)["upstream"] as? String == "service", "\(target) is one segment under /r/")
                #expect(json(answer.body)["uri"] as? String == forwarded, "\(target)")
            }
            // Where an encoded slash would have made two segments, the request matches no route.
            let nested = try await harness.send("GET", "/r%2FID")
            #expect(json(nested.body)["upstream"] as? String == "monolith")
            #expect(json(nested.body)["uri"] as? String == "/r%2FID")
        }
    }

    @Test func invalidPercentEncodingsAndFragmentsAre400() async throws {
        try await ProxyHarness.run(routes: { pathRoutes(monolith: $0, service: $1, stage: "eliminate") }) { harness in
            for target in ["/r/%zz", "/r/ID%", "/r/%4"] {
                let answer = try await harness.send("GET", target)
                #expect(answer.status == 400, "\(target)")
                #expect(errorCode(answer) == "bad_request")
                #expect(
                    (json(answer.body)["error"] as? [String: Any])?["message"] as? String
                        == "malformed request: the path \(target) has an invalid percent-encoding ('%' must be "
                        + "followed by two hex digits)"
                )
            }
            let fragment = try await harness.send("GET", "/public#/../r/ID")
            #expect(fragment.status == 400 && errorCode(fragment) == "bad_request")
            #expect(
                (json(fragment.body)["error"] as? [String: Any])?["message"] as? String
                    == "malformed request: the path /public#/../r/ID has a '#' (a fragment is never sent in a request "
                    + "target)"
            )
            let relative = try await harness.send("GET", "r/ID")
            #expect(
                (json(relative.body)["error"] as? [String: Any])?["message"] as? String
                    == "malformed request: the path r/ID does not start with '/'")
            #expect(try await harness.send("GET", "/r/ID?q=%zz").status == 200, "the query is not the path's business")
            #expect(harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty)
        }
    }

    @Test func strictPathsRefuseEverySpellingButTheCanonicalOne() async throws {
        try await ProxyHarness.run(routes: {
            pathRoutes(monolith: $0, service: $1, stage: "eliminate", paths: "strict")
        }) { harness in
            for target in pathVariants + ["/r/a%2fb", "/leads//1"] {
                let answer = try await harness.send("PATCH", target, body: "{}")
                #expect(answer.status == 400, "\(target)")
                #expect(errorCode(answer) == "non_canonical_path", "\(target)")
            }
            let refused = try await harness.send("GET", "//r/ID")
            #expect(
                (json(refused.body)["error"] as? [String: Any])?["message"] as? String
                    == #"the path //r/ID is not canonical (it reads as /r/ID); the route table serves canonical paths "#
                    + #"only ("paths": "strict")"#
            )
            #expect((json(refused.body)["error"] as? [String: Any])?["route"] as? String == "r.get")
            #expect(
                harness.monolith.seenPaths.withLockedValue { $0 }.isEmpty
                    && harness.service.seenPaths.withLockedValue { $0 }.isEmpty)
            for target in ["/r/ID", "/r/a%2Fb", "/r/%2E%2E", "/orders/", "/files/a/", "/leads/1/"] {
                #expect(try await harness.send("GET", target).status == 200, "\(target) is canonical")
            }
        }
    }

    @Test func aTrailingSlashTemplateMatchesOnlyItsForm() async throws {
        try await ProxyHarness.run(routes: { pathRoutes(monolith: $0, service: $1, stage: "eliminate") }) { harness in
            for (target, upstream, forwarded) in [
                ("/orders", "monolith", "/orders"), ("/orders/", "service", "/orders/"),
                ("//orders//", "service", "/orders/"),
                ("/orders/./", "service", "/orders/"),
                // A route without the slash takes the slash form, which goes out without it.
                ("/r/ID/", "service", "/r/ID"),
                // A trailing wildcard, and what matches nothing, keep the slash.
                ("/files/a/", "service", "/files/a/"), ("/leads//1/", "monolith", "/leads/1/"),
                ("/leads/1/./", "monolith", "/leads/1/"),
            ] {
                let answer = try await harness.send("GET", target)
                #expect(json(answer.body)["upstream"] as? String == upstream, "\(target)")
                #expect(json(answer.body)["uri"] as? String == forwarded, "\(target)")
            }
            let index =
                #"strangler_requests_total{route="orders.index",stage="eliminate",side="service","#
                + #"upstream="http://127.0.0.1:\#(harness.servicePort)",status="2xx"}"#
            #expect(try await harness.metric(index) == 3)
        }
    }

    @Test func absoluteFormTargetsAreRoutedByTheirCanonicalPath() async throws {
        try await ProxyHarness.run(routes: { pathRoutes(monolith: $0, service: $1, stage: "eliminate") }) { harness in
            let result = try await RawHTTP.send(
                "GET http://crm.test//r/./ID/?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n", port: harness.proxyPort)
            let answer = RawHTTP.parse(result.text).first
            #expect(json(answer?.body ?? "")["upstream"] as? String == "service")
            #expect(json(answer?.body ?? "")["uri"] as? String == "/r/ID?x=1")
        }
    }
}
