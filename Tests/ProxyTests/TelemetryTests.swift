import Telemetry
import Testing

/// Which OpenTelemetry variables turn tracing on, and what is refused.
@Suite struct TelemetryTests {
    func plan(
        _ environment: [String: String]
    ) throws(Telemetry.Problem) -> (
        endpoint: String, transport: String, serviceName: String
    )? {
        try Telemetry.plan(defaultServiceName: "strangler", environment: environment)
    }

    @Test func offUnlessAnEndpointIsNamed() throws {
        #expect(try self.plan([:]) == nil)
        #expect(try self.plan(["OTEL_SERVICE_NAME": "crm", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"]) == nil)
        #expect(try self.plan(["OTEL_EXPORTER_OTLP_ENDPOINT": "  "]) == nil)
        // Named, but switched off.
        #expect(try self.plan(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"]) == nil)
        #expect(try self.plan(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]) == nil)
    }

    @Test func theBaseEndpointGetsV1TracesAndTheTracesOneIsUsedAsIs() throws {
        let base = try #require(try self.plan(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(base.endpoint == "http://collector:4318/v1/traces")
        #expect(base.transport == "http/protobuf")
        #expect(base.serviceName == "strangler")
        let slash = try #require(try self.plan(["OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/otlp/"]))
        #expect(slash.endpoint == "https://collector/otlp/v1/traces")
        let traces = try #require(
            try self.plan([
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:9/t",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_SERVICE_NAME": "edge-proxy",
            ]))
        #expect(traces.endpoint == "http://b:9/t")
        #expect(traces.transport == "http/json")
        #expect(traces.serviceName == "edge-proxy")
    }

    @Test func whatCannotBeUsedIsRefusedByName() {
        func refusal(_ environment: [String: String]) -> String? {
            do {
                _ = try self.plan(environment)
                return nil
            } catch {
                return error.description
            }
        }
        let grpc = refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"])
        #expect(grpc?.contains("OTEL_EXPORTER_OTLP_PROTOCOL is grpc") == true)
        #expect(grpc?.contains("4318") == true)
        #expect(
            refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"])?.contains(
                "http/protobuf or http/json") == true)
        #expect(
            refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"])?.contains("OTEL_EXPORTER_OTLP_ENDPOINT") == true)
        #expect(refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://c"]) != nil)
        #expect(refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "maybe"]) != nil)
        #expect(refusal(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "zipkin"]) != nil)
    }
}
