import AsyncHTTPClient
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceKit
import Synchronization

/// Latencies in logarithmic buckets (5% wide, 1 µs to about 5 minutes): bounded memory whatever the run's
/// length, percentiles within 5%.
struct LatencyHistogram: Sendable {
    private static let growth = 1.05
    private static let bucketCount = 400
    private var buckets = [Int](repeating: 0, count: LatencyHistogram.bucketCount)
    private(set) var count = 0

    mutating func record(_ duration: Duration) {
        let microseconds = max(
            1, Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12)
        let index = min(Self.bucketCount - 1, Int(log(microseconds) / log(Self.growth)))
        self.buckets[index] += 1
        self.count += 1
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in 0..<Self.bucketCount { self.buckets[index] += other.buckets[index] }
        self.count += other.count
    }

    /// The latency under which `fraction` of the recorded ones fall (the bucket's upper bound), or nil when empty.
    func percentile(_ fraction: Double) -> Duration? {
        guard self.count > 0 else { return nil }
        let rank = max(1, Int((fraction * Double(self.count)).rounded(.up)))
        var seen = 0
        for (index, count) in self.buckets.enumerated() {
            seen += count
            if seen >= rank { return .microseconds(Int64(pow(Self.growth, Double(index + 1)).rounded())) }
        }
        return nil
    }
}

/// What one operation's requests gave.
struct TrafficCounts: Sendable {
    var sent = 0
    /// Answers by status class: index 1 for 1xx … 5 for 5xx.
    var classes = [Int](repeating: 0, count: 6)
    /// No answer: refused, reset, timed out.
    var errors = 0
    var latency = LatencyHistogram()

    var answered: Int { self.classes.reduce(0, +) }
    var completed: Int { self.answered + self.errors }

    mutating func merge(_ other: TrafficCounts) {
        self.sent += other.sent
        for index in self.classes.indices { self.classes[index] += other.classes[index] }
        self.errors += other.errors
        self.latency.merge(other.latency)
    }
}

/// A run's counters at one moment.
struct TrafficSnapshot: Sendable {
    var elapsed: Duration
    var planned: Int
    var byOperation: [TrafficOperation: TrafficCounts]
    /// Requests not sent because `maxInFlight` were waiting for answers (the target is slower than the rate).
    var skipped: Int
    var inFlight: Int
    /// Entity requests on the hot set, and all entity requests.
    var hotRequests: Int
    var entityRequests: Int
    /// The last error without an answer, for the progress line.
    var lastError: String?

    var total: TrafficCounts { self.byOperation.values.reduce(into: TrafficCounts()) { $0.merge($1) } }
    var writes: Int { self.byOperation.filter { $0.key.isWrite }.map(\.value.sent).reduce(0, +) }
}

/// `strangler traffic`'s engine: discovers ids through the target, then sends the mix open-loop at a fixed
/// rate (a slow target does not slow the sending; `maxInFlight` bounds what waits for answers).
final class TrafficRun: Sendable {
    struct Configuration: Sendable {
        var target: FeedEndpoint
        var rate: Int
        var duration: Duration
        var hotAccounts = 5
        var maxInFlight = 512
        var requestTimeout: Duration = .seconds(10)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private struct State {
        var pools = TrafficPools()
        var counts: [TrafficOperation: TrafficCounts] = [:]
        var skipped = 0
        var inFlight = 0
        var hotRequests = 0
        var entityRequests = 0
        var lastError: String?
    }

    let configuration: Configuration
    private let state = Mutex(State())
    private let started = Mutex<ContinuousClock.Instant?>(nil)

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    var plannedRequests: Int {
        let seconds =
            Double(self.configuration.duration.components.seconds) + Double(
                self.configuration.duration.components.attoseconds) / 1e18
        return max(1, Int((seconds * Double(self.configuration.rate)).rounded()))
    }

    // MARK: Discovery

    /// Lists accounts, contacts, leads and deals through the target (a few pages of each) and picks the hot
    /// accounts; with no account at all, creates the hot ones. Throws when the target cannot be reached or
    /// does not answer as the CRM does.
    func discover() async throws(Failure) -> TrafficPools {
        var pools = TrafficPools()
        pools.accounts = try await self.list("/accounts", pages: 5).map(\.id)
        if pools.accounts.isEmpty {
            for index in 1...max(1, self.configuration.hotAccounts) {
                let body =
                    #"{"name":"Traffic \#(index)","domain":"traffic-\#(index).example.com","industry":"software"}"#
                let answer = try await self.send(.POST, "/accounts", body: body)
                guard answer.status == 201,
                    let id = (try? JSONParser.parse(Array(answer.body.readableBytesView)))?["id"]?.stringValue
                else {
                    throw Failure(
                        description:
                            "POST /accounts answered \(answer.status): \(String(buffer: answer.body).prefix(200))")
                }
                pools.accounts.append(id)
            }
        }
        for (id, account) in try await self.list("/contacts", pages: 10) {
            pools.contacts.append(id)
            if let account { pools.contactsByAccount[account, default: []].append(id) }
        }
        for (id, account) in try await self.list("/deals", pages: 5) {
            pools.deals.append(id)
            if let account { pools.dealsByAccount[account, default: []].append(id) }
        }
        pools.leads = try await self.list("/leads", pages: 5, skipStatus: "converted").map(\.id)
        pools.chooseHot(accounts: self.configuration.hotAccounts)
        return pools
    }

    /// Up to `pages` pages of 200 of a list: each item's id and accountId.
    private func list(
        _ path: String, pages: Int, skipStatus: String? = nil
    ) async throws(Failure) -> [(id: String, account: String?)] {
        var items: [(String, String?)] = []
        let target = self.configuration.target
        try await ListPages.read(
            path, pages: pages, send: { (uri) async throws(Failure) in try await self.send(.GET, uri) },
            refused: { uri, why in
                Failure(description: "GET \(uri) \(why); is the CRM running behind \(target)?")
            },
            visit: { list in
                for item in list where skipStatus == nil || item["status"]?.stringValue != skipStatus {
                    if let id = item["id"]?.stringValue { items.append((id, item["accountId"]?.stringValue)) }
                }
            })
        return items
    }

    private func send(
        _ method: HTTPMethod, _ uri: String, body: String? = nil
    ) async throws(Failure) -> OneShotHTTPClient.Answer {
        do {
            return try await self.exchange(method, uri, body: body)
        } catch {
            throw Failure(
                description:
                    "cannot reach \(self.configuration.target) (\(Self.reason(error))); is `strangler up` (or the "
                    + "proxy) running? Pass --target to send elsewhere."
            )
        }
    }

    /// One request with the run's timeout.
    private func exchange(_ method: HTTPMethod, _ uri: String, body: String?) async throws -> OneShotHTTPClient.Answer {
        let client = OneShotHTTPClient(
            host: self.configuration.target.host, port: self.configuration.target.port, client: .traffic)
        let headers = HTTPHeaders(
            [("User-Agent", "strangler-traffic")] + (body == nil ? [] : [("Content-Type", "application/json")]))
        let timeout = self.configuration.requestTimeout
        return try await withThrowingTaskGroup(of: OneShotHTTPClient.Answer?.self) { group in
            group.addTask {
                try await client.send(method, uri, headers: headers, body: body.map { ByteBuffer(string: $0) })
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let answer = try await group.next() ?? nil else {
                throw Failure(description: "no answer within \(DurationFormat.text(timeout))")
            }
            return answer
        }
    }

    // MARK: Sending

    /// Sends the planned requests at the configured rate, calling `progress` every `progressEvery` (and once at
    /// the end), until done or until `shouldStop` says so (then what is in flight is still awaited).
    func run(
        pools: TrafficPools, progressEvery: Duration, shouldStop: @escaping @Sendable () -> Bool = { false },
        progress: @escaping @Sendable (TrafficSnapshot) -> Void
    ) async -> TrafficSnapshot {
        self.state.withLock { $0.pools = pools }
        let clock = ContinuousClock()
        let start = clock.now
        self.started.withLock { $0 = start }
        let planned = self.plannedRequests
        let interval = self.configuration.duration / planned
        let sending = LockedValue(true)
        await withDiscardingTaskGroup { group in
            group.addTask {
                var next = start + progressEvery
                while sending.value || self.state.withLock({ $0.inFlight }) > 0 {
                    if clock.now >= next {
                        progress(self.snapshot(planned: planned))
                        next = clock.now + progressEvery
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            var issued = 0
            var random = SystemRandomNumberGenerator()
            while issued < planned && !shouldStop() {
                // Every request whose time has come, all at once if the loop woke late: the rate holds.
                let due = min(planned, Int((clock.now - start) / interval) + 1)
                while issued < due {
                    issued += 1
                    let request: TrafficRequest? = self.state.withLock { state in
                        guard state.inFlight < self.configuration.maxInFlight else {
                            state.skipped += 1
                            return nil
                        }
                        state.inFlight += 1
                        let request = state.pools.next(using: &random)
                        state.counts[request.operation, default: TrafficCounts()].sent += 1
                        return request
                    }
                    if let request { group.addTask { await self.perform(request) } }
                }
                if issued < planned {
                    let wake = start + interval * issued
                    try? await Task.sleep(until: min(wake, clock.now + .milliseconds(100)), clock: clock)
                }
            }
            sending.value = false
        }
        let final = self.snapshot(planned: planned)
        progress(final)
        return final
    }

    private func perform(_ request: TrafficRequest) async {
        let clock = ContinuousClock()
        let start = clock.now
        var result: Result<OneShotHTTPClient.Answer, any Error>
        do {
            result = .success(try await self.exchange(request.method, request.path, body: request.body))
        } catch {
            result = .failure(error)
        }
        let latency = clock.now - start
        // Parsed outside the lock: only answers that bring new ids.
        let body: JSONValue? =
            switch (request.operation, result) {
            case (.createLead, .success(let answer)), (.createContact, .success(let answer)),
                (.convertLead, .success(let answer)):
                try? JSONParser.parse(Array(answer.body.readableBytesView))
            default: nil
            }
        self.state.withLock { state in
            state.inFlight -= 1
            if request.id != nil && request.operation != .convertLead && request.operation != .deleteContact {
                state.entityRequests += 1
                if request.hot { state.hotRequests += 1 }
            }
            switch result {
            case .success(let answer):
                state.counts[request.operation]!.classes[min(5, max(1, answer.status / 100))] += 1
                state.counts[request.operation]!.latency.record(latency)
                state.pools.learn(from: request, status: answer.status, body: body)
            case .failure(let error):
                state.counts[request.operation]!.errors += 1
                state.lastError = "\(request.method) \(request.path): \(Self.reason(error))"
            }
        }
    }

    /// Why no answer came, in a few words ("connection refused"), not NIO's nested error values.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let failure = error.connectionErrors.first { return Self.reason(failure.error) }
            return error.dnsAError.map(Self.reason) ?? "cannot resolve \(error.host)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout:
            return "connection timed out"
        default:
            return "\(error)"
        }
    }

    func snapshot(planned: Int) -> TrafficSnapshot {
        let elapsed = self.started.withLock { $0 }.map { ContinuousClock.now - $0 } ?? .zero
        return self.state.withLock { state in
            TrafficSnapshot(
                elapsed: elapsed, planned: planned, byOperation: state.counts, skipped: state.skipped,
                inFlight: state.inFlight,
                hotRequests: state.hotRequests, entityRequests: state.entityRequests, lastError: state.lastError)
        }
    }
}

/// Durations as people read them: `850ms`, `3.2s`, `2m05s`.
enum DurationFormat {
    static func text(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        return String(format: "%dm%02ds", whole / 60, whole % 60)
    }

    /// Latencies: `0.8ms`, `12ms`, `1.4s`.
    static func latency(_ duration: Duration?) -> String {
        guard let duration else { return "-" }
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        if milliseconds < 10 { return String(format: "%.1fms", milliseconds) }
        if milliseconds < 1000 { return "\(Int(milliseconds.rounded()))ms" }
        return String(format: "%.1fs", milliseconds / 1000)
    }
}

/// A value behind a lock, shared by reference between tasks.
final class LockedValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        self.mutex = Mutex(value)
    }

    var value: Value {
        get { self.mutex.withLock { $0 } }
        set { self.mutex.withLock { $0 = newValue } }
    }

    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T {
        self.mutex.withLock { body(&$0) }
    }
}

extension HTTPClient {
    /// The client `strangler traffic` sends with: the toolkit's configuration, but as many connections to the target
    /// at once as the open loop has requests in flight (each request is `Connection: close`). The shared toolkit client
    /// allows 8 per host, and past them a request waits for a connection, then fails
    /// (`getConnectionFromPoolTimeout`) once the answers are slower than 8 per connect timeout. A global, like
    /// ``AsyncHTTPClient/HTTPClient/toolkit``: never deinitialised, so never shut down.
    static let traffic: HTTPClient = {
        var configuration = HTTPClient.Configuration.toolkit
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4096
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()
}
