import ControlPlane
public import Foundation
import Reports

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The admin API's bearer token: `STRANGLER_ADMIN_TOKEN` if set, else `<data>/admin-token`, generated on
/// first start with mode 0600.
public enum AdminToken {
    public static func path(dataDirectory: String) -> String {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent("admin-token").path
    }

    /// Reads or creates the token.
    public static func resolve(
        dataDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> String {
        if let token = environment["STRANGLER_ADMIN_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines),
            !token.isEmpty
        {
            return token
        }
        let path = self.path(dataDirectory: dataDirectory)
        if let token = try self.read(path) { return token }
        try DataDirectory.create(dataDirectory)
        var generator = SystemRandomNumberGenerator()
        let token = (0..<4).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            // Another process created it first: use theirs.
            if errno == EEXIST, let token = try self.read(path) { return token }
            throw AtomicFile.Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        fchmod(descriptor, 0o600)
        let bytes = Array((token + "\n").utf8)
        _ = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        return token
    }

    /// The token in the file at `path`, nil when there is none (or it is empty). A token file that others may read
    /// (left by an older version, or copied in) is made 0600; a symbolic link in its place is refused.
    static func read(_ path: String) throws -> String? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw AtomicFile.Failure(
                description: "cannot read the admin token \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        if let mode = FileMode.of(path), mode & 0o077 != 0 { fchmod(descriptor, 0o600) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        let data = try handle.readToEnd() ?? Data()
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    /// The token of an `Authorization` value: the `Bearer` scheme is matched case-insensitively (RFC 9110 11.1), and
    /// one or more spaces may follow it. Nil for any other scheme.
    static func bearer(_ header: Substring) -> Substring? {
        let scheme = header.prefix { $0 != " " }
        guard scheme.lowercased() == "bearer" else { return nil }
        let rest = header[scheme.endIndex...].drop { $0 == " " }
        return rest.isEmpty ? nil : rest
    }

    /// Compares in time independent of where the strings differ.
    static func matches(_ given: Substring, _ token: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(token.utf8)
        var difference = a.count ^ b.count
        for index in 0..<max(a.count, b.count) {
            difference |= Int((index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0))
        }
        return difference == 0
    }
}
