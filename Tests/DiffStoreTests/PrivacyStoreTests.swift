import Foundation
import GRDB
import Testing

@testable import Diff
@testable import DiffStore

@Suite("Diff store: personal data")
struct PrivacyStoreTests {
    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    func sample(_ body: String, subjects: Set<String>, at date: Date = Date()) -> DiffSample {
        let answer = StoredResponse(status: 200, headers: [], body: Array(body.utf8))
        return DiffSample(
            route: "r", signature: "s", recordedAt: date, requestID: "q", servedBy: "monolith", method: "GET",
            path: "/", query: nil, requestHeaders: [],
            requestBody: [], monolith: answer, service: answer, diff: "{}", subjects: subjects)
    }

    @Test func samplesAreFoundAndDeletedByTheHashesOfTheirSubjects() throws {
        let store = try DiffStore.open(path: nil)
        var batch = DiffBatch()
        batch.samples = [
            self.sample("one", subjects: ["aaaa000000000001", "bbbb000000000002"]),
            self.sample("two", subjects: ["aaaa000000000001"]),
            self.sample("three", subjects: ["cccc000000000003"]),
        ]
        try store.apply(batch)
        #expect(try store.sampleCount(subjectHash: "aaaa000000000001") == 2)
        #expect(try store.purge(subjectHash: "aaaa000000000001") == 2)
        #expect(try store.sampleCount(subjectHash: "bbbb000000000002") == 0, "a sample's subjects go with it")
        #expect(try store.sampleCount(route: "r", signature: "s") == 1)
        #expect(try store.purge(containing: Array("thr".utf8)) == 1, "or by the value itself, in any part")
        #expect(try store.sampleCount(route: "r", signature: "s") == 0)
        #expect(try store.sampleCount(subjectHash: "cccc000000000003") == 0)
    }

    @Test func theDataDirectoryTheFilesAndTheKeyAreForTheOwnerOnly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "diffstore-modes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // Made before this version: a data directory 0755 and a store 0644.
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let path = directory.appendingPathComponent("diffs.sqlite").path
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        let store = try DiffStore.open(path: path)
        var batch = DiffBatch()
        batch.samples = [self.sample("x", subjects: [])]
        try store.apply(batch)
        #expect(try self.mode(directory.path) == 0o700)
        for name in ["diffs.sqlite", "diffs.sqlite-wal", "diffs.sqlite-shm", "redaction.key"] {
            #expect(try self.mode(directory.appendingPathComponent(name).path) == 0o600, "\(name)")
        }
        #expect(store.redactionKey.count == 32)
        #expect(try DiffStore.open(path: path).redactionKey == store.redactionKey, "the key is made once and kept")
    }

    @Test func compactingTakesDeletedBytesOutOfTheFileAndItsWAL() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "diffstore-compact-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("diffs.sqlite").path
        let store = try DiffStore.open(path: path)
        var batch = DiffBatch()
        batch.samples = [
            self.sample("MARKER-OLD", subjects: [], at: Date(timeIntervalSince1970: 1_000)),
            self.sample("MARKER-NEW", subjects: []),
        ]
        try store.apply(batch)
        func bytes() -> Data {
            ["", "-wal"].reduce(Data()) { $0 + ((try? Data(contentsOf: URL(fileURLWithPath: path + $1))) ?? Data()) }
        }
        #expect(bytes().range(of: Data("MARKER-OLD".utf8)) != nil)
        #expect(try store.purge(before: Date(timeIntervalSince1970: 2_000)) == 1)
        try store.compact()
        #expect(bytes().range(of: Data("MARKER-OLD".utf8)) == nil)
        #expect(bytes().range(of: Data("MARKER-NEW".utf8)) != nil)
    }
}
