import AdminAPI
import Foundation
import Gateway
import NIOCore
import NIOHTTP1
import Proxy
import ServiceKit
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `up`'s plan: checks the ports, starts the children step by step (each step once the one before answers
/// its health check), prints the summary, then waits for a signal or for a child to die, and stops the children
/// in reverse order.
struct UpStack: Sendable {
    let plan: UpPlan
    let console: UpConsole
    /// How long each stop step (proxy, services, monolith) gets after SIGTERM, before SIGKILL.
    var stopTimeout: Duration = .seconds(10)

    /// The signals received so far, and a doorbell that rings on each signal and each child's exit.
    private final class Events: Sendable {
        let signals = Mutex<[UnixSignal]>([])
        let doorbell: AsyncStream<Void>
        let ring: AsyncStream<Void>.Continuation

        init() {
            (self.doorbell, self.ring) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        }

        var signalCount: Int { self.signals.withLock { $0.count } }
    }

    private enum Startup {
        case ready
        case stopRequested
        case failed(String)
    }

    /// Runs until a signal (status 0 when every child stopped cleanly) or a failure (status 1).
    func run(signals: UnixSignalsSequence) async -> Int32 {
        let events = Events()
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals {
                    events.signals.withLock { $0.append(signal) }
                    events.ring.yield()
                }
            }
            let status = await self.supervise(events)
            group.cancelAll()
            return status
        }
    }

    private func supervise(_ events: Events) async -> Int32 {
        let busy = self.plan.ports.compactMap { what, port in
            UpPorts.occupant(of: port).map { "port \(port) (\(what)) is in use by \($0)" }
        }
        guard busy.isEmpty else {
            for line in busy { self.console.say(line) }
            self.console.say(
                "nothing started; stop what holds \(busy.count == 1 ? "that port" : "those ports") (another `strangler "
                    + "up`?) or change the ports"
            )
            return 1
        }
        let token: String
        do {
            try FileManager.default.createDirectory(atPath: self.plan.dataDirectory, withIntermediateDirectories: true)
            // Created here when missing (the proxy reads the same file), so `up` can check the admin API answers.
            token = try AdminToken.resolve(dataDirectory: self.plan.dataDirectory)
        } catch {
            self.console.say("cannot prepare \(self.plan.dataDirectory): \(error)")
            return 1
        }
        let tokenFromEnvironment = !(ProcessInfo.processInfo.environment["STRANGLER_ADMIN_TOKEN"] ?? "")
            .trimmingCharacters(in: .whitespaces).isEmpty
        if self.plan.reusesData {
            self.console.say("reusing the data in \(self.plan.dataDirectory) (not seeding)")
        } else if self.plan.seed > 0 {
            self.console.say(
                "first run: the monolith seeds \(self.plan.seed) demo contacts into "
                    + "\(self.plan.monolith.database ?? "")"
            )
        }

        var running: [UpProcess] = []
        for step in self.plan.steps {
            for child in step {
                do {
                    self.console.say("starting \(child.name): strangler \(child.arguments.joined(separator: " "))")
                    running.append(
                        try UpProcess(child, executable: self.plan.executable, console: self.console) {
                            events.ring.yield()
                        })
                } catch {
                    self.console.say("cannot start \(child.name) (\(self.plan.executable)): \(error)")
                    return await self.stop(running, events, status: 1)
                }
            }
            switch await self.waitUntilReady(
                running.suffix(step.count), startedBefore: running.dropLast(step.count), token: token, events)
            {
            case .ready:
                continue
            case .stopRequested:
                self.console.say("stopping before startup finished")
                return await self.stop(running, events, status: 0)
            case .failed(let message):
                self.console.say(message)
                return await self.stop(running, events, status: 1)
            }
        }
        self.console.write(self.plan.summary(tokenFromEnvironment: tokenFromEnvironment) + "\n")

        for await _ in events.doorbell {
            if let signal = events.signals.withLock({ $0.first }) {
                self.console.say("\(signal): stopping the proxy, then the services, then the monolith")
                return await self.stop(running, events, status: 0)
            }
            if let dead = running.first(where: { $0.exit != nil }) {
                await Self.drain(dead)
                self.console.say("\(dead.child.name) (pid \(dead.pid)) died: \(dead.exit!); stopping the others")
                return await self.stop(running, events, status: 1)
            }
        }
        return await self.stop(running, events, status: 1)
    }

    /// Probes `processes` until each answers, one of them (or of those started before) exits, a signal comes, or
    /// the startup timeout passes.
    private func waitUntilReady(
        _ processes: ArraySlice<UpProcess>, startedBefore: ArraySlice<UpProcess>, token: String, _ events: Events
    ) async -> Startup {
        let clock = ContinuousClock()
        let started = clock.now
        var nextNotice = started + .seconds(10)
        var waiting = Array(processes)
        while true {
            if events.signalCount > 0 { return .stopRequested }
            if let dead = (startedBefore + processes).first(where: { $0.exit != nil }) {
                await Self.drain(dead)
                return .failed("\(dead.child.name) exited during startup (\(dead.exit!)); its output is above")
            }
            var stillWaiting: [UpProcess] = []
            for process in waiting where await !self.answers(process.child, token: token) {
                stillWaiting.append(process)
            }
            waiting = stillWaiting
            if waiting.isEmpty {
                for process in processes {
                    self.console.say(
                        "\(process.child.name) is ready (pid \(process.pid), \(Self.seconds(clock.now - started)))")
                }
                return .ready
            }
            let now = clock.now
            if now - started >= self.plan.startupTimeout {
                let names = waiting.map { "\($0.child.name) (\(self.probeDescription($0.child)))" }.joined(
                    separator: ", ")
                return .failed(
                    "no answer within \(Self.seconds(self.plan.startupTimeout)) from \(names); see --startup-timeout")
            }
            if now >= nextNotice {
                nextNotice = now + .seconds(10)
                self.console.say(
                    "still waiting for \(waiting.map(\.child.name).joined(separator: ", ")) "
                        + "(\(Self.seconds(now - started)))"
                )
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func probeDescription(_ child: UpPlan.Child) -> String {
        switch child.role {
        case .monolith, .service: "GET http://127.0.0.1:\(child.port)/healthz"
        case .proxy: "http://127.0.0.1:\(child.port) and GET http://127.0.0.1:\(self.plan.adminPort)/admin/status"
        }
    }

    /// Whether `child` answers as itself: the monolith and the services their `/healthz` with their own `Server`
    /// header (not something else on that port); the proxy any answer on its client port (proof that it
    /// listens) and `200` from its admin API with the token (proof that it is this proxy, on this data).
    private func answers(_ child: UpPlan.Child, token: String) async -> Bool {
        switch child.role {
        case .monolith, .service:
            guard let answer = await Self.probe(port: child.port, "/healthz") else { return false }
            return answer.status == 200 && answer.headers.first(name: "Server") == "strangler-\(child.program)"
        case .proxy:
            guard await Self.probe(port: child.port, "/healthz") != nil else { return false }
            let admin = await Self.probe(
                port: self.plan.adminPort, "/admin/status", headers: [("Authorization", "Bearer \(token)")])
            return admin?.status == 200
        }
    }

    /// One GET with a deadline (a socket that accepts and never answers is not ready); nil when no answer came.
    static func probe(port: Int, _ path: String, headers: [(String, String)] = []) async -> OneShotHTTPClient.Answer? {
        await withTaskGroup(of: OneShotHTTPClient.Answer?.self) { group in
            group.addTask {
                try? await OneShotHTTPClient(host: "127.0.0.1", port: port).send(
                    .GET, path, headers: HTTPHeaders(headers))
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Stops every running child, step by step from the last (proxy, services, monolith): SIGTERM, then SIGKILL
    /// after `stopTimeout` or at a second signal. Returns `status`, or 1 when a child did not stop cleanly.
    private func stop(_ running: [UpProcess], _ events: Events, status: Int32) async -> Int32 {
        let clock = ContinuousClock()
        let signalsAtStart = events.signalCount
        // Those running now; one that ends before its step comes is still reported, with how it ended.
        let alive = running.filter { $0.exit == nil }
        var clean = true
        for step in self.plan.steps.reversed() {
            let processes = alive.filter { process in step.contains(process.child) }
            guard !processes.isEmpty else { continue }
            let started = clock.now
            var killed = false
            for process in processes { process.send(SIGTERM) }
            while processes.contains(where: { $0.exit == nil }) {
                let hurried = events.signalCount > signalsAtStart
                if !killed && (hurried || clock.now - started >= self.stopTimeout) {
                    let late = processes.filter { $0.exit == nil }
                    self.console.say(
                        "\(late.map(\.child.name).joined(separator: ", ")) "
                            + (hurried
                                ? "killed at a second signal" : "did not stop within \(Self.seconds(self.stopTimeout))")
                            + ": SIGKILL"
                    )
                    for process in late { process.send(SIGKILL) }
                    killed = true
                    clean = false
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            for process in processes {
                await Self.drain(process)
                let exit = process.exit!
                // A child stopped by SIGTERM before it installed its own handler stopped as asked, too.
                let stoppedAsAsked = exit.isClean || exit == UpProcess.Exit(status: SIGTERM, signalled: true)
                if !stoppedAsAsked { clean = false }
                self.console.say(
                    "\(process.child.name) stopped (\(stoppedAsAsked ? "cleanly" : exit.description), "
                        + "\(Self.seconds(clock.now - started)))"
                )
            }
        }
        self.console.say(clean ? "all stopped" : "stopped, not all cleanly")
        return clean ? status : 1
    }

    /// Waits (briefly) for a child's last output lines, so that they come before `up`'s words about it.
    private static func drain(_ process: UpProcess) async {
        let deadline = ContinuousClock.now + .seconds(1)
        while !process.outputEnded && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }

    static func seconds(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 10 ? String(format: "%.1fs", seconds) : "\(Int(seconds.rounded()))s"
    }
}

extension UpPlan {
    /// Every port `up` needs, with what listens there.
    var ports: [(what: String, port: Int)] {
        [("the monolith", self.monolith.port)] + self.services.map { ("the \($0.name) service", $0.port) } + [
            ("the proxy", self.proxy.port), ("the proxy's admin API", self.adminPort),
        ]
    }
}
