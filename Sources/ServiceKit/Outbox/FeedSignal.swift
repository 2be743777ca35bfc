import ServiceLifecycle
import Synchronization

/// Wakes long-polling readers of a service's own feed (`GET /events?wait=`) when a transaction that wrote
/// events commits. The monolith has its own (it shares no code with the toolkit).
final class FeedSignal: Sendable {
    private struct State {
        var head: Int64
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: (after: Int64, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    private let state: Mutex<State>

    init(head: Int64) {
        self.state = Mutex(State(head: head))
    }

    /// The id of the newest committed event.
    var head: Int64 { self.state.withLock { $0.head } }

    /// Records that events up to `head` are committed, and wakes the readers waiting for them.
    func published(head: Int64) {
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard head > state.head else { return [] }
            state.head = head
            let due = state.waiters.filter { $0.value.after < head }
            for id in due.keys { state.waiters[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once an event newer than `after` is committed, after `timeout`, on cancellation, or when the
    /// process begins a graceful shutdown, whichever comes first.
    func wait(after: Int64, timeout: Duration) async {
        guard timeout > .zero, self.head <= after else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await cancelWhenGracefulShutdown { await self.waitForEvent(after: after) } }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForEvent(after: Int64) async {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state in
                    if state.head > after || Task.isCancelled { return true }
                    state.waiters[id] = (after, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }
}
