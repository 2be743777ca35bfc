import Foundation
import GRDB
import Testing

@testable import Monolith

/// The mode bits of a file or folder.
func fileMode(_ path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

@Suite("Monolith: database files")
struct MonolithFileModeTests {
    /// The database holds customers' personal data: only the owner reads it, its WAL and SHM, whatever the umask
    /// (the test process's is 0o022: a file made without care would be 0644).
    @Test func theDatabaseItsWALAndSHMAreForTheOwnerOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "monolith-modes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("data/monolith.sqlite").path
        let store = try await CRMStore.open(path: path)
        try await store.database.write { db in try db.execute(sql: "CREATE TABLE t (x)") }
        #expect(try fileMode(directory.appendingPathComponent("data").path) == 0o700)
        for suffix in ["", "-wal", "-shm"] { #expect(try fileMode(path + suffix) == 0o600, "monolith.sqlite\(suffix)") }
    }

    @Test func anExistingDatabaseIsNarrowed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "monolith-modes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("monolith.sqlite").path
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        let store = try await CRMStore.open(path: path)
        try await store.database.write { db in try db.execute(sql: "CREATE TABLE t (x)") }
        for suffix in ["", "-wal", "-shm"] { #expect(try fileMode(path + suffix) == 0o600, "monolith.sqlite\(suffix)") }
    }
}
