import Foundation
import GRDB
import ServiceKit
import Testing

@Suite("Services: database files")
struct ServiceFileModeTests {
    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    /// A service's database holds the personal data it took over: only the owner reads it, its WAL and SHM, whatever
    /// the umask; an existing one (made before) is narrowed.
    @Test func theDatabaseItsWALAndSHMAreForTheOwnerOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "service-modes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("data/contacts.sqlite").path
        let database = try await ServiceDatabase.open(path: path, origin: "contacts") { _ in }
        try await database.write { db in try db.execute(sql: "CREATE TABLE t (x)") }
        #expect(try self.mode(directory.appendingPathComponent("data").path) == 0o700)
        for suffix in ["", "-wal", "-shm"] {
            #expect(try self.mode(path + suffix) == 0o600, "contacts.sqlite\(suffix)")
        }

        let old = directory.appendingPathComponent("data/old.sqlite").path
        _ = FileManager.default.createFile(atPath: old, contents: nil, attributes: [.posixPermissions: 0o644])
        _ = try await ServiceDatabase.open(path: old, origin: "old") { _ in }
        #expect(try self.mode(old) == 0o600)
    }
}
