import Logging
import Proxy
import ServiceLifecycle
import UnixSignals

/// Keeps the TLS listeners' certificates current: every `interval` it rereads each certificate and key file, and a
/// change that loads is served to new connections (one that does not is refused and logged, and the certificate in
/// force stays); each of `signals` (SIGHUP for `strangler proxy`) rereads them at once. Connections already open keep
/// the certificate they were accepted with.
struct CertificateWatcher: Service {
    let contexts: [ServerTLSContext]
    let interval: Duration
    let signals: [UnixSignal]
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            if !self.signals.isEmpty {
                group.addTask {
                    let signals = await UnixSignalsSequence(trapping: self.signals)
                    // From here on the signals are trapped (before, SIGHUP's default would end the process).
                    self.logger.info(
                        "tls certificates reload on signals",
                        metadata: ["signals": "\(self.signals.map { "\($0)" }.joined(separator: ","))"])
                    await cancelWhenGracefulShutdown {
                        for await _ in signals {
                            for context in self.contexts { context.reload() }
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown {
                        try await Task.sleep(for: self.interval)
                    }
                    if Task.isShuttingDownGracefully || Task.isCancelled { return }
                    for context in self.contexts { context.reloadIfChanged() }
                }
            }
        }
    }
}
