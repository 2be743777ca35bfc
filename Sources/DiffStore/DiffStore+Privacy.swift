import Foundation
import GRDB

/// Personal data in the store: which samples held which redacted values (by keyed hash), erasure by subject, expiry,
/// compaction (so deleted bytes leave the file and its WAL), the redaction key, and files only the owner can read.
extension DiffStore {
    /// The redaction key's file name, beside `diffs.sqlite`.
    public static let keyFileName = "redaction.key"

    /// Per sample, the keyed hashes of the values redacted from it (`strangler purge --subject` finds samples here).
    static func migrateSubjects(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE sample_subjects (
                    hash TEXT NOT NULL,
                    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
                    PRIMARY KEY (hash, sample_id)) WITHOUT ROWID;
                CREATE INDEX sample_subjects_by_sample ON sample_subjects (sample_id);
                """)
    }

    static func addSubjects(_ subjects: Set<String>, sample: Int64, _ db: Database) throws {
        for hash in subjects {
            try db.execute(
                sql: "INSERT OR IGNORE INTO sample_subjects (hash, sample_id) VALUES (?, ?)", arguments: [hash, sample])
        }
    }

    /// Deletes every sample that held the value whose keyed hash is `hash`; returns how many.
    @discardableResult
    public func purge(subjectHash hash: String) throws -> Int {
        try self.database.write { db in
            try db.execute(
                sql: "DELETE FROM samples WHERE id IN (SELECT sample_id FROM sample_subjects WHERE hash = ?)",
                arguments: [hash])
            return db.changesCount
        }
    }

    /// Deletes every sample that holds `value` itself in any part (stored before redaction was on, or with the
    /// defaults off); returns how many. A scan of every sample: for erasure, not for the request path.
    @discardableResult
    public func purge(containing value: [UInt8]) throws -> Int {
        guard !value.isEmpty else { return 0 }
        let columns = [
            "path", "query", "request_headers", "request_body", "monolith_headers", "monolith_body", "service_headers",
            "service_body", "diff",
        ]
        let condition = columns.map { "instr(CAST(\($0) AS BLOB), ?1) > 0" }.joined(separator: " OR ")
        return try self.database.write { db in
            try db.execute(sql: "DELETE FROM samples WHERE " + condition, arguments: [Data(value)])
            return db.changesCount
        }
    }

    /// Every kept sample, oldest first, with the hashes of what was redacted from it (`strangler store export`).
    public func allSamples() throws -> [DiffSample] {
        let stored = try self.storedSamples(" ORDER BY id", [])
        let subjects = try self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT sample_id, hash FROM sample_subjects").reduce(
                into: [Int64: Set<String>]()
            ) {
                $0[$1["sample_id"], default: []].insert($1["hash"])
            }
        }
        return stored.map { $0.diffSample(subjects: subjects[$0.id] ?? []) }
    }

    /// How many samples hold the value whose keyed hash is `hash`.
    public func sampleCount(subjectHash hash: String) throws -> Int {
        try self.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sample_subjects WHERE hash = ?", arguments: [hash]) ?? 0
        }
    }

    /// Rewrites the file without the space of deleted rows (VACUUM) and empties the write-ahead log (a TRUNCATE
    /// checkpoint), so that what was deleted is no longer in either file's bytes. Waits for readers (the busy timeout).
    public func compact(vacuum: Bool = true) throws {
        try self.database.writeWithoutTransaction { db in
            if vacuum { try db.execute(sql: "VACUUM") }
            if self.database is DatabasePool { try db.checkpoint(.truncate) }
        }
    }

    // MARK: The redaction key

    /// The key of the store at `path` (`<dir>/redaction.key`, 32 random bytes, mode 0600), created on first use. Two
    /// processes creating it at once agree: the key is written to a temporary file and linked into place only if no
    /// key is there yet.
    static func redactionKey(beside path: String) throws -> [UInt8] {
        let keyPath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(Self.keyFileName)
            .path
        if let existing = Self.readKey(keyPath) { return existing }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let temporary = keyPath + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = Foundation.open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw StoreFileError(path: temporary, call: "open") }
        defer { unlink(temporary) }
        fchmod(descriptor, 0o600)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard written == bytes.count else { throw StoreFileError(path: temporary, call: "write") }
        if link(temporary, keyPath) != 0, errno != EEXIST { throw StoreFileError(path: keyPath, call: "link") }
        guard let key = Self.readKey(keyPath) else { throw StoreFileError(path: keyPath, call: "read") }
        return key
    }

    private static func readKey(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 16 else { return nil }
        chmod(path, 0o600)
        return Array(data)
    }

    // MARK: File modes

    /// Makes `directory` (and missing parents) with mode 0700, or narrows an existing one of ours to 0700 (not a
    /// shared one such as /tmp: one with the sticky bit, or someone else's).
    static func ownerOnlyDirectory(_ directory: String) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var info = stat()
        if stat(directory, &info) == 0, info.st_uid == geteuid(), info.st_mode & S_ISVTX == 0,
            info.st_mode & 0o777 != 0o700
        {
            chmod(directory, 0o700)
        }
    }

    /// Creates the database file with mode 0600 before SQLite opens it (SQLite gives its WAL and SHM the main file's
    /// mode), or narrows an existing one, and its WAL and SHM, to 0600. The umask does not matter: modes are set with
    /// chmod after creation.
    static func ownerOnlyDatabaseFile(_ path: String) throws {
        let descriptor = Foundation.open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw StoreFileError(path: path, call: "open") }
        fchmod(descriptor, 0o600)
        close(descriptor)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            chmod(path + suffix, 0o600)
        }
    }
}

/// A file of the store that could not be made or read.
struct StoreFileError: Error, CustomStringConvertible {
    var path: String
    var call: String
    var code = errno

    var description: String { "\(self.call) \(self.path): \(String(cString: strerror(self.code)))" }
}
