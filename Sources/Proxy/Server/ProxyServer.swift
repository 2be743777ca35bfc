package import Logging
package import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The data plane: accepts client connections and forwards each request by its route's stage.
///
/// It listens on `ProxyConfiguration.port`, plain or TLS, and on `tlsPort` too when one is given (TLS there, `port`
/// plain): every listener serves the same table through the same `ProxyShared`. A TLS listener puts a
/// `NIOSSLServerHandler` (ALPN `http/1.1`) in front of the connection's handler, with the context
/// ``ServerTLSContext`` holds when the connection is accepted.
///
/// On graceful shutdown (SIGTERM) it stops accepting on every listener, lets every in-flight request finish, closes
/// idle keep-alive connections, and returns once the last connection has closed.
package final class ProxyServer: Service {
    /// One socket the data plane listens on.
    package struct Listener: Sendable {
        /// The port asked for (0: any free port).
        package var port: Int
        /// TLS on this listener, or nil for plain HTTP.
        package var tls: ServerTLSContext?
    }

    private let shared: ProxyShared
    private let group: any EventLoopGroup
    private let logger: Logger
    private let listeners: [Listener]
    private let onListening: @Sendable (_ port: Int, _ tls: Bool) -> Void

    /// `tls`: the context of the TLS listener, `tlsPort` when the configuration has one, else `port`.
    /// `onListening` is called once per listener with the port bound and whether it speaks TLS.
    package init(
        shared: ProxyShared, group: any EventLoopGroup, tls: ServerTLSContext? = nil, logger: Logger,
        onListening: @escaping @Sendable (_ port: Int, _ tls: Bool) -> Void
    ) {
        self.shared = shared
        self.group = group
        self.logger = logger
        self.onListening = onListening
        let configuration = shared.configuration
        if let tls, let tlsPort = configuration.tlsPort {
            self.listeners = [Listener(port: configuration.port), Listener(port: tlsPort, tls: tls)]
        } else {
            self.listeners = [Listener(port: configuration.port, tls: tls)]
        }
    }

    package func run() async throws {
        // A token verifier's keys are ready before the first request can present a token.
        await self.shared.store.snapshot.gateway?.tokens?.ready()
        var opened: [(channel: any Channel, quiesce: ServerQuiescingHelper)] = []
        do {
            for listener in self.listeners { opened.append(try await self.bind(listener)) }
        } catch {
            for (channel, _) in opened { try? await channel.close() }
            throw error
        }
        let bound = opened

        let drained = bound.map { $0.channel.eventLoop.makePromise(of: Void.self) }
        let shutdownStarted = OnceFlag()
        let startShutdown: @Sendable () -> Void = {
            guard shutdownStarted.claim() else { return }
            for (listener, promise) in zip(bound, drained) { listener.quiesce.initiateShutdown(promise: promise) }
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                for promise in drained { try await promise.futureResult.get() }
            } onGracefulShutdown: {
                self.logger.info("proxy draining in-flight requests")
                startShutdown()
            }
        } onCancel: {
            startShutdown()
        }
        self.logger.info("proxy stopped")
    }

    private func bind(_ listener: Listener) async throws -> (channel: any Channel, quiesce: ServerQuiescingHelper) {
        let configuration = self.shared.configuration
        let shared = self.shared
        let logger = self.logger
        let quiesce = ServerQuiescingHelper(group: self.group)
        let tls = listener.tls
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        // The context in force now: a reload later leaves this connection's alone.
                        try pipeline.addHandler(NIOSSLServerHandler(context: tls.current))
                        try pipeline.addHandler(TLSEventsHandler(logger: logger))
                    }
                    try pipeline.addHandler(
                        ProxyHandler(
                            shared: shared, loop: shared.loopState(for: channel.eventLoop), secure: tls != nil))
                }
            }
            .bind(host: configuration.host, port: listener.port)
            .get()

        let port = channel.localAddress?.port ?? listener.port
        self.logger.info(
            "proxy listening",
            metadata: [
                "address": "\(configuration.host):\(port)", "tls": "\(tls != nil)",
                "maxConnections": "\(shared.connections.limit)",
            ])
        self.onListening(port, tls != nil)
        return (channel, quiesce)
    }
}

/// Something that happens once: the first `claim` gets true, every later one false (from any thread).
final class OnceFlag: Sendable {
    private let claimed = Atomic<Bool>(false)

    func claim() -> Bool {
        !self.claimed.exchange(true, ordering: .acquiringAndReleasing)
    }
}
