package import Logging
package import NIOCore
import NIOPosix
import NIOSSL
import RouteTable
import ServiceLifecycle
import Synchronization

/// Active health checks: every instance of a group that declares `"health"` gets `GET path` each `interval`, on a
/// connection of its own (TLS for `https://`, `Connection: close`). An answer 2xx or 3xx within `timeout` is a pass;
/// anything else (refused, reset, too slow, 4xx, 5xx) a failure. `unhealthyAfter` failures in a row take the instance
/// out of its group's choice; `healthyAfter` passes in a row bring it back. Each transition is logged and counted
/// (`strangler_upstream_health_transitions_total`).
///
/// The checks follow the live table: a reload restarts them on the new table (the instances' verdicts carry over),
/// and the instances of a group without `"health"` count as healthy.
package final class HealthChecker: Service {
    private let store: RouteTableStore
    private let metrics: ProxyMetrics
    private let group: any EventLoopGroup
    private let logger: Logger

    package init(store: RouteTableStore, metrics: ProxyMetrics, group: any EventLoopGroup, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.group = group
        self.logger = logger
    }

    package func run() async {
        let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let key = self.store.observe { _ in continuation.yield() }
        defer {
            self.store.stopObserving(key)
            continuation.finish()
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let snapshot = self.store.snapshot
                await withTaskGroup(of: Void.self) { tasks in
                    for (_, balancer) in snapshot.balancers {
                        guard let check = balancer.group.health else {
                            for state in balancer.instances { state.healthy.store(true, ordering: .relaxed) }
                            continue
                        }
                        for index in balancer.instances.indices {
                            tasks.addTask { await self.watch(balancer, index, check) }
                        }
                    }
                    // The checks run until the table changes (or the proxy stops).
                    tasks.addTask { for await _ in changes { return } }
                    await tasks.next()
                    tasks.cancelAll()
                }
            }
        }
    }

    private func watch(_ balancer: Balancer, _ index: Int, _ check: UpstreamGroup.HealthCheck) async {
        while !Task.isCancelled {
            let verdict = await Self.probe(
                balancer.instances[index].upstream, address: balancer.addresses[index],
                tls: balancer.tlsContexts[index], check: check, eventLoop: self.group.next())
            guard !Task.isCancelled else { return }
            self.record(verdict, of: balancer.instances[index], check: check)
            try? await Task.sleep(for: check.interval)
        }
    }

    /// Counts one check's verdict (nil: a pass; else why it failed) and turns the instance healthy or unhealthy when
    /// its run of passes or failures is long enough.
    func record(_ failure: String?, of state: InstanceState, check: UpstreamGroup.HealthCheck) {
        let change = state.record.withLock { record -> Bool? in
            let healthy = state.healthy.load(ordering: .relaxed)
            if let failure {
                record.failures += 1
                record.passes = 0
                record.lastCheck = failure
                guard healthy, record.failures >= check.unhealthyAfter else { return nil }
                record.unhealthyWhy = "\(record.failures) health checks failed in a row, the last: \(failure)"
                state.healthy.store(false, ordering: .relaxed)
                return false
            }
            record.passes += 1
            record.failures = 0
            record.lastCheck = "passed"
            guard !healthy, record.passes >= check.healthyAfter else { return nil }
            record.unhealthyWhy = nil
            state.healthy.store(true, ordering: .relaxed)
            return true
        }
        guard let healthy = change else { return }
        state.healthTransitions.wrappingAdd(1, ordering: .relaxed)
        self.metrics.healthChanged(state.upstream, healthy: healthy)
        if healthy {
            self.logger.notice("instance healthy again", metadata: ["upstream": "\(state.upstream.url)"])
        } else {
            self.logger.warning(
                "instance unhealthy", metadata: ["upstream": "\(state.upstream.url)", "why": "\(failure ?? "")"])
        }
    }

    /// One check: nil when it passed, else why it failed.
    static func probe(
        _ upstream: Upstream, address: SocketAddress, tls: NIOSSLContext?, check: UpstreamGroup.HealthCheck,
        eventLoop: any EventLoop
    ) async -> String? {
        let promise = eventLoop.makePromise(of: UInt.self)
        let timeout = TimeAmount(check.timeout)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(HealthCheckTimeout(after: check.timeout))
        }
        let serverName = upstream.serverName
        let request =
            "GET \(upstream.pathPrefix)\(check.path) HTTP/1.1\r\nhost: \(upstream.authority)\r\n"
            + "user-agent: strangler-health-check\r\nconnection: close\r\n\r\n"
        let connecting = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(StatusLineReader(promise: promise))
                }
            }
            .connect(to: address)
        connecting.whenSuccess { channel in
            channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        connecting.whenFailure { promise.fail($0) }
        do {
            let status = try await promise.futureResult.get()
            deadline.cancel()
            return (200..<400).contains(status) ? nil : "answered \(status)"
        } catch let error as HealthCheckTimeout {
            return "no answer within \(DurationText.format(error.after))"
        } catch {
            deadline.cancel()
            return ProxyHandler.describe(error, connecting: true)
        }
    }
}

struct HealthCheckTimeout: Error {
    var after: Duration
}

/// Reads an answer's status line and hands over its status code.
private final class StatusLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<UInt>
    private var line: [UInt8] = []

    init(promise: EventLoopPromise<UInt>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        self.line += bytes.readableBytesView.prefix(256 - self.line.count)
        guard let end = self.line.firstIndex(of: UInt8(ascii: "\n")) else {
            if self.line.count >= 256 { self.promise.fail(MalformedAnswer()) }
            return
        }
        // `HTTP/1.1 200 OK`: the three digits after the first space.
        let text = String(decoding: self.line[..<end], as: UTF8.self)
        let parts = text.split(separator: " ", maxSplits: 2)
        if parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = UInt(parts[1]) {
            self.promise.succeed(status)
        } else {
            self.promise.fail(MalformedAnswer())
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(ChannelError.ioOnClosedChannel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }

    struct MalformedAnswer: Error, CustomStringConvertible {
        var description: String { "did not answer HTTP" }
    }
}
