import ControlPlane
import Foundation
import JSON
import Logging
import ServiceLifecycle
import SharedStore
import Synchronization

/// Whether the shared store answered lately, as the follower and the reporter saw it: `/admin/status` and
/// `strangler_store_up` say so.
final class StoreHealth: Sendable {
    private struct State {
        var reachable = true
        var since = Date()
        var lastError: String?
        var lastErrorAt: Date?
    }
    private let state = Mutex(State())
    let location: String
    let logger: Logger

    init(location: String, logger: Logger) {
        self.location = location
        self.logger = logger
    }

    func succeeded() {
        let recovered = self.state.withLock { state -> Bool in
            defer { state.reachable = true }
            guard !state.reachable else { return false }
            state.since = Date()
            return true
        }
        if recovered { self.logger.notice("the shared store answers again", metadata: ["store": "\(self.location)"]) }
    }

    func failed(_ message: String) {
        let lost = self.state.withLock { state -> Bool in
            state.lastError = message
            state.lastErrorAt = Date()
            guard state.reachable else { return false }
            state.reachable = false
            state.since = Date()
            return true
        }
        if lost {
            self.logger.error(
                "the shared store does not answer; routing goes on by the last table, changes are refused",
                metadata: ["store": "\(self.location)", "error": "\(message)"])
        }
    }

    var reachable: Bool { self.state.withLock { $0.reachable } }

    /// `/admin/status`'s `store`, with what the shadow recorder owes it (`evidence`).
    func json(version: Int, evidence: SharedBacklog) -> JSONValue {
        let state = self.state.withLock { $0 }
        let formatter = ISO8601DateFormatter()
        return .object([
            ("url", .string(self.location)), ("reachable", .bool(state.reachable)),
            ("since", .string(formatter.string(from: state.since))), ("version", .number(Double(version))),
            (
                "lastError",
                state.lastError.map { message in
                    .object([
                        ("at", .string(state.lastErrorAt.map { formatter.string(from: $0) } ?? "")),
                        ("message", .string(message)),
                    ])
                } ?? .null
            ),
            (
                "evidence",
                .object([
                    ("backlogCompared", .number(Double(evidence.compared))),
                    ("backlogOutcomes", .number(Double(evidence.outcomes))),
                    ("droppedSignatures", .number(Double(evidence.droppedSignatures))),
                    ("droppedSamples", .number(Double(evidence.droppedSamples))),
                    ("lastError", evidence.lastError.map(JSONValue.string) ?? .null),
                ])
            ),
        ])
    }

    /// Prometheus lines: `strangler_store_up` (1 or 0), and what the recorder owes the store.
    func prometheus(evidence: SharedBacklog) -> String {
        "# HELP strangler_store_up Whether the shared store answered the last operation (1) or not (0).\n"
            + "# TYPE strangler_store_up gauge\nstrangler_store_up \(self.reachable ? 1 : 0)\n"
            + "# HELP strangler_store_evidence_backlog Shadow outcomes counted here and not yet written to the shared "
            + "store.\n# TYPE strangler_store_evidence_backlog gauge\n"
            + "strangler_store_evidence_backlog \(evidence.outcomes)\n"
            + "# HELP strangler_store_evidence_dropped_signatures_total Signature occurrences the backlog had no room "
            + "for.\n# TYPE strangler_store_evidence_dropped_signatures_total counter\n"
            + "strangler_store_evidence_dropped_signatures_total \(evidence.droppedSignatures)\n"
            + "# HELP strangler_store_evidence_dropped_samples_total Mismatch samples the backlog had no room for.\n"
            + "# TYPE strangler_store_evidence_dropped_samples_total counter\n"
            + "strangler_store_evidence_dropped_samples_total \(evidence.droppedSamples)\n"
    }
}

/// Keeps the proxy on the store's head: LISTEN on the commit channel (a change through any proxy is adopted as soon as
/// it commits), and a re-read every `poll` in case a notification was lost with its connection.
struct TableFollower: Service {
    let control: RouteControl
    let store: SharedStore
    let poll: Duration
    let health: StoreHealth
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                group.addTask { await self.reread() }
                await group.waitForAll()
            }
        }
    }

    private func listen() async {
        let control = self.control
        while !Task.isCancelled {
            do {
                try await self.store.listen(
                    listening: { await control.follow() },
                    changed: { _ in await control.follow() })
            } catch {
                if Task.isCancelled { return }
                self.logger.debug("the store's notifications stopped", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func reread() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: self.poll)
            if Task.isCancelled { return }
            await self.check()
        }
    }

    /// One re-read: the head adopted if newer; the store's health updated.
    func check() async {
        if await self.control.follow() {
            self.health.succeeded()
        } else if !Task.isCancelled {
            self.health.failed("the route table's head could not be read")
        }
    }
}

/// Reports this proxy in the store's instance list every `interval` (id, addresses, the version it routes by), drops
/// instances silent for an hour, and removes its own report when it stops.
struct InstanceReporter: Service {
    let control: RouteControl
    let store: SharedStore
    let identity: @Sendable () async -> (id: String, proxy: String, admin: String)?
    let interval: Duration
    let health: StoreHealth
    let logger: Logger
    let startedAt = Date()

    func run() async throws {
        guard let identity = await cancelWhenGracefulShutdown({ await self.identity() }) ?? nil else { return }
        let host = ProcessInfo.processInfo.hostName
        await cancelWhenGracefulShutdown {
            let clock = ContinuousClock()
            var lastForget = clock.now - .seconds(3600)
            // Every `interval`, and at once when the table this proxy routes by changes (so that it is never shown
            // behind for longer than it takes to notice): the version is read from memory, a step at a time.
            let step = min(self.interval, .milliseconds(200))
            while !Task.isCancelled {
                let live = self.control.table.liveTable
                let record = InstanceRecord(
                    id: identity.id, proxy: identity.proxy, admin: identity.admin, host: host,
                    pid: Int(ProcessInfo.processInfo.processIdentifier), version: live.version,
                    contentHash: live.contentHash, startedAt: self.startedAt)
                do throws(SharedStoreFailure) {
                    try await self.store.report(record)
                    if clock.now - lastForget >= .seconds(3600) {
                        try await self.store.forgetSilent(after: 3600)
                        lastForget = clock.now
                    }
                    self.health.succeeded()
                } catch {
                    // A report cut short by the proxy stopping says nothing of the store.
                    if !Task.isCancelled { self.health.failed(error.description) }
                }
                let due = clock.now + self.interval
                while !Task.isCancelled, clock.now < due, self.control.table.liveTable.version == live.version {
                    try? await Task.sleep(for: step)
                }
            }
        }
        try? await self.store.forget(instance: identity.id)
    }
}
