import CoreMetrics
package import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Caps the connections of one listener: over the cap, a new connection is accepted and closed at once (not
/// queued), and counted. Each listener has its own, so that a flood on the data plane cannot starve the admin API of
/// file descriptors, nor the reverse.
///
/// Counts `strangler_open_connections{listener}` and `strangler_refused_connections_total{listener}`.
package final class ConnectionLimiter: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)
    private let openMeter: Meter
    private let refused: Counter

    package init(limit: Int, listener: String, metrics: ProxyMetrics) {
        self.limit = limit
        (self.openMeter, self.refused) = metrics.connectionMetrics(listener: listener)
    }

    /// Counts a new connection in; false when the listener is at its cap (the caller closes the connection, and
    /// does not call `release`).
    func admit() -> Bool {
        guard self.open.wrappingAdd(1, ordering: .relaxed).newValue <= self.limit else {
            self.open.wrappingSubtract(1, ordering: .relaxed)
            self.refused.increment()
            return false
        }
        self.openMeter.increment()
        return true
    }

    /// Counts an admitted connection out (it closed).
    func release() {
        self.open.wrappingSubtract(1, ordering: .relaxed)
        self.openMeter.decrement()
    }

    /// Connections admitted and not closed yet.
    var openConnections: Int { self.open.load(ordering: .relaxed) }
}

/// Admits each connection of a listener that is not the proxy's own handler (the admin API's): over the cap, the
/// connection closes as soon as it is active.
package final class AdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = NIOAny

    private let limiter: ConnectionLimiter
    private var admitted = false

    package init(limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    package func channelActive(context: ChannelHandlerContext) {
        guard self.limiter.admit() else {
            context.close(promise: nil)
            return
        }
        self.admitted = true
        context.fireChannelActive()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if self.admitted {
            self.admitted = false
            self.limiter.release()
        }
        context.fireChannelInactive()
    }
}

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`), from which the default connection cap follows.
public enum FileDescriptorLimit {
    /// The soft and hard limits, or nil if they cannot be read.
    public static func current() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        #if os(Linux)
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        #else
        guard getrlimit(RLIMIT_NOFILE, &limit) == 0 else { return nil }
        #endif
        return (Self.clamp(limit.rlim_cur), Self.clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (as the Go runtime and the JVM do at start: the soft limit of 1024
    /// that many systems still default to is far below what a proxy needs); returns the soft limit in force.
    @discardableResult
    public static func raiseSoftLimit() -> Int? {
        var limit = rlimit()
        #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            #if canImport(Darwin)
            // macOS refuses more than OPEN_MAX for the soft limit, whatever the hard one says.
            raised.rlim_cur = min(raised.rlim_cur, rlim_t(OPEN_MAX))
            #endif
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return Self.clamp(limit.rlim_cur)
    }

    /// The data plane's default connection cap for a soft limit of `softLimit` descriptors: half of what is left
    /// after a reserve (every client connection may hold an upstream connection), at least 16. The reserve is 256
    /// (listeners, event loops, the store's files, idle pooled upstream connections) plus the admin API's cap plus
    /// the shadows in flight (each holds a connection).
    public static func defaultMaxConnections(softLimit: Int, adminMaxConnections: Int, maxShadowsInFlight: Int) -> Int {
        max(16, (softLimit - 256 - adminMaxConnections - maxShadowsInFlight) / 2)
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value > rlim_t(Int.max) ? Int.max : Int(value)
    }
}
