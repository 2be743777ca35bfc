import Foundation
import JSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a running proxy writes into its data directory (`proxy.json`), so that the CLI finds it without `--admin`
/// and never edits the routes file it serves:
///
/// ```json
/// { "admin": "http://127.0.0.1:8090", "pid": 4242, "routes": "/srv/app/routes.json" }
/// ```
///
/// (`https://127.0.0.1:8090` when the admin API speaks TLS.)
///
/// The proxy writes it once both its ports are bound, and removes it when it stops; a proxy killed outright leaves
/// it behind, so a reader believes it only while that process lives.
package struct ProxyPresence: Sendable, Equatable {
    /// The admin API's URL, with the port actually bound.
    package var admin: String
    package var pid: Int32
    /// The routes file the proxy serves, as an absolute path with links resolved.
    package var routes: String

    package init(admin: String, pid: Int32, routes: String) {
        self.admin = admin
        self.pid = pid
        self.routes = routes
    }

    package static let fileName = "proxy.json"

    package static func path(in dataDirectory: String) -> String {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent(Self.fileName).path
    }

    /// `path` as an absolute path with symbolic links resolved (as written when it does not exist).
    package static func canonicalPath(_ path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let resolved = realpath(absolute, nil) else { return absolute }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `pid` is a live process (one this user may not signal counts as live).
    package static func isAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// Whether the proxy serves `routesPath` (compared as canonical paths).
    package func serves(_ routesPath: String) -> Bool {
        self.routes == Self.canonicalPath(routesPath)
    }

    /// A file that is not a presence record, with where and why.
    package struct Malformed: Error, CustomStringConvertible {
        package var description: String
    }

    /// The presence record of a live proxy in `dataDirectory`; nil when there is none, or when the process that
    /// wrote it is gone. A file that is not a record is refused (remove it if no proxy runs).
    package static func live(in dataDirectory: String) throws(Malformed) -> ProxyPresence? {
        let path = Self.path(in: dataDirectory)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let presence: ProxyPresence
        do {
            presence = try Self.parse(Array(data))
        } catch {
            throw Malformed(
                description: "\(path): \(error.description) (a running proxy writes this file; remove it if none runs)")
        }
        return Self.isAlive(presence.pid) ? presence : nil
    }

    static func parse(_ bytes: [UInt8]) throws(Malformed) -> ProxyPresence {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw Malformed(description: "not JSON (\(error))")
        }
        guard document.objectValue != nil else { throw Malformed(description: "must be an object") }
        guard let admin = document["admin"]?.stringValue, admin.hasPrefix("http://") || admin.hasPrefix("https://")
        else {
            throw Malformed(description: "$.admin must be an http:// or https:// URL")
        }
        guard let number = document["pid"]?.numberValue, number == number.rounded(), number >= 1,
            number <= Double(Int32.max)
        else { throw Malformed(description: "$.pid must be a process id") }
        guard let routes = document["routes"]?.stringValue, routes.hasPrefix("/") else {
            throw Malformed(description: "$.routes must be an absolute path")
        }
        return ProxyPresence(admin: admin, pid: Int32(number), routes: routes)
    }

    var json: JSONValue {
        .object([("admin", .string(self.admin)), ("pid", .number(Double(self.pid))), ("routes", .string(self.routes))])
    }

    /// Writes the record into `dataDirectory` atomically.
    package func write(in dataDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try AtomicFile.write(self.json.jsonText + "\n", to: Self.path(in: dataDirectory))
    }

    /// Removes the record in `dataDirectory` if it is still this one's (a proxy started since keeps its own).
    package func remove(from dataDirectory: String) {
        let path = Self.path(in: dataDirectory)
        guard let data = FileManager.default.contents(atPath: path), (try? Self.parse(Array(data))) == self else {
            return
        }
        unlink(path)
    }
}
