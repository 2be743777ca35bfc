import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A program started as a child of the test process (a monolith, a service, the `strangler` executable), with its
/// standard output and error written to a file, for tests that run real servers.
///
/// ```swift
/// let monolith = try ChildProcess(
///     executable: "/usr/bin/python3", arguments: ["app.py", "--port", "8081"], output: "/tmp/app.log")
/// defer { monolith.kill() }
/// monolith.signal(SIGTERM)
/// monolith.waitUntilExit()
/// monolith.terminationStatus   // 0
/// ```
///
/// It calls `posix_spawn` itself rather than using Foundation's `Process`: on Linux, `Process.run()` lists
/// `/proc/self/fd` copying each entry's whole name field, which reads past the end of the directory buffer and
/// crashes when the test process has many descriptors open (seen at about 1,360, with a suite's servers running in
/// parallel). The child starts with no blocked signals and default signal handlers, standard input from
/// `/dev/null`; descriptors the parent opened close-on-exec (as SwiftNIO's, SQLite's and this type's are) are not
/// inherited.
/// `kill(2)`, under a name the type's own `kill()` does not hide.
private func send(_ signal: Int32, to pid: Int32) -> Int32 { kill(pid, signal) }

public final class ChildProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// How the child ended, once it has.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    /// The child's process id.
    public let pid: Int32
    private let ended = Mutex<Termination?>(nil)

    /// Starts `executable` (a path) with `arguments`, the given environment (the parent's when nil), standard output
    /// and error appended to the file `output` (created 0644 if missing; `/dev/null` when nil).
    ///
    /// `descriptors` maps descriptors of the child (3, 4: Chromium's `--remote-debugging-pipe`) to the parent's that
    /// they are copies of.
    public init(
        executable: String, arguments: [String], environment: [String: String]? = nil, output: String? = nil,
        descriptors: [Int32: Int32] = [:], ownProcessGroup: Bool = false
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (child, parent) in descriptors.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, parent, child)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test runner's threads block signals for its own handlers and ignore SIGPIPE: the child gets neither.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if ownProcessGroup {
            // A process group of its own (`setpgid(0, 0)`): a Ctrl-C at the terminal does not reach it.
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let environment = environment ?? Self.currentEnvironment()
        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { arguments in
            (envp + [nil]).withUnsafeBufferPointer { variables in
                // Neither buffer is empty (each ends with its nil), so both have a base address.
                posix_spawn(&pid, executable, &actions, &attributes, arguments.baseAddress!, variables.baseAddress!)
            }
        }
        guard result == 0 else {
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    static func currentEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return environment
    }

    /// Collects the child's status if it has ended (without waiting); returns it.
    @discardableResult
    private func reap(blocking: Bool) -> Termination? {
        if let ended = self.ended.withLock({ $0 }) { return ended }
        var status: Int32 = 0
        var result: pid_t
        repeat {
            result = waitpid(self.pid, &status, blocking ? 0 : WNOHANG)
        } while result < 0 && errno == EINTR
        guard result == self.pid else {
            // Another thread collected it first (ECHILD): its result is, or is about to be, stored.
            return self.ended.withLock { $0 }
        }
        // The low seven bits are the signal that ended it (0 for an exit); the next eight the exit status.
        let termination: Termination = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
        self.ended.withLock { $0 = termination }
        return termination
    }

    /// Whether the child has not ended yet.
    public var isRunning: Bool { self.reap(blocking: false) == nil }

    /// How it ended; nil while it runs.
    public var termination: Termination? { self.reap(blocking: false) }

    /// Its exit status, or the number of the signal that ended it (as Foundation's `Process` says it); -1 while it
    /// runs.
    public var terminationStatus: Int32 {
        switch self.termination {
        case .exited(let status): status
        case .signalled(let signal): signal
        case nil: -1
        }
    }

    /// Sends `signal` to the child, if it still runs.
    public func signal(_ signal: Int32) {
        if self.isRunning { _ = send(signal, to: self.pid) }
    }

    /// Blocks until the child has ended.
    public func waitUntilExit() {
        while self.reap(blocking: true) == nil, self.ended.withLock({ $0 }) == nil {}
    }

    /// SIGKILL, then waits for it.
    public func kill() {
        self.signal(SIGKILL)
        self.waitUntilExit()
    }
}
