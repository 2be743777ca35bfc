import Foundation
public import Logging
import OTel
public import ServiceLifecycle
public import Tracing

/// A tracer and the service that exports its spans (run it in the process's `ServiceGroup`: it flushes what is left
/// when the group shuts down).
public struct TracingBackend: Sendable {
    public let tracer: any Tracer
    public let service: any Service
    /// Where the spans go (the traces URL), how, and as which `service.name`: for the start-up line.
    public let endpoint: String
    public let transport: String
    public let serviceName: String
}

/// Tracing as the standard OpenTelemetry variables configure it. It is off unless
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: spans go to its `/v1/traces`) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// (used as is) names a collector, and off again with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
/// `OTEL_EXPORTER_OTLP_PROTOCOL` (or `…_TRACES_PROTOCOL`) is `http/protobuf` (the default) or `http/json`;
/// `OTEL_SERVICE_NAME` names the process (else `defaultServiceName`). The other `OTEL_*` variables (the sampler, the
/// batch processor, headers, TLS files, timeout, resource attributes) are swift-otel's, read as the specification says.
public enum Telemetry {
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The tracing backend the environment asks for, or nil when it asks for none.
    ///
    /// `scheduleDelay` is how long finished spans wait to be sent in a batch (`OTEL_BSP_SCHEDULE_DELAY`, 5 s by
    /// default); the tests shorten it.
    public static func tracing(
        defaultServiceName: String, environment: [String: String],
        scheduleDelay: Duration? = nil, logger: Logger? = nil
    ) throws(Problem) -> TracingBackend? {
        guard let plan = try self.plan(defaultServiceName: defaultServiceName, environment: environment) else {
            return nil
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = plan.serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = plan.transport == "http/json" ? .httpJSON : .httpProtobuf
        configuration.traces.otlpExporter.endpoint = plan.endpoint
        if let scheduleDelay { configuration.traces.batchSpanProcessor.scheduleDelay = scheduleDelay }
        if let logger { configuration.diagnosticLogger = .custom(logger) }
        do {
            let backend = try OTel.makeTracingBackend(configuration: configuration)
            return TracingBackend(
                tracer: backend.factory, service: backend.service, endpoint: plan.endpoint, transport: plan.transport,
                serviceName: plan.serviceName)
        } catch {
            throw Problem("tracing: \(error)")
        }
    }

    /// What `tracing` would set up, checked: the traces URL, the protocol and the service name; nil when off.
    public static func plan(
        defaultServiceName: String, environment: [String: String]
    ) throws(Problem) -> (endpoint: String, transport: String, serviceName: String)? {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if let disabled = value("OTEL_SDK_DISABLED")?.lowercased() {
            guard disabled == "true" || disabled == "false" else {
                throw Problem("OTEL_SDK_DISABLED is \(disabled): true or false")
            }
            if disabled == "true" { return nil }
        }
        if let exporter = value("OTEL_TRACES_EXPORTER")?.lowercased() {
            if exporter == "none" { return nil }
            guard exporter == "otlp" else {
                throw Problem("OTEL_TRACES_EXPORTER is \(exporter): this build exports otlp (or none)")
            }
        }
        let endpoint: String
        let endpointName: String
        if let traces = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            endpoint = traces
            endpointName = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        } else if let base = value("OTEL_EXPORTER_OTLP_ENDPOINT") {
            endpoint = base.hasSuffix("/") ? base + "v1/traces" : base + "/v1/traces"
            endpointName = "OTEL_EXPORTER_OTLP_ENDPOINT"
        } else {
            return nil
        }
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else {
            throw Problem(
                "\(endpointName) is \(endpoint): an http:// or https:// URL with a host (the collector's OTLP/HTTP "
                    + "port, 4318 by default)")
        }
        let protocolName =
            value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").map { ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", $0) }
            ?? value("OTEL_EXPORTER_OTLP_PROTOCOL").map { ("OTEL_EXPORTER_OTLP_PROTOCOL", $0) }
        let transport = protocolName?.1 ?? "http/protobuf"
        switch transport {
        case "http/protobuf", "http/json":
            break
        case "grpc":
            throw Problem(
                "\(protocolName!.0) is grpc: this build exports OTLP over HTTP only; set it to http/protobuf (or "
                    + "http/json) and point the endpoint at the collector's OTLP/HTTP port (4318 by default)")
        default:
            throw Problem("\(protocolName!.0) is \(transport): http/protobuf or http/json")
        }
        let serviceName = value("OTEL_SERVICE_NAME") ?? defaultServiceName
        return (endpoint, transport, serviceName)
    }
}
