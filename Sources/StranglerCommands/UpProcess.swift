import Foundation
import StranglerTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One child process of `up`: started from its plan entry, its standard output and error copied line by line
/// to the console under its name, and how it ended.
///
/// The child starts in a process group of its own, so a Ctrl-C at the terminal reaches `up` alone, and `up` stops its
/// children in order. It is started with `posix_spawn` (``ChildProcess``), not Foundation's `Process`, whose `run()`
/// on Linux reads past the end of its `/proc/self/fd` listing and crashed `up` once while it started the services.
final class UpProcess: Sendable {
    /// How a child ended.
    struct Exit: Sendable, Equatable, CustomStringConvertible {
        var status: Int32
        /// True when a signal ended it (`status` is then the signal's number).
        var signalled: Bool

        var isClean: Bool { !self.signalled && self.status == 0 }

        var description: String {
            guard self.signalled else { return "exit status \(self.status)" }
            let name: String =
                switch self.status {
                case SIGTERM: "SIGTERM"
                case SIGKILL: "SIGKILL"
                case SIGINT: "SIGINT"
                case SIGSEGV: "SIGSEGV"
                case SIGABRT: "SIGABRT"
                case SIGILL: "SIGILL"
                case SIGTRAP: "SIGTRAP"
                default: "signal \(self.status)"
                }
            return "killed by \(name)"
        }
    }

    private struct State: Sendable {
        var exit: Exit?
        /// Standard output and error, until each reaches its end.
        var openStreams = 2
    }

    let child: UpPlan.Child
    let pid: pid_t
    private let state: LockedValue<State>

    /// A child's environment: `up`'s own, the parent it watches, and, with tracing on, its own `OTEL_SERVICE_NAME`
    /// (its name, or `up`'s OTEL_SERVICE_NAME then `-` and its name), so that a collector tells the processes apart.
    static func environment(for child: UpPlan.Child, _ parent: [String: String]) -> [String: String] {
        var environment = parent
        environment[UpParent.variable] = "\(getpid())"
        let base = parent["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 }
        environment["OTEL_SERVICE_NAME"] = base.map { "\($0)-\(child.name)" } ?? child.name
        return environment
    }

    /// Children are started one at a time: a pipe's ends are made close-on-exec before another child could inherit
    /// them.
    private static let spawning = Mutex(())

    /// Starts `child`; `onExit` is called (on another thread) once it has ended.
    init(_ child: UpPlan.Child, executable: String, console: UpConsole, onExit: @escaping @Sendable () -> Void) throws {
        let state = LockedValue(State())
        // The child stops itself should `up` die without stopping it (SIGKILL, a crash): see `UpParent`.
        let environment = Self.environment(for: child, ProcessInfo.processInfo.environment)
        let (process, outputs) = try Self.spawning.withLock { _ -> (ChildProcess, [Int32]) in
            var output: [Int32] = [0, 0]
            var errors: [Int32] = [0, 0]
            guard pipe(&output) == 0 else {
                throw ChildProcess.Failure(description: "pipe: \(String(cString: strerror(errno)))")
            }
            guard pipe(&errors) == 0 else {
                Glibc.close(output[0])
                Glibc.close(output[1])
                throw ChildProcess.Failure(description: "pipe: \(String(cString: strerror(errno)))")
            }
            for descriptor in output + errors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            defer {
                Glibc.close(output[1])
                Glibc.close(errors[1])
            }
            do {
                let process = try ChildProcess(
                    executable: executable, arguments: child.arguments, environment: environment,
                    descriptors: [1: output[1], 2: errors[1]], ownProcessGroup: true)
                return (process, [output[0], errors[0]])
            } catch {
                Glibc.close(output[0])
                Glibc.close(errors[0])
                throw error
            }
        }
        self.child = child
        self.pid = process.pid
        self.state = state
        Thread.detachNewThread {
            process.waitUntilExit()
            let exit: Exit =
                switch process.termination {
                case .signalled(let signal): Exit(status: signal, signalled: true)
                case .exited(let status): Exit(status: status, signalled: false)
                case nil: Exit(status: -1, signalled: false)
                }
            state.withLock { $0.exit = exit }
            onExit()
        }
        for (descriptor, isError) in zip(outputs, [false, true]) {
            let name = child.name
            Thread.detachNewThread {
                Self.pump(descriptor, name: name, error: isError, console: console)
                Glibc.close(descriptor)
                state.withLock { $0.openStreams -= 1 }
            }
        }
    }

    /// How it ended, or nil while it runs.
    var exit: Exit? { self.state.withLock { $0.exit } }

    /// Whether its output has reached its end (it has exited, and so has whatever shared its pipes).
    var outputEnded: Bool { self.state.withLock { $0.openStreams == 0 } }

    /// Sends `signal` unless it has already ended (its pid may be someone else's by then).
    func send(_ signal: Int32) {
        self.state.withLock { state in
            if state.exit == nil { kill(self.pid, signal) }
        }
    }

    /// Copies a child's stream to the console line by line, until its end. Blocking reads on a thread of its
    /// own: a child that writes much never waits on `up`'s tasks.
    private static func pump(_ descriptor: Int32, name: String, error: Bool, console: UpConsole) {
        var splitter = UpLineSplitter()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            for line in splitter.lines(in: buffer[..<count]) { console.line(from: name, line, error: error) }
        }
        if let last = splitter.finish() { console.line(from: name, last, error: error) }
    }
}

/// The side of a child of `up` that watches `up`: a process started with `STRANGLER_UP_PARENT=<pid>` sends itself
/// SIGTERM (its graceful stop) once that process is no longer its parent, so that `up` dying without stopping its
/// children (SIGKILL, a crash) does not leave them running and holding the stack's ports.
public enum UpParent {
    static let variable = "STRANGLER_UP_PARENT"
    /// How often the parent is checked.
    static let interval: useconds_t = 500_000

    /// Starts watching the parent, when the environment names one; does nothing otherwise.
    public static func watch() {
        guard let text = ProcessInfo.processInfo.environment[Self.variable], let parent = pid_t(text), parent > 1 else {
            return
        }
        Thread.detachNewThread {
            // Once `up` is gone, the child is re-parented (to init or a subreaper): its parent id changes.
            while getppid() == parent { usleep(Self.interval) }
            kill(getpid(), SIGTERM)
        }
    }
}
