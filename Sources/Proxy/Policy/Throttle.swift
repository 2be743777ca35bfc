import NIOCore
import RouteTable
import Synchronization

/// `"maxInFlight"` of a route or a service: at most that many of its requests forwarded at once, shared by every event
/// loop. A request past it waits in a first-come queue of at most `maxQueued` for at most `queueTimeout` (its own
/// loop's timer), and a slot that comes free goes straight to the first in the queue, on that one's loop.
final class Throttle: Sendable {
    let maxInFlight: Int
    let maxQueued: Int
    let queueTimeout: Duration
    /// How the scope is named in the 503's message: `route contacts.get`, `service billing`.
    let scope: String

    private struct Waiter {
        var id: UInt64
        var grant: @Sendable () -> Void
    }

    private struct State {
        var inFlight = 0
        var queue = CircularBuffer<Waiter>()
        var nextID: UInt64 = 1
    }

    private let state = Mutex(State())

    init(maxInFlight: Int, maxQueued: Int, queueTimeout: Duration, scope: String) {
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.queueTimeout = queueTimeout
        self.scope = scope
    }

    /// Whether the limits are the same (a table change keeps the throttle, its count and its queue).
    func hasSameLimits(as policy: LimitPolicy) -> Bool {
        policy.maxInFlight == self.maxInFlight && policy.maxQueued == self.maxQueued
            && policy.queueTimeout == self.queueTimeout
    }

    /// Takes a slot if one is free and nobody waits for one.
    func tryAcquire() -> Bool {
        self.state.withLock { state in
            guard state.inFlight < self.maxInFlight, state.queue.isEmpty else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// What `enqueue` did.
    enum Queued {
        /// Waiting: `grant` runs once a slot is handed to it (unless `cancel` with the ticket took it out first).
        case waiting(ticket: UInt64)
        /// A slot came free meanwhile: it is held now, `grant` will not run.
        case acquired
        /// The queue is full.
        case full
    }

    /// Queues a request for a slot.
    func enqueue(grant: @escaping @Sendable () -> Void) -> Queued {
        self.state.withLock { state in
            if state.inFlight < self.maxInFlight, state.queue.isEmpty {
                state.inFlight += 1
                return .acquired
            }
            guard state.queue.count < self.maxQueued else { return .full }
            let id = state.nextID
            state.nextID += 1
            state.queue.append(Waiter(id: id, grant: grant))
            return .waiting(ticket: id)
        }
    }

    /// Takes a waiting request out of the queue; false if it was granted a slot already (its `grant` is under way,
    /// and the slot is the request's to release).
    func cancel(ticket: UInt64) -> Bool {
        self.state.withLock { state in
            guard let index = state.queue.firstIndex(where: { $0.id == ticket }) else { return false }
            state.queue.remove(at: index)
            return true
        }
    }

    /// Gives a slot back: to the first waiting request, or free.
    func release() {
        let next: Waiter? = self.state.withLock { state in
            if let first = state.queue.popFirst() { return first }
            state.inFlight = max(0, state.inFlight - 1)
            return nil
        }
        next?.grant()
    }

    /// Requests forwarded and waiting now.
    var counts: (inFlight: Int, queued: Int) { self.state.withLock { ($0.inFlight, $0.queue.count) } }
}
