import StranglerTesting
import XCTest

/// The harness from XCTest: a ParityFailure thrown by `run` fails the test with the step, both statuses and the diff.
final class HarnessXCTestExample: XCTestCase {
    func testContactReadsAgreeOnBothPaths() async throws {
        try await Stack.run { stack in
            let ids = try await SampleData.create(on: stack.monolith)
            let harness = try stack.harness()
            try await harness.run(
                Scenarios.contactReads(ids),
                against: [
                    Target("monolith", stack.monolith), Target("contacts service", stack.service("contacts").endpoint),
                ])
        }
    }
}
