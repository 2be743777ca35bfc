package import DiffStore
package import Foundation
package import Gateway
package import JSON
package import NIOConcurrencyHelpers
package import Proxy
package import RouteTable
package import Testing

@testable package import ControlPlane

// Fixtures and harness calls the gateway's test targets share: routes, gate policies, admin calls.

extension ProxyHarness {
    package func admin(
        _ method: String, _ path: String, token: String? = ProxyHarness.token, headers: [String] = [],
        body: String? = nil, rawBody: String? = nil
    ) async throws -> RawResponse {
        var lines = ["\(method) \(path) HTTP/1.1", "Host: admin", "Connection: close"]
        if let token { lines.append("Authorization: Bearer \(token)") }
        lines += headers
        if let body { lines += ["Content-Type: application/json", "Content-Length: \(body.utf8.count)"] }
        if rawBody == nil, body == nil, method == "POST" { lines.append("Content-Length: 0") }
        let text = lines.joined(separator: "\r\n") + "\r\n\r\n" + (body ?? rawBody ?? "")
        guard let response = RawHTTP.parse(try await RawHTTP.send(text, port: self.adminPort).text).first else {
            throw RawHTTP.RawError.noResponse
        }
        return response
    }

    package func upstreamAnswering(_ path: String) async throws -> String? {
        json(try await RawHTTP.get(path, port: self.proxyPort).body)["upstream"] as? String
    }
}

package enum GateFixture {
    /// contacts.get (GET, coexist), contacts.list (GET, transform), contacts.create (POST, coexist, dry-run writes),
    /// dead.get (GET, transform, its service refuses connections). Shadows wait 30 s (see ``coexistRoutes``).
    package static func routes(monolith: Int, service: Int, gates: String = "") -> String {
        """
        { "monolith": "http://127.0.0.1:\(monolith)",
          "services": { "contacts": "http://127.0.0.1:\(service)", "dead": "http://127.0.0.1:1" },
          "routes": [
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "shadow": { "timeout": "30s" }, \
        "service": "contacts", "stage": "coexist" },
            { "id": "contacts.list", "method": "GET", "path": "/contacts", "service": "contacts", "stage": "transform" \
        },
            { "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "contacts", "stage": \
        "coexist", "shadow": { "writes": "dry-run", "timeout": "30s" } },
            { "id": "dead.get", "method": "GET", "path": "/dead", "service": "dead", "stage": "transform" } ]\(gates) }
        """
    }

    /// The service in sync (lag `lag`), the monolith's reverse sync running, and (unless nil) a reconcile record.
    package static func prepare(
        _ harness: ProxyHarness, lag: Int = 0, reverseSync: Bool = true, reconcileClean: Bool? = true
    ) throws {
        self.prepare(service: harness.service, monolith: harness.monolith, lag: lag, reverseSync: reverseSync)
        if let reconcileClean { try self.reconcile(clean: reconcileClean, dataDirectory: harness.dataDirectory) }
    }

    package static func prepare(service: TestUpstream, monolith: TestUpstream, lag: Int = 0, reverseSync: Bool = true) {
        service.documents.withLockedValue {
            $0["/sync/status"] =
                #"{"lastEventId":10,"head":\#(10 + lag),"lagEvents":\#(lag),"lagSeconds":0,"lastError":null}"#
        }
        monolith.documents.withLockedValue {
            $0["/reverse-sync/status"] =
                #"{"feeds":[{"service":"contacts","url":"http://x","running":\#(reverseSync),"lastEventId":3,"head":3,"#
                + #""lagEvents":0,"lastError":null}]}"#
        }
    }

    package static func reconcile(clean: Bool, dataDirectory: String) throws {
        try ReconcileRecord(
            service: "contacts", clean: clean, compared: 40, missing: clean ? 0 : 2, extra: 0, differing: 0
        ).write(dataDirectory: dataDirectory)
    }

    /// Adds comparisons to the store: `matched` of `compared`, the rest under the given signatures.
    package static func record(
        _ store: DiffStore, route: String, compared: Int, matched: Int,
        signatures: [(id: String, text: String, count: Int)] = []
    ) throws {
        var batch = DiffBatch()
        var counts = RouteCounts()
        counts.compared = compared
        counts.matched = matched
        counts.mismatched = compared - matched
        batch.counts[route] = counts
        for signature in signatures {
            batch.count(signature: signature.id, text: signature.text, on: route, occurrences: signature.count)
        }
        try store.apply(batch)
    }

    package static func audit(_ harness: ProxyHarness) -> [JSONValue] {
        RouteControl.readAudit(path: harness.auditPath)
    }
}

extension ProxyHarness {
    package var dataDirectory: String { self.directory.appendingPathComponent("data").path }
    package var diffStore: DiffStore { self.proxy.recorder.store }

    package func etag() async throws -> String {
        try #require(try await self.admin("GET", "/admin/routes").header("etag"))
    }

    /// `POST /admin/stage` with a fresh ETag.
    package func stage(
        _ routes: String, _ stage: String, reason: String? = "test", force: Bool = false
    ) async throws -> RawResponse {
        let reasonJSON = reason.map { "\"\($0)\"" } ?? "null"
        return try await self.admin(
            "POST", "/admin/stage", headers: ["If-Match: \(try await self.etag())", "X-Strangler-Actor: tester"],
            body: #"{"routes":"\#(routes)","stage":"\#(stage)","reason":\#(reasonJSON),"force":\#(force)}"#)
    }

    package func stageOf(_ id: String) -> Stage? { self.proxy.store.snapshot.table.route(id: id)?.stage }

    package static func runGates(gates: String = "", _ body: (ProxyHarness) async throws -> Void) async throws {
        try await ProxyHarness.run(routes: { GateFixture.routes(monolith: $0, service: $1, gates: gates) }, body)
    }
}

/// The coexist table most shadow tests run: `contacts.get` and `contacts.create` shadowed by the policies given.
/// A policy that names no `timeout` gets 30 s rather than the 2 s default: in a full parallel run on two cores a
/// test upstream can take seconds to answer, and a shadow counted as timed out is not compared. Tests of the timeout
/// itself name theirs (`slow.get` has 300 ms).
package func coexistRoutes(
    monolith: Int, service: Int, shadow: String = "{}", writes: String = "{}", extra: String = ""
) -> String {
    let shadow = generousShadowTimeout(shadow)
    let writes = generousShadowTimeout(writes)
    return """
        { "monolith": "http://127.0.0.1:\(monolith)",
          "services": { "contacts": "http://127.0.0.1:\(service)", "dead": "http://127.0.0.1:1" },
          "routes": [
            { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", \
            "stage": "coexist", "shadow": \(shadow) },
            { "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "contacts", "stage": "coexist", \
            "shadow": \(writes) },
            { "id": "slow.get", "method": "GET", "path": "/slow/{id}", "service": "contacts", "stage": "coexist", \
            "shadow": { "timeout": "300ms" } },
            { "id": "dead.get", "method": "GET", "path": "/dead", "service": "dead", "stage": "coexist" }\(extra) ] }
        """
}

/// `policy` (a shadow policy's JSON object) with `"timeout": "30s"` when it names no timeout.
package func generousShadowTimeout(_ policy: String) -> String {
    let text = policy.trimmingCharacters(in: .whitespaces)
    guard text.hasPrefix("{"), !text.contains("\"timeout\"") else { return policy }
    let rest = text.dropFirst().trimmingCharacters(in: .whitespaces)
    return #"{ "timeout": "30s""# + (rest == "}" ? " }" : ", " + rest)
}

extension ProxyHarness {
    /// The `GET /admin/diffs` entry of a route (flushed first by the endpoint), or an empty object.
    package func diffs(_ route: String) async throws -> [String: Any] {
        let summary = json(try await self.admin("GET", "/admin/diffs?route=\(route)").body)
        return (summary["routes"] as? [[String: Any]])?.first ?? [:]
    }

    /// Waits until the route's counter `key` reaches `value` (shadows end on their own time); past the deadline it
    /// records an issue naming the counters it saw (a timed-out or dropped shadow says so there), and returns them.
    package func waitForDiffs(
        _ route: String, _ key: String, atLeast value: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        let reached = try await eventually {
            last = try await self.diffs(route)
            return (last[key] as? Int ?? 0) >= value
        }
        if !reached {
            let counters = last.filter { $0.value is Int }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            Issue.record(
                "\(route): \(key) never reached \(value); counters \(counters.joined(separator: " "))",
                sourceLocation: sourceLocation)
        }
        return last
    }
}

package func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
