import ArgumentParser
import Foundation
import Logging
import Telemetry

/// Tracing for a command's process, as the OpenTelemetry variables ask (docs/observability.md): nil when they ask for
/// none (the default). A value it cannot use stops the command before it starts, naming the variable (exit 2).
enum CommandTracing {
    static func backend(command: String, defaultServiceName: String, logger: Logger) throws -> TracingBackend? {
        do {
            let backend = try Telemetry.tracing(
                defaultServiceName: defaultServiceName, environment: ProcessInfo.processInfo.environment,
                logger: logger)
            if let backend {
                logger.notice(
                    "tracing: spans go to the OpenTelemetry collector",
                    metadata: [
                        "endpoint": "\(backend.endpoint)", "protocol": "\(backend.transport)",
                        "service.name": "\(backend.serviceName)",
                    ])
            }
            return backend
        } catch {
            FileHandle.standardError.write(Data("strangler \(command): \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }
}
