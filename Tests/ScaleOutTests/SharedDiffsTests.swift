import ArgumentParser
import Diff
import DiffStore
import Foundation
import Gateway
import JSON
import Logging
import NIOConcurrencyHelpers
import PostgresSupport
import Proxy
import ProxyTestSupport
import RouteTable
import SharedStore
import Testing

@testable import ControlPlane
@testable import Reports
@testable import StranglerCommands

/// The rest of the diff store in a shared store: samples, differing pointers, noise, minute buckets and reconcile
/// records are every proxy's, whichever proxy (or CLI) reads them; samples are kept there only, redacted with one key,
/// and erased there.
// Two proxies, their shadow traffic and PostgreSQL take both cores: kept apart from the tests that measure time.
@Suite("Scale-out: samples, pointers, noise and reconcile records are every proxy's", .loadsTheMachine)
struct SharedDiffsTests {
    /// `/items/1` differs between the sides in its owner's e-mail (personal data, redacted before it is stored).
    static func documents(_ harness: SharedStoreHarness) {
        harness.monolith.documents.withLockedValue {
            $0["/items/1"] = #"{"id":"1","owner":"ada.shared@example.com","stamp":"t{{n}}"}"#
        }
        harness.service.documents.withLockedValue {
            $0["/items/1"] = #"{"id":"1","owner":"bob.shared@example.com","stamp":"t0"}"#
        }
    }

    static func diffs(_ harness: SharedStoreHarness, _ member: SharedStoreHarness.Member) async throws -> JSONValue {
        jsonValue(try await harness.admin(member, "GET", "/admin/diffs?route=items.get").body)["routes"]?.at(0) ?? .null
    }

    static func samples(_ harness: SharedStoreHarness, _ member: SharedStoreHarness.Member) async throws -> [JSONValue]
    {
        jsonValue(try await harness.admin(member, "GET", "/admin/diffs/samples?route=items.get").body)["samples"]?
            .arrayValue ?? []
    }

    @Test func samplesPointersAndNoiseMadeThroughOneProxyAreReadThroughTheOther() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url, shadowTimeout: "30s", noiseShare: 1.0) { harness in
            Self.documents(harness)
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            #expect(await eventually { harness.stageOf(harness.b, "items.get") == .coexist })
            for _ in 1...2 { #expect(try await RawHTTP.get("/items/1", port: harness.a.proxyPort).status == 200) }
            #expect(try await RawHTTP.get("/items/1", port: harness.b.proxyPort).status == 200)

            // Through B: every proxy's comparisons, pointers and samples.
            var seen = JSONValue.null
            let counted = try await eventually {
                try await harness.flushAll()
                seen = try await Self.diffs(harness, harness.b)
                return seen["compared"]?.numberValue == 3 && seen["noiseChecks"]?.numberValue == 3
            }
            #expect(counted, "\(seen.jsonText)")
            let pointers = (seen["pointers"]?.arrayValue ?? []).compactMap { $0["pointer"]?.stringValue }
            #expect(Set(pointers) == ["/owner", "/stamp"], "\(seen.jsonText)")
            #expect(seen["signatures"]?.at(0)?["samples"]?.numberValue == 3, "\(seen.jsonText)")
            let samples = try await Self.samples(harness, harness.b)
            #expect(samples.count == 3)
            // Redacted with the store's one key: the same e-mail has the same token through either proxy.
            let bodies = Set(samples.compactMap { $0["monolith"]?["body"]?.stringValue?.replacing(/t\d+/, with: "") })
            #expect(bodies.count == 1, "\(bodies)")
            #expect(!(bodies.first ?? "").contains("ada.shared@example.com"))
            #expect((bodies.first ?? "").contains("[redacted:"))
            // The samples are in the store only, not in either proxy's own diff store.
            for member in harness.members {
                let own = try DiffStore.open(
                    path: harness.directory.appendingPathComponent(member.id).path + "/diffs.sqlite")
                #expect(try own.samples(route: "items.get").arrayValue?.isEmpty == true, "\(member.id)")
            }
            // Noise seen through A's proxy and B's is in both admin APIs.
            let noise = jsonValue(try await harness.admin(harness.a, "GET", "/admin/noise?route=items.get").body)
            #expect(noise["checks"]?.numberValue == 3, "\(noise.jsonText)")
            #expect(noise["proposed"]?.arrayValue?.compactMap(\.stringValue) == ["/stamp"], "\(noise.jsonText)")

            // The report through B has them, and the minute buckets of both.
            let report = jsonValue(
                try await harness.admin(harness.b, "GET", "/admin/report?route=items.get&format=json").body)
            let route = report["routes"]?.at(0)
            #expect(route?["signatures"]?.at(0)?["samplesKept"]?.numberValue == 3, "\(report.jsonText)")
            #expect(route?["traffic"]?["compared"]?.numberValue == 3, "\(report.jsonText)")

            // A rule change through A is judged against every proxy's kept samples: with the owner ignored and the
            // stamp a version pointer, each kept pair is stale, not a mismatch, so the signature is explained (the
            // signature's text alone, "/owner … /stamp …", is not under the ignore rules: without the samples it would
            // still differ).
            let etag = try await harness.etag(harness.a)
            let table = SharedStoreHarness.routes(
                monolith: harness.monolithPort, service: harness.servicePort, stage: "coexist",
                shadowTimeout: "30s"
            ).replacingOccurrences(
                of: #""shadow": { "timeout": "30s" }"#,
                with: #""shadow": { "timeout": "30s", "ignore": ["/owner"], "version": ["/stamp"] }"#)
            let put = try await harness.admin(
                harness.a, "PUT", "/admin/routes?force=true&reason=rules",
                headers: ["If-Match: \(etag)", "X-Strangler-Actor: tester"], body: table)
            #expect(put.status == 200, "\(put.body)")
            let review = jsonValue(put.body)["reviews"]?.at(0)
            #expect(review?["explained"]?.arrayValue?.count == 1, "\(put.body)")
            #expect(review?["stillDiffering"]?.arrayValue?.isEmpty == true, "\(put.body)")
            let evidence = jsonValue(try await harness.admin(harness.b, "GET", "/admin/evidence?route=items.get").body)
            #expect(
                evidence["routes"]?.at(0)?["signatures"]?.at(0)?["triage"]?.stringValue == "explained",
                "\(evidence.jsonText)")
        }
    }

    @Test func anErasureThroughTheCLIReachesEveryProxysSamples() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url, shadowTimeout: "30s") { harness in
            Self.documents(harness)
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            #expect(await eventually { harness.stageOf(harness.b, "items.get") == .coexist })
            #expect(try await RawHTTP.get("/items/1", port: harness.a.proxyPort).status == 200)
            #expect(try await RawHTTP.get("/items/1", port: harness.b.proxyPort).status == 200)
            let kept = try await eventually {
                try await harness.flushAll()
                return try await Self.samples(harness, harness.a).count == 2
            }
            #expect(kept)

            // A sample A kept in its own diff store before it moved to the store holds the value itself.
            let aData = harness.directory.appendingPathComponent(harness.a.id).path
            var old = DiffBatch()
            old.samples.append(
                DiffSample(
                    route: "items.get", signature: "0000000000000001", recordedAt: Date(), requestID: "old",
                    servedBy: "monolith", method: "GET", path: "/items/1", query: nil, requestHeaders: [],
                    requestBody: [],
                    monolith: StoredResponse(
                        status: 200, headers: [], body: Array(#"{"owner":"ada.shared@example.com"}"#.utf8)),
                    service: StoredResponse(status: 200, headers: [], body: []), diff: "{}"))
            try DiffStore.open(path: aData + "/diffs.sqlite").apply(old)
            let command = try PurgeCommand.parse([
                "--subject", "ada.shared@example.com", "--store", url, "--data", aData, "--actor", "dpo",
                "--reason", "request 7",
            ])
            let store = try await SharedStoreHarness.connect(url)
            defer { store.close() }
            let erasure = try await command.erase("ada.shared@example.com", shared: store)
            #expect(erasure.samples == 3, "\(erasure)")
            #expect(
                try DiffStore.open(path: aData + "/diffs.sqlite").samples(route: "items.get").arrayValue?.isEmpty
                    == true)
            #expect(try await Self.samples(harness, harness.b).isEmpty)
            // The audit entry is in the store's log, with the hash and never the value.
            let audit = try await store.auditEntries().last ?? ""
            #expect(audit.contains(#""action":"purge""#) && audit.contains(erasure.hash), "\(audit)")
            #expect(!audit.contains("ada.shared@example.com"))

            // By route and time, through the command line.
            #expect(try await RawHTTP.get("/items/1", port: harness.b.proxyPort).status == 200)
            #expect(
                try await eventually {
                    _ = try await harness.admin(harness.b, "GET", "/admin/diffs")
                    return try await Self.samples(harness, harness.a).count == 1
                })
            #expect(await Strangler.execute(["purge", "--store", url, "--route", "items.get"]) == 0)
            #expect(try await Self.samples(harness, harness.a).isEmpty)
            #expect(await Strangler.execute(["purge", "--store", "mysql://x@y/z"]) == 2)
        }
    }

    @Test func theGatesReadReconcileRecordsFromTheStore() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await SharedStoreHarness.run(store: url) { harness in
            func reconcile(_ member: SharedStoreHarness.Member) async throws -> JSONValue {
                let body = try await harness.admin(member, "GET", "/admin/evidence?route=items.get").body
                return jsonValue(body)["routes"]?.at(0) ?? .null
            }
            let flip = try await harness.stage(harness.a, "items.get", "coexist")
            #expect(flip.status == 200, "\(flip.body)")
            #expect(await eventually { harness.stageOf(harness.b, "items.get") == .coexist })
            let before = try await reconcile(harness.b)
            #expect(before["reconcile"] == .null, "\(before.jsonText)")
            // The command the gates suggest writes into the store, not a data directory.
            #expect(
                before.jsonText.contains("--store postgres://"), "\(before.jsonText)")

            let store = try await SharedStoreHarness.connect(url)
            defer { store.close() }
            try await store.recordReconcile(
                ReconcileRecord(service: "items", clean: false, compared: 4, missing: 1, extra: 0, differing: 0))
            try await store.recordReconcile(
                ReconcileRecord(service: "items", clean: true, compared: 5, missing: 0, extra: 0, differing: 0))
            for member in harness.members {
                let after = try await reconcile(member)
                #expect(after["reconcile"]?["clean"]?.boolValue == true, "\(member.id): \(after.jsonText)")
                #expect(
                    after["reconcile"]?["summary"]?.stringValue == "5 compared; 0 missing, 0 extra, 0 differing",
                    "\(after.jsonText)")
            }
            #expect(try await store.latestReconcile(entity: "orders") == nil)
        }
    }

    @Test func aSampleRecordedBeforeItsSubjectWasErasedIsNotStoredAfter() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        func sample(_ id: String, at time: Date) -> DiffSample {
            var sample = ReportFixture.emailSample
            sample.requestID = id
            sample.recordedAt = time
            sample.subjects = ["hash-ada"]
            return sample
        }
        var kept = DiffBatch()
        kept.samples = [sample("before", at: Date().addingTimeInterval(-60))]
        try await store.apply(kept, id: UUID().uuidString)
        #expect(try await store.eraseSubject(hash: "hash-ada", value: Array("nowhere".utf8)) == 1)
        // A proxy that held a sample while the store was away writes it after the erasure: not kept. One recorded
        // after the erasure is.
        var late = DiffBatch()
        late.samples = [
            sample("held", at: Date().addingTimeInterval(-30)), sample("new", at: Date().addingTimeInterval(5)),
        ]
        try await store.apply(late, id: UUID().uuidString)
        let left = try await store.samples(route: "contacts.get", signature: nil, limit: 20).arrayValue ?? []
        #expect(left.map { $0["requestId"]?.stringValue } == ["new"])
    }

    @Test func countsOwedOverSeveralMinutesLandInTheirOwnMinutes() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        let start = DiffStore.minute(of: Date().timeIntervalSince1970) - 600
        var batch = DiffBatch()
        batch.counts["r"] = ReportFixture.counts(7, 7)
        batch.minutes[.init(route: "r", start: start)] = ReportFixture.counts(3, 3)
        batch.minutes[.init(route: "r", start: start + 120)] = ReportFixture.counts(4, 4)
        try await store.apply(batch, id: UUID().uuidString)
        let buckets = try await store.buckets(route: "r", since: nil)
        #expect(buckets.map { Int($0.start.timeIntervalSince1970) } == [start, start + 120])
        #expect(buckets.map(\.counts.compared) == [3, 4])
    }

    @Test func aReportFromTheStoreEqualsOneFromADiffStoreHoldingTheSame() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let store = try await SharedStoreHarness.connect(url)
        defer { store.close() }
        try await ReportFixture.fill(shared: store)
        let local = try DiffStore.open(path: nil)
        try ReportFixture.fill(local)
        for window in [nil, "8m30s"] as [String?] {
            let fromStore = try await ReportFixture.report(store: store, window: window).json.jsonText
            let fromFile = try await ReportFixture.report(store: local, window: window).json.jsonText
            #expect(fromStore == fromFile)
        }
        // Samples read the same from either (ids included: both number from 1).
        #expect(
            try await store.samples(route: "contacts.get", signature: nil, limit: 20).jsonText
                == local.samples(route: "contacts.get").jsonText)
        #expect(try await store.noise(route: "contacts.get").checks == 0)
        // Expiry by time (what every proxy does with the table's retention): the sample at 09:01:10 goes, 09:02:10
        // stays.
        #expect(try await store.purgeSamples(route: nil, before: ReportFixture.start.addingTimeInterval(100)) == 1)
        let left = try await store.samples(route: "contacts.get", signature: nil, limit: 20).arrayValue ?? []
        #expect(left.map { $0["signature"]?.stringValue } == ["s2"])
    }
}
