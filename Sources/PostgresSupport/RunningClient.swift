public import Logging
public import PostgresNIO
import Synchronization

/// A connection pool that runs from its creation until ``close()``: postgres-nio's `PostgresClient` wants its `run()`
/// called for as long as it is used, which this does in a task of its own.
public final class RunningClient: Sendable {
    public let client: PostgresClient
    private let runner: Mutex<Task<Void, Never>?>

    public init(_ configuration: PostgresClient.Configuration, logger: Logger) {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.runner = Mutex(Task { await client.run() })
    }

    /// Closes every connection; operations after it fail.
    public func close() {
        self.runner.withLock { runner in
            runner?.cancel()
            runner = nil
        }
    }
}
