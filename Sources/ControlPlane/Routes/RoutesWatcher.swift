public import ServiceLifecycle

/// Watches routes.json: every `interval` it rereads the file, and a valid change goes live (an invalid
/// one is refused and reported on `/admin/status`).
public struct RoutesWatcher: Service {
    let control: RouteControl
    let interval: Duration

    public init(control: RouteControl, interval: Duration) {
        self.control = control
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: self.interval)
            }
            if Task.isShuttingDownGracefully { return }
            await self.control.reloadIfChanged()
        }
    }
}
