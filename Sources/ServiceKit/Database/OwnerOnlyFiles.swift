import Foundation

/// A service's database holds the personal data it took over: its folder is for the owner only (0700) and the database,
/// its WAL and SHM are 0600, whatever the umask (SQLite gives the WAL and SHM the database file's mode).
enum OwnerOnlyFiles {
    /// Makes the database's folder (0700) if missing and its file (0600) before SQLite opens it, or narrows an existing
    /// file and its WAL and SHM. An existing folder is left as it is (it may be the working directory); the proxy's
    /// data directory, where `strangler up` puts every database, is narrowed by the diff store.
    static func prepare(database path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let descriptor = open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        fchmod(descriptor, 0o600)
        close(descriptor)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            chmod(path + suffix, 0o600)
        }
    }
}
