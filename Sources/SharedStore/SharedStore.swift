public import ControlPlane
public import Logging
import NIOCore
import NIOPosix
import PostgresNIO
public import PostgresSupport
import Synchronization

/// The shared store on PostgreSQL: what several proxies route by and count into (`strangler proxy --store URL`).
///
/// It keeps, in the schema `strangler`, the route table's versions and head, the audit log and the instances that
/// route by it (``SharedStore/migrations``). Every operation is bounded by ``timeout``: a store that is down or slow
/// is refused with a ``SharedStoreFailure`` that says so, never waited on by a request.
///
/// ```swift
/// let store = try await SharedStore.connect(try StoreLocation.parse("postgres://strangler@127.0.0.1/routes"),
///                                           logger: logger)
/// let head = try await store.head()       // the table every proxy routes by
/// await store.close()
/// ```
public final class SharedStore: Sendable {
    public let location: StoreLocation
    /// How long one operation may take before it is refused (the store is then reported as unreachable).
    public let timeout: Duration
    let running: RunningClient
    var client: PostgresClient { self.running.client }
    let logger: Logger

    private init(location: StoreLocation, timeout: Duration, logger: Logger) {
        self.location = location
        self.timeout = timeout
        self.logger = logger
        let configuration = location.clientConfiguration(connectTimeout: timeout, maximumConnections: 8)
        self.running = RunningClient(configuration, logger: logger)
    }

    /// Connects, and creates or migrates the store's schema (one proxy at a time: the others wait for it). Throws
    /// when the store cannot be reached and migrated within `startTimeout`, or holds a schema newer than this build
    /// knows. Each later operation is bounded by `timeout`.
    public static func connect(
        _ location: StoreLocation, logger: Logger, timeout: Duration = .seconds(3),
        startTimeout: Duration = .seconds(30)
    ) async throws(SharedStoreFailure) -> SharedStore {
        let store = SharedStore(location: location, timeout: timeout, logger: logger)
        do {
            try await store.migrate(within: max(startTimeout, timeout))
        } catch {
            store.close()
            throw error
        }
        return store
    }

    /// Closes every connection; operations after it fail.
    public func close() {
        self.running.close()
    }

    public var storeDescription: String { self.location.description }

    /// Runs `operation` for ``timeout`` at most: past it, the caller gets a failure saying the store did not answer
    /// (the operation itself goes on until the connection gives up, and its outcome is dropped). `what` names the
    /// operation in the failure.
    func bounded<Value: Sendable>(
        _ what: String, within limit: Duration? = nil, _ operation: @escaping @Sendable () async throws -> Value
    ) async throws(SharedStoreFailure) -> Value {
        let timeout = limit ?? self.timeout
        let location = self.location
        let race = Race<Value>()
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<Value, SharedStoreFailure>, Never>) in
                race.start(continuation)
                let work = Task {
                    do {
                        race.finish(.success(try await operation()))
                    } catch {
                        race.finish(
                            .failure(SharedStoreFailure("\(what) failed at \(location): \(Self.describe(error))")))
                    }
                }
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    if race.finish(
                        .failure(
                            SharedStoreFailure("\(what): the store at \(location) did not answer within \(timeout)")))
                    {
                        work.cancel()
                    }
                }
                race.onFinish { timer.cancel() }
            }
        } onCancel: {
            race.finish(.failure(SharedStoreFailure("\(what): cancelled")))
        }
        return try outcome.get()
    }

    /// What went wrong, in words: the server's message and SQLSTATE, or the connection's failure.
    static func describe(_ error: any Error) -> String {
        if let failure = error as? SharedStoreFailure { return failure.description }
        return describePostgresError(error)
    }
}

/// The first of an operation's result, its timeout and its caller's cancellation to finish, handed to the waiting
/// continuation once.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result<Value, SharedStoreFailure>, Never>?
        var early: Result<Value, SharedStoreFailure>?
        var finished = false
        var onFinish: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result<Value, SharedStoreFailure>, Never>) {
        let early = self.state.withLock { state -> Result<Value, SharedStoreFailure>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    func onFinish(_ body: @escaping @Sendable () -> Void) {
        let finished = self.state.withLock { state -> Bool in
            if state.finished { return true }
            state.onFinish = body
            return false
        }
        if finished { body() }
    }

    /// True when `result` was the first.
    @discardableResult
    func finish(_ result: Result<Value, SharedStoreFailure>) -> Bool {
        let (continuation, body, first) = self.state.withLock { state in
            guard !state.finished else {
                return (
                    nil as CheckedContinuation<Result<Value, SharedStoreFailure>, Never>?,
                    nil as (@Sendable () -> Void)?, false
                )
            }
            state.finished = true
            if state.continuation == nil { state.early = result }
            defer {
                state.continuation = nil
                state.onFinish = nil
            }
            return (state.continuation, state.onFinish, true)
        }
        continuation?.resume(returning: result)
        body?()
        return first
    }
}
