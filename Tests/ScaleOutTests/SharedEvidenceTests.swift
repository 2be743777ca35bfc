import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import Proxy
import ProxyTestSupport
import RouteTable
import SharedStore
import Testing

/// Shadow evidence in a shared store: every proxy's comparisons count in one gate, triage through one proxy is seen
/// by the others' gates, and counts made while the store is down are kept and written once it is back.
// Two proxies, their shadow traffic and PostgreSQL take both cores: kept apart from the tests that measure time.
@Suite("Scale-out: one gate counts every proxy's shadow comparisons", .loadsTheMachine)
struct SharedEvidenceTests {
    /// `/items/1` differs between the sides (its title), `/items/2` is the same on both.
    static func documents(_ harness: SharedStoreHarness) {
        harness.monolith.documents.withLockedValue {
            $0["/items/1"] = #"{"id":"1","title":"old"}"#
            $0["/items/2"] = #"{"id":"2","title":"same"}"#
        }
        harness.service.documents.withLockedValue {
            $0["/items/1"] = #"{"id":"1","title":"new"}"#
            $0["/items/2"] = #"{"id":"2","title":"same"}"#
        }
    }

    /// The `GET /admin/evidence` entry of `items.get` through `member` (the member's recorder is flushed first).
    static func evidence(_ harness: SharedStoreHarness, _ member: SharedStoreHarness.Member) async throws -> JSONValue {
        let body = try await harness.admin(member, "GET", "/admin/evidence?route=items.get").body
        return jsonValue(body)["routes"]?.at(0) ?? .null
    }

    /// Flushes each proxy's recorder (`GET /admin/diffs` writes what waits), so the shared counts hold every shadow
    /// that ended.
    static func flushAll(_ harness: SharedStoreHarness) async throws {
        try await harness.flushAll()
    }

    @Test func comparisonsThroughBothProxiesCountInOneGate() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url, shadowTimeout: "30s") { harness in
            Self.documents(harness)
            // Some evidence before the flip: not counted since, in either proxy's gate.
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            #expect(await eventually { harness.stageOf(harness.b, "items.get") == .coexist })
            for path in ["/items/1", "/items/2", "/items/1"] {
                #expect(try await RawHTTP.get(path, port: harness.a.proxyPort).status == 200)
            }
            for path in ["/items/2", "/items/1"] {
                #expect(try await RawHTTP.get(path, port: harness.b.proxyPort).status == 200)
            }
            var seen = JSONValue.null
            let counted = try await eventually {
                try await Self.flushAll(harness)
                seen = try await Self.evidence(harness, harness.a)
                return seen["compared"]?.numberValue == 5
            }
            #expect(counted, "\(seen.jsonText)")
            #expect(seen["matched"]?.numberValue == 2, "\(seen.jsonText)")
            let signatures = seen["signatures"]?.arrayValue ?? []
            #expect(signatures.count == 1 && signatures.first?["count"]?.numberValue == 3, "\(seen.jsonText)")
            #expect(seen["untriaged"]?.numberValue == 1)
            // B's diffs are every proxy's too.
            let diffs = jsonValue(try await harness.admin(harness.b, "GET", "/admin/diffs?route=items.get").body)
            #expect(diffs["routes"]?.at(0)?["compared"]?.numberValue == 5, "\(diffs.jsonText)")
            // B's gate is the same gate.
            let throughB = try await Self.evidence(harness, harness.b)
            #expect(throughB["compared"]?.numberValue == 5, "\(throughB.jsonText)")

            // A triage decision through B is in A's gate.
            let signature = try #require(signatures.first?["id"]?.stringValue)
            let triage = try await harness.admin(
                harness.b, "POST", "/admin/triage", headers: ["X-Strangler-Actor: tester"],
                body: #"{"route":"items.get","signature":"\#(signature)","decision":"accept","reason":"known"}"#)
            #expect(triage.status == 200, "\(triage.body)")
            let afterTriage = try await Self.evidence(harness, harness.a)
            #expect(afterTriage["untriaged"]?.numberValue == 0, "\(afterTriage.jsonText)")
            #expect(
                afterTriage["signatures"]?.at(0)?["triage"]?.stringValue == "accepted", "\(afterTriage.jsonText)")

            // A stage change through B starts the epoch anew for both.
            let back = try await harness.stage(harness.b, "items.get", "transform")
            #expect(back.status == 200, "\(back.body)")
            let again = try await harness.stage(harness.b, "items.get", "coexist")
            #expect(again.status == 200, "\(again.body)")
            #expect(await eventually { harness.stageOf(harness.a, "items.get") == .coexist })
            let fresh = try await Self.evidence(harness, harness.a)
            #expect(fresh["compared"]?.numberValue == 0, "\(fresh.jsonText)")
        }
    }

    @Test func countsMadeWhileTheStoreIsDownAreWrittenOnceItIsBack() async throws {
        // A server of this test's own, since it is stopped mid-traffic.
        let server = try await PostgresServer.start()
        let url = try await server.freshDatabase()
        try await SharedStoreHarness.run(store: url, poll: .milliseconds(200), shadowTimeout: "30s") { harness in
            Self.documents(harness)
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            try await server.stop()
            for path in ["/items/1", "/items/2", "/items/1"] {
                #expect(try await RawHTTP.get(path, port: harness.a.proxyPort).status == 200, "answered, store down")
            }
            // Counted here, owed to the store, and said so.
            var status = JSONValue.null
            #expect(
                try await eventually {
                    _ = try await harness.admin(harness.a, "GET", "/admin/diffs")
                    status = jsonValue(try await harness.admin(harness.a, "GET", "/admin/status").body)
                    return status["store"]?["evidence"]?["backlogCompared"]?.numberValue == 3
                }, "\(status.jsonText)")
            #expect(status["store"]?["evidence"]?["lastError"]?.stringValue?.isEmpty == false, "\(status.jsonText)")
            let metrics = try await harness.admin(harness.a, "GET", "/metrics").body
            #expect(metrics.contains("strangler_store_evidence_backlog 3"), "\(metrics)")

            try await server.restart()
            var seen = JSONValue.null
            #expect(
                try await eventually {
                    seen = try await Self.evidence(harness, harness.b)
                    return seen["compared"]?.numberValue == 3
                }, "\(seen.jsonText)")
            #expect(seen["matched"]?.numberValue == 1)
            status = jsonValue(try await harness.admin(harness.a, "GET", "/admin/status").body)
            #expect(status["store"]?["evidence"]?["backlogCompared"]?.numberValue == 0, "\(status.jsonText)")
        }
        try await server.stop()
    }
}
