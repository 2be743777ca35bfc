import DiffStore
import Gateway
import JSON
import Logging
import ProxyTestSupport
import RouteTable
import ServiceLifecycle
import Testing

@testable import Proxy

/// The recorder's one loop: its interval's ticks and the eager flush of `submit` ring the same doorbell, and what is
/// left when the process stops is written last. Timing-sensitive: its eager flush has a deadline, which a run beside
/// `strangler up`'s live stacks once missed (the flush came only with the next one, 40 s in).
@Suite("Shadow recorder: its run loop flushes", .timingSensitive)
struct ShadowRecorderTests {
    static func observation() -> ShadowObservation {
        let answer = RawAnswer(
            status: 200, head: Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".utf8),
            body: Array(#"{"a":1}"#.utf8))
        return ShadowObservation(
            route: "contacts.get", policy: ShadowPolicy(), servedBy: .monolith, requestID: "r1", method: "GET",
            path: "/contacts/1", query: nil,
            requestHead: Array("GET /contacts/1 HTTP/1.1\r\nHost: p\r\n\r\n".utf8), requestBody: [], monolith: answer,
            service: answer, repeated: nil)
    }

    /// Pairs compared for the route so far, as the store has them.
    static func compared(_ store: DiffStore) -> Double? {
        (try? store.summary(route: "contacts.get"))?["routes"]?.arrayValue?.first?["compared"]?.numberValue
    }

    /// Runs `recorder` in a group of its own (as the proxy's group runs it) while `body` runs, then stops it
    /// gracefully.
    static func running(_ recorder: ShadowRecorder, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(services: [recorder], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func enoughPairsWaitingAreWrittenWithoutWaitingForTheInterval() async throws {
        let store = try DiffStore.open(path: nil)
        // maxQueued 4: a flush is due as soon as one pair waits; the interval alone would take an hour.
        let recorder = ShadowRecorder(
            store: store, maxQueued: 4, interval: .seconds(3600), logger: Logger(label: "test"))
        try await Self.running(recorder) {
            recorder.submit(Self.observation())
            #expect(await eventually(within: .seconds(30)) { Self.compared(store) == 1 })
            recorder.submit(Self.observation())
            #expect(await eventually(within: .seconds(30)) { Self.compared(store) == 2 })
        }
    }

    @Test func whatWaitsWhenTheProcessStopsIsWrittenLast() async throws {
        let store = try DiffStore.open(path: nil)
        let recorder = ShadowRecorder(store: store, interval: .seconds(3600), logger: Logger(label: "test"))
        try await Self.running(recorder) {
            recorder.submit(Self.observation())
            recorder.count(.dropped, route: "contacts.get")
        }
        #expect(Self.compared(store) == 1)
        let dropped = try store.summary(route: "contacts.get")["routes"]?.arrayValue?.first?["dropped"]?.numberValue
        #expect(dropped == 1)
    }
}
