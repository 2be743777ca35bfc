package import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PostgresNIO
import StranglerTesting
import Synchronization

/// A PostgreSQL server for the tests: a throw-away cluster under a temporary directory (`initdb` + `pg_ctl`, on a free
/// port, trust authentication on 127.0.0.1 only), stopped and removed when the test process exits or `stop()` is
/// called. As root (CI) the cluster belongs to the `postgres` user, since `initdb` refuses root.
///
/// `STRANGLER_TEST_POSTGRES=postgres://USER@127.0.0.1:PORT` (what `.ci/run` exports) names a running server
/// instead for ``shared()``; a test that stops its server makes its own with ``start()``. Without PostgreSQL
/// installed (`apt-get install postgresql`), both throw ``Missing``, which names what to install: never skipped.
///
/// ```swift
/// let url = try await PostgresServer.shared().freshDatabase()   // postgres://strangler@127.0.0.1:PORT/t_…
/// ```
package final class PostgresServer: Sendable {
    package struct Missing: Error, CustomStringConvertible {
        package var description: String
    }

    package let host = "127.0.0.1"
    package let port: Int
    package let user: String
    /// The cluster's directory (nil: a server this process did not start).
    let directory: String?
    let binaries: String?
    private let running: Mutex<Bool>

    private init(port: Int, user: String, directory: String?, binaries: String?) {
        self.port = port
        self.user = user
        self.directory = directory
        self.binaries = binaries
        self.running = Mutex(directory != nil)
    }

    /// `postgres://USER@127.0.0.1:PORT/` and `database`.
    package func url(_ database: String) -> String { "postgres://\(self.user)@\(self.host):\(self.port)/\(database)" }

    private static let sharedServer = NIOLockedValueBox<Task<PostgresServer, any Error>?>(nil)

    /// The server every test of the process shares: `STRANGLER_TEST_POSTGRES`, else a cluster started on first use
    /// (once: the tests that ask meanwhile wait for it).
    package static func shared() async throws -> PostgresServer {
        let task = Self.sharedServer.withLockedValue { task in
            if let task { return task }
            let started = Task { try await Self.makeShared() }
            task = started
            return started
        }
        return try await task.value
    }

    private static func makeShared() async throws -> PostgresServer {
        let environment = ProcessInfo.processInfo.environment["STRANGLER_TEST_POSTGRES"] ?? ""
        guard !environment.isEmpty else { return try await Self.start() }
        guard let components = URLComponents(string: environment), let port = components.port,
            let user = components.user, !user.isEmpty
        else {
            throw Missing(description: "STRANGLER_TEST_POSTGRES=\(environment) is not postgres://USER@HOST:PORT")
        }
        return PostgresServer(port: port, user: user, directory: nil, binaries: nil)
    }

    /// A new cluster of this test's own (stopped at exit, or by ``stop()``).
    package static func start() async throws -> PostgresServer {
        let binaries = try Self.binaries()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-pg-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let owner = getuid() == 0 ? "postgres" : nil
        if let owner {
            try FileManager.default.setAttributes(
                [.ownerAccountName: owner, .posixPermissions: 0o700], ofItemAtPath: directory)
        }
        let data = directory + "/data"
        try await Self.run(
            binaries + "/initdb", ["-D", data, "-U", "strangler", "-A", "trust", "-E", "UTF8", "--no-sync"],
            as: owner, what: "initdb")
        var lastFailure: (any Error)?
        for _ in 0..<3 {
            let port = try Self.freePort()
            let server = PostgresServer(port: port, user: "strangler", directory: directory, binaries: binaries)
            do {
                try await server.startServer()
                Self.remember(server)
                return server
            } catch {
                lastFailure = error  // the port was taken meanwhile: another
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastFailure ?? Missing(description: "PostgreSQL did not start")
    }

    /// Starts the server again after ``stop()`` (same directory, same port).
    package func restart() async throws {
        try await self.startServer()
    }

    private func startServer() async throws {
        guard let directory, let binaries else { throw Missing(description: "this server was not started here") }
        let options = "-F -k \(directory) -c listen_addresses=127.0.0.1 -p \(self.port) -c fsync=off"
        try await Self.run(
            binaries + "/pg_ctl",
            ["-D", directory + "/data", "-l", directory + "/server.log", "-o", options, "-w", "-t", "60", "start"],
            as: getuid() == 0 ? "postgres" : nil, what: "pg_ctl start")
        self.running.withLock { $0 = true }
    }

    /// Stops the server at once (`-m immediate`: a crash, as far as its clients can tell).
    package func stop() async throws {
        guard let directory, let binaries else { throw Missing(description: "this server was not started here") }
        try await Self.run(
            binaries + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"],
            as: getuid() == 0 ? "postgres" : nil, what: "pg_ctl stop")
        self.running.withLock { $0 = false }
    }

    /// A new, empty database on the server; its URL.
    package func freshDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await self.execute("CREATE DATABASE \(name)")
        return self.url(String(name))
    }

    /// Runs one statement on the `postgres` database (`database`: another).
    package func execute(_ sql: String, database: String = "postgres") async throws {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: self.host, port: self.port, username: self.user, password: nil, database: database,
                tls: .disable),
            id: 1, logger: Logger(label: "test-postgres"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test-postgres"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// The first column of every row `sql` (a query whose first column is text) selects in the database `url` names.
    package func query(_ url: String, _ sql: String) async throws -> [String] {
        let database = String(url.split(separator: "/").last ?? "postgres")
        let logger = Logger(label: "test-postgres")
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: self.host, port: self.port, username: self.user, password: nil, database: database,
                tls: .disable),
            id: 1, logger: logger)
        do {
            var values: [String] = []
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(
                String.self)
            {
                values.append(value)
            }
            try await connection.close()
            return values
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Where `initdb` and `pg_ctl` are: `PG_BIN`, else the newest /usr/lib/postgresql/N/bin.
    static func binaries() throws -> String {
        if let bin = ProcessInfo.processInfo.environment["PG_BIN"], !bin.isEmpty { return bin }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed()
        where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw Missing(
            description:
                "PostgreSQL is not installed (no \(root)/N/bin/initdb): apt-get install -y postgresql, or set "
                + "STRANGLER_TEST_POSTGRES=postgres://USER@127.0.0.1:PORT and PG_BIN to its binaries")
    }

    static func freePort() throws -> Int {
        let socket = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        let port = socket.localAddress?.port ?? 0
        try socket.close().wait()
        return port
    }

    /// Runs a program to its end without holding a thread of the cooperative pool (``ChildProcess``, polled); throws
    /// with its output when it fails.
    static func run(_ program: String, _ arguments: [String], as user: String?, what: String) async throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-pg-run-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child =
            if let user {
                try ChildProcess(
                    executable: "/usr/sbin/runuser", arguments: ["-u", user, "--", program] + arguments, output: output)
            } else {
                try ChildProcess(executable: program, arguments: arguments, output: output)
            }
        while child.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
        guard child.termination == .exited(0) else {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw Missing(description: "\(what) failed (\(String(describing: child.termination))): \(text)")
        }
    }

    // The clusters this process started, stopped at exit.
    private static let started = NIOLockedValueBox<[PostgresServer]>([])

    private static func remember(_ server: PostgresServer) {
        let first = Self.started.withLockedValue { started in
            started.append(server)
            return started.count == 1
        }
        if first {
            atexit {
                for server in PostgresServer.started.withLockedValue({ $0 }) { server.stopNow() }
            }
        }
    }

    /// Stops and removes the cluster, synchronously (at exit, where no Foundation `Process` may run): SIGQUIT to
    /// the postmaster (an immediate shutdown), a wait of 5 s at most for it to go, then the directory.
    private func stopNow() {
        guard let directory else { return }
        if self.running.withLock({ $0 }),
            let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let line = text.split(separator: "\n").first, let pid = pid_t(line.trimmingCharacters(in: .whitespaces))
        {
            kill(pid, SIGQUIT)
            for _ in 0..<500 where kill(pid, 0) == 0 { usleep(10_000) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
