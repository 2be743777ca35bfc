import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a loopback port is free for `up`'s children, and if not, which process holds it.
enum UpPorts {
    /// nil when `port` can be bound on 127.0.0.1; otherwise what holds it ("pid 1234: strangler proxy …").
    static func occupant(of port: Int) -> String? {
        guard !self.isFree(port) else { return nil }
        return self.listener(of: port) ?? "another process"
    }

    /// Binds 127.0.0.1:`port` as a server would (SO_REUSEADDR, so connections closing do not count) and lets go.
    static func isFree(_ port: Int) -> Bool {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return true }
        defer { close(descriptor) }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0 || errno != EADDRINUSE
    }

    /// The process listening on `port` (Linux: the socket's inode in /proc/net/tcp*, then the process holding
    /// it among those this user may inspect); nil when it cannot be told.
    static func listener(of port: Int) -> String? {
        #if os(Linux)
        let hexPort = String(format: ":%04X", port)
        var inodes: Set<String> = []
        // /proc/net/tcp is read in pages while sockets come and go, and an entry can be skipped when the table
        // changes between two pages: on a busy machine (thousands of sockets opening and closing) five reads in a row
        // can all miss it. The port is known to be held (its bind just failed), so read again for up to 2 seconds.
        let deadline = ContinuousClock.now + .seconds(2)
        while inodes.isEmpty, ContinuousClock.now < deadline {
            for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
                guard let text = Self.read(table) else { continue }
                for line in text.split(separator: "\n").dropFirst() {
                    let fields = line.split(separator: " ")
                    // sl, local address, remote address, state (0A: listening), …, inode (10th).
                    guard fields.count > 9, fields[1].hasSuffix(hexPort), fields[3] == "0A" else { continue }
                    inodes.insert("socket:[\(fields[9])]")
                }
            }
        }
        guard !inodes.isEmpty else { return nil }
        // readdir, not FileManager: processes come and go while /proc is listed, and a listing that fails for one
        // vanished entry must not hide the holder.
        for pid in Self.entries(of: "/proc") where pid.allSatisfy(\.isNumber) {
            for descriptor in Self.entries(of: "/proc/\(pid)/fd") {
                guard
                    let target = try? FileManager.default.destinationOfSymbolicLink(
                        atPath: "/proc/\(pid)/fd/\(descriptor)"),
                    inodes.contains(target)
                else { continue }
                return "pid \(pid): \(self.commandLine(pid: pid))"
            }
        }
        return "a process of another user"
        #else
        return nil
        #endif
    }

    #if os(Linux)
    /// The names in a directory (none when it cannot be opened), with readdir.
    private static func entries(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A /proc file's whole text, read to its end with read(2) (EINTR retried); nil when it cannot be opened.
    private static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    #endif

    /// `/proc/<pid>/cmdline` as one line, the executable shortened to its name.
    private static func commandLine(pid: String) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else {
            return "(unknown command)"
        }
        var parts = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if let first = parts.first { parts[0] = URL(fileURLWithPath: first).lastPathComponent }
        let line = parts.joined(separator: " ")
        return line.count <= 160 ? line : String(line.prefix(159)) + "…"
    }
}
