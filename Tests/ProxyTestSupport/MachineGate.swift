package import Testing

/// Keeps tests that load the whole machine apart from tests that measure time.
///
/// Swift Testing runs every test of the process in parallel, on a machine of two cores. A test that starts a whole
/// stack of processes (`strangler up`, a service killed with -9) takes both cores for seconds; a test that checks a
/// deadline of the proxy (a slow head cut at 300 ms, an idle connection closed after 1 s) running meanwhile sees
/// its own reads and writes come seconds late and fails, though the proxy did its part. Such a test is a flaky test.
///
/// `.timingSensitive` tests share the gate (they run alongside each other); a `.loadsTheMachine` test has it alone.
/// Waiting for the gate is not a sleep: a test waits on a continuation until the gate is free.
///
/// ```swift
/// @Suite("Proxy: request hygiene", .timingSensitive) struct ProxyHygieneTests { … }
/// @Suite("strangler up", .loadsTheMachine) struct UpCommandTests { … }
/// ```
package struct MachineGateTrait: SuiteTrait, TestTrait, TestScoping {
    let exclusive: Bool

    package var isRecursive: Bool { true }

    package func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // A suite's own scope holds nothing: each of its test cases takes the gate for itself (holding it for the
        // suite too would wait on itself).
        guard testCase != nil else { return try await function() }
        await MachineGate.shared.enter(exclusive: self.exclusive)
        do {
            try await function()
        } catch {
            await MachineGate.shared.leave(exclusive: self.exclusive)
            throw error
        }
        await MachineGate.shared.leave(exclusive: self.exclusive)
    }
}

extension Trait where Self == MachineGateTrait {
    /// The test checks deadlines or durations: it runs while no `.loadsTheMachine` test does.
    package static var timingSensitive: Self { MachineGateTrait(exclusive: false) }
    /// The test starts processes or load that take the machine's cores: it runs alone among gated tests.
    package static var loadsTheMachine: Self { MachineGateTrait(exclusive: true) }
}

/// A readers–writer gate, first come first served (a waiting exclusive test is not overtaken by later shared ones).
actor MachineGate {
    static let shared = MachineGate()

    private var shared = 0
    private var exclusive = false
    private var waiting: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func enter(exclusive: Bool) async {
        if self.waiting.isEmpty, self.admits(exclusive: exclusive) {
            self.take(exclusive: exclusive)
            return
        }
        await withCheckedContinuation { self.waiting.append((exclusive, $0)) }
    }

    func leave(exclusive: Bool) {
        if exclusive { self.exclusive = false } else { self.shared -= 1 }
        while let next = self.waiting.first, self.admits(exclusive: next.exclusive) {
            self.waiting.removeFirst()
            self.take(exclusive: next.exclusive)
            next.continuation.resume()
        }
    }

    private func admits(exclusive: Bool) -> Bool {
        exclusive ? !self.exclusive && self.shared == 0 : !self.exclusive
    }

    private func take(exclusive: Bool) {
        if exclusive { self.exclusive = true } else { self.shared += 1 }
    }
}
