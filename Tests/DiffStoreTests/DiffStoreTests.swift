import Foundation
import GRDB
import Testing

@testable import Diff
@testable import DiffStore
@testable import JSON

@Suite("Diff store")
struct DiffStoreTests {
    static func sample(
        _ route: String, _ signature: String, at date: Date = Date(), body: String = #"{"title":"CTO"}"#
    ) -> DiffSample {
        DiffSample(
            route: route, signature: signature, recordedAt: date, requestID: "r1", servedBy: "monolith", method: "GET",
            path: "/contacts/c1",
            query: "a=1", requestHeaders: [("accept", "application/json")], requestBody: [],
            monolith: StoredResponse(
                status: 200, headers: [("content-type", "application/json")], body: Array(#"{"title":"CEO"}"#.utf8)),
            service: StoredResponse(
                status: 200, headers: [("content-type", "application/json")], body: Array(body.utf8)),
            diff:
                #"{"body":{"kind":"json","differences":[{"pointer":"/title","kind":"changed","monolith":"CEO","#
                + #""service":"CTO"}]}}"#
        )
    }

    @Test func batchesAddUpAndTheSummaryReportsThem() throws {
        let store = try DiffStore.open(path: nil)
        for _ in 0..<2 {
            var batch = DiffBatch()
            var counts = RouteCounts()
            counts.compared = 3
            counts.matched = 2
            counts.mismatched = 1
            counts.timeouts = 1
            counts.dropped = 4
            batch.counts["contacts.get"] = counts
            batch.count(signature: "abc", text: "/title changed", on: "contacts.get")
            batch.count(pointer: "/title", kind: "changed", on: "contacts.get")
            batch.samples.append(Self.sample("contacts.get", "abc"))
            try store.apply(batch)
        }
        let summary = try store.summary()
        let route = summary["routes"]?.arrayValue?.first
        #expect(route?["route"]?.stringValue == "contacts.get")
        #expect(route?["compared"]?.numberValue == 6)
        #expect(route?["matched"]?.numberValue == 4)
        #expect(route?["mismatched"]?.numberValue == 2)
        #expect(route?["timeouts"]?.numberValue == 2)
        #expect(route?["dropped"]?.numberValue == 8)
        #expect(route?["matchRate"]?.numberValue == 0.6667)
        let signature = route?["signatures"]?.arrayValue?.first
        #expect(signature?["signature"]?.stringValue == "/title changed")
        #expect(signature?["count"]?.numberValue == 2)
        #expect(signature?["samples"]?.numberValue == 2)
        #expect(route?["pointers"]?.arrayValue?.first?["count"]?.numberValue == 2)
        #expect(try store.summary(route: "other")["routes"]?.arrayValue?.isEmpty == true)
    }

    @Test func keepsAtMostNSamplesPerSignature() throws {
        let store = try DiffStore.open(path: nil, maxSamplesPerSignature: 3)
        var batch = DiffBatch()
        for _ in 0..<5 { batch.samples.append(Self.sample("r", "s1")) }
        batch.samples.append(Self.sample("r", "s2"))
        try store.apply(batch)
        try store.apply(batch)
        #expect(try store.sampleCount(route: "r", signature: "s1") == 3)
        #expect(try store.sampleCount(route: "r", signature: "s2") == 2)
        let samples = try store.samples(route: "r", signature: "s2")
        #expect(samples.arrayValue?.count == 2)
        let first = samples.arrayValue?.first
        #expect(first?["request"]?["query"]?.stringValue == "a=1")
        #expect(first?["service"]?["body"]?.stringValue == #"{"title":"CTO"}"#)
        #expect(first?["diff"]?["body"]?["differences"]?.arrayValue?.count == 1)
    }

    @Test func purgeDeletesByRouteAndDateAndKeepsCounters() throws {
        let store = try DiffStore.open(path: nil)
        let old = Date(timeIntervalSince1970: 1_700_000_000)
        var batch = DiffBatch()
        batch.counts["a"] = {
            var c = RouteCounts()
            c.compared = 1
            c.mismatched = 1
            return c
        }()
        batch.samples = [
            Self.sample("a", "s", at: old), Self.sample("a", "s"), Self.sample("b", "s", at: old),
            Self.sample("b", "s"),
        ]
        try store.apply(batch)
        #expect(try store.purge(route: "a", before: Date(timeIntervalSince1970: 1_750_000_000)) == 1)
        #expect(try store.purge(before: Date(timeIntervalSince1970: 1_750_000_000)) == 1)
        #expect(try store.sampleCount(route: "a", signature: "s") == 1)
        #expect(try store.purge(route: "b") == 1)
        #expect(try store.purge() == 1)
        #expect(try store.summary()["routes"]?.arrayValue?.first?["compared"]?.numberValue == 1, "counters stay")
    }

    @Test func opensAFileInWALModeAndReopensIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("diffstore-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nested/diffs.sqlite").path
        do {
            let store = try DiffStore.open(path: path)
            var batch = DiffBatch()
            batch.noise[.init(route: "r", pointer: "/at")] = 2
            batch.counts["r"] = {
                var c = RouteCounts()
                c.noiseChecks = 2
                return c
            }()
            try store.apply(batch)
            let mode = try store.database.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
        }
        let reopened = try DiffStore.open(path: path)
        let noise = try reopened.noise(route: "r")
        #expect(noise.checks == 2)
        #expect(noise.pointers.first?.pointer == "/at")
        #expect(noise.pointers.first?.count == 2)
    }
}
