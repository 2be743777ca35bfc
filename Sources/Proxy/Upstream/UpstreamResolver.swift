package import Logging
import NIOCore
import NIOPosix
import RouteTable
import ServiceLifecycle

/// Resolves the host names of the live table's instances again at a fixed interval (the shortest `"dnsRefresh"` of
/// the groups that have names, 30 s by default), so that an instance behind a name that moves is followed without a
/// reload. The system resolver reports no TTL, so none is read. Tables with IP addresses only are never re-resolved.
package struct UpstreamResolver: Service {
    let store: RouteTableStore
    let logger: Logger

    package init(store: RouteTableStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    package func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let table = self.store.snapshot.table
                let named = table.namedGroups.filter { $0.group.instances.contains(where: \.hostIsName) }
                let interval =
                    named.map { $0.group.resolveInterval ?? UpstreamGroup.defaultResolveInterval }.min()
                    ?? UpstreamGroup.defaultResolveInterval
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled, !named.isEmpty else { continue }
                // getaddrinfo blocks: off the cooperative pool.
                let store = self.store
                let moved = try? await NIOThreadPool.singleton.runIfActive { store.resolveAgain() }
                if let moved = moved ?? nil {
                    self.logger.notice(
                        "an upstream host name resolves elsewhere; new connections go to its new address",
                        metadata: ["version": "\(moved.version)"])
                }
            }
        }
    }
}
