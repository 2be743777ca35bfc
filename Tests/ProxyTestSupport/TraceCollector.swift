import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
package import Telemetry
import Testing

/// An OpenTelemetry collector for tests: it takes OTLP/HTTP JSON (`POST /v1/traces`) on a free port and keeps every
/// span it is sent, with the `service.name` of the process that sent it.
package final class TraceCollector: Sendable {
    package struct Span: Sendable, CustomStringConvertible {
        package var service: String
        package var traceID: String
        package var spanID: String
        package var parentSpanID: String?
        package var name: String
        /// `server`, `client`, `consumer`, `producer` or `internal`.
        package var kind: String
        package var attributes: [String: String]
        package var links: [(traceID: String, spanID: String)]
        package var isError: Bool

        package var description: String {
            "\(self.service) \(self.kind) \"\(self.name)\" \(self.traceID)/\(self.spanID) parent \(self.parentSpanID ?? "-")"
        }
    }

    private let spans = NIOLockedValueBox<[Span]>([])
    private let requests = NIOLockedValueBox<[String]>([])
    /// Where the collector listens (`http://127.0.0.1:PORT`), set once it does.
    package let endpoint: String

    private init(endpoint: String) {
        self.endpoint = endpoint
    }

    package var received: [Span] { self.spans.withLockedValue { $0 } }
    /// The `Content-Type` of each export received.
    package var contentTypes: [String] { self.requests.withLockedValue { $0 } }

    /// Runs `body` with a collector listening.
    package static func run<T: Sendable>(_ body: @Sendable (TraceCollector) async throws -> T) async throws -> T {
        let box = NIOLockedValueBox<TraceCollector?>(nil)
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 16 * 1024 * 1024)
            guard let collector = box.withLockedValue({ $0 }) else { return Response(status: .serviceUnavailable) }
            collector.requests.withLockedValue { $0.append(request.headers[.contentType] ?? "") }
            let value = try JSONParser.parse(String(buffer: bytes))
            collector.spans.withLockedValue { $0 += Self.spans(in: value) }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            let collector = TraceCollector(endpoint: "http://127.0.0.1:\(try #require(client.port))")
            box.withLockedValue { $0 = collector }
            return try await body(collector)
        }
    }

    /// A tracing backend that sends here as `service` (OTLP/HTTP JSON, batches sent every 50 ms).
    package func backend(service: String) throws -> TracingBackend {
        try #require(
            try Telemetry.tracing(
                defaultServiceName: service,
                environment: [
                    "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                ],
                scheduleDelay: .milliseconds(50)))
    }

    /// Waits (up to `seconds`) until `predicate` holds of the spans received; returns them.
    @discardableResult
    package func wait(
        seconds: Double = 30, for what: String, _ predicate: ([Span]) -> Bool
    ) async throws -> [Span] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let spans = self.received
            if predicate(spans) { return spans }
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = self.received.map(\.description).joined(separator: "\n")
        Issue.record("no \(what) within \(seconds) s; received:\n\(received)")
        return self.received
    }

    /// The spans of an OTLP JSON export (`ExportTraceServiceRequest`). Ids come as hex (the OTLP/JSON rule) or as
    /// base64 (protobuf's JSON mapping of bytes): both are read as hex.
    static func spans(in export: JSONValue) -> [Span] {
        var spans: [Span] = []
        for resource in export["resourceSpans"]?.arrayValue ?? [] {
            let resourceAttributes = Self.attributes(resource["resource"]?["attributes"])
            let service = resourceAttributes["service.name"] ?? "?"
            for scope in resource["scopeSpans"]?.arrayValue ?? [] {
                for span in scope["spans"]?.arrayValue ?? [] {
                    let parent = Self.id(span["parentSpanId"])
                    spans.append(
                        Span(
                            service: service, traceID: Self.id(span["traceId"]) ?? "",
                            spanID: Self.id(span["spanId"]) ?? "",
                            parentSpanID: parent?.isEmpty == false ? parent : nil,
                            name: span["name"]?.stringValue ?? "", kind: Self.kind(span["kind"]),
                            attributes: Self.attributes(span["attributes"]),
                            links: (span["links"]?.arrayValue ?? []).map {
                                (Self.id($0["traceId"]) ?? "", Self.id($0["spanId"]) ?? "")
                            },
                            isError: Self.isError(span["status"]?["code"])))
                }
            }
        }
        return spans
    }

    static func id(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue else { return nil }
        if text.isEmpty { return "" }
        let hexDigits = Set("0123456789abcdef")
        if text.count == 32 || text.count == 16, text.allSatisfy({ hexDigits.contains($0) }) { return text }
        guard let data = Data(base64Encoded: text) else { return text }
        return data.map { String(format: "%02x", $0) }.joined()
    }

    static func kind(_ value: JSONValue?) -> String {
        let names = [1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"]
        if let number = value?.numberValue { return names[Int(number)] ?? "unspecified" }
        let text = value?.stringValue ?? ""
        return text.hasPrefix("SPAN_KIND_") ? String(text.dropFirst(10)).lowercased() : text.lowercased()
    }

    static func isError(_ value: JSONValue?) -> Bool {
        if let number = value?.numberValue { return number == 2 }
        return value?.stringValue == "STATUS_CODE_ERROR"
    }

    static func attributes(_ value: JSONValue?) -> [String: String] {
        var attributes: [String: String] = [:]
        for item in value?.arrayValue ?? [] {
            guard let key = item["key"]?.stringValue, let value = item["value"] else { continue }
            if let text = value["stringValue"]?.stringValue {
                attributes[key] = text
            } else if let bool = value["boolValue"]?.boolValue {
                attributes[key] = bool ? "true" : "false"
            } else if let number = value["intValue"] {
                attributes[key] = number.stringValue ?? number.numberValue.map { String(Int64($0)) } ?? ""
            } else if let number = value["doubleValue"]?.numberValue {
                attributes[key] = String(number)
            }
        }
        return attributes
    }
}

/// Runs `backends`' exporters for `body`, then shuts them down (which sends what they still hold).
package func withExporters<T: Sendable>(
    _ backends: [TracingBackend], _ body: @Sendable () async throws -> T
) async throws -> T {
    let group = ServiceGroup(
        services: backends.map(\.service), gracefulShutdownSignals: [], logger: Logger(label: "test.tracing"))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: T
        do {
            result = try await body()
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}
