package import Logging
package import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The data plane: accepts client connections and forwards each request by its route's stage.
///
/// On graceful shutdown (SIGTERM) it stops accepting, lets every in-flight request finish, closes idle
/// keep-alive connections, and returns once the last connection has closed.
package final class ProxyServer: Service {
    private let shared: ProxyShared
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    package init(
        shared: ProxyShared, group: any EventLoopGroup, logger: Logger, onListening: @escaping @Sendable (Int) -> Void
    ) {
        self.shared = shared
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    package func run() async throws {
        let configuration = self.shared.configuration
        let shared = self.shared
        let quiesce = ServerQuiescingHelper(group: self.group)

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
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyHandler(shared: shared, loop: shared.loopState(for: channel.eventLoop)))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()

        let port = channel.localAddress?.port ?? configuration.port
        self.logger.info(
            "proxy listening",
            metadata: ["address": "\(configuration.host):\(port)", "maxConnections": "\(shared.connections.limit)"])
        self.onListening(port)

        let fullyShutDown = channel.eventLoop.makePromise(of: Void.self)
        let shutdownStarted = OnceFlag()
        let startShutdown: @Sendable () -> Void = {
            guard shutdownStarted.claim() else { return }
            quiesce.initiateShutdown(promise: fullyShutDown)
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await fullyShutDown.futureResult.get()
            } onGracefulShutdown: {
                self.logger.info("proxy draining in-flight requests")
                startShutdown()
            }
        } onCancel: {
            startShutdown()
        }
        self.logger.info("proxy stopped")
    }
}

/// Something that happens once: the first `claim` gets true, every later one false (from any thread).
final class OnceFlag: Sendable {
    private let claimed = Atomic<Bool>(false)

    func claim() -> Bool {
        !self.claimed.exchange(true, ordering: .acquiringAndReleasing)
    }
}
