public import HTTPTypes
public import Hummingbird
public import Tracing

/// The trace context of the request being handled: the `traceparent` that the outbox rows its transaction writes
/// carry (the monolith's own span's with tracing on, else the one the request came with, when valid).
public enum RequestTrace {
    @TaskLocal public static var traceparent: String?

    /// `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zeros (W3C Trace Context, version 00).
    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[0] == 0x30, bytes[1] == 0x30, bytes[2] == 0x2D, bytes[35] == 0x2D,
            bytes[52] == 0x2D
        else { return false }
        for (index, byte) in bytes.enumerated() where ![2, 35, 52].contains(index) {
            guard (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) else { return false }
        }
        return !bytes[3..<35].allSatisfy { $0 == 0x30 } && !bytes[36..<52].allSatisfy { $0 == 0x30 }
    }
}

/// Continues the caller's trace (W3C `traceparent`/`tracestate`): with a tracer, a server span per request, named
/// `METHOD /route/{param}` with OpenTelemetry's HTTP attributes; without one, the request's valid `traceparent` is
/// still what its events carry.
public struct RequestTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    let tracer: (any Tracer)?

    public init(tracer: (any Tracer)?) {
        self.tracer = tracer
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let tracer else {
            let sent = request.headers[HTTPField.Name.traceparent].flatMap { RequestTrace.isValid($0) ? $0 : nil }
            return try await RequestTrace.$traceparent.withValue(sent) { try await next(request, context) }
        }
        var parent = ServiceContext.topLevel
        tracer.extract(request.headers, into: &parent, using: FieldsExtractor())
        let method = request.method.rawValue
        let span = tracer.startSpan(method, context: parent, ofKind: .server)
        span.updateAttributes { attributes in
            attributes.set("http.request.method", value: .string(method))
            attributes.set("url.path", value: .string(request.uri.path))
            if let query = request.uri.query, !query.isEmpty { attributes.set("url.query", value: .string(query)) }
            if let agent = request.headers[.userAgent] {
                attributes.set("user_agent.original", value: .string(agent))
            }
        }
        var carrier = HTTPFields()
        tracer.inject(span.context, into: &carrier, using: FieldsInjector())
        do {
            let response = try await ServiceContext.$current.withValue(span.context) {
                try await RequestTrace.$traceparent.withValue(carrier[HTTPField.Name.traceparent]) {
                    try await next(request, context)
                }
            }
            Self.ended(span, route: context.endpointPath, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            Self.ended(span, route: context.endpointPath, status: error.status.code)
            throw error
        } catch {
            Self.ended(span, route: context.endpointPath, status: 500)
            throw error
        }
    }

    private static func ended(_ span: any Span, route: String?, status: Int) {
        span.updateAttributes { attributes in
            if let route {
                attributes.set("http.route", value: .string(route))
            }
            attributes.set("http.response.status_code", value: .int(Int64(status)))
            if status >= 500 { attributes.set("error.type", value: .string("\(status)")) }
        }
        if let route { span.operationName = "\(span.operationName) \(route)" }
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }
}

extension HTTPField.Name {
    public static let traceparent = Self("traceparent")!
}

public struct FieldsExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

public struct FieldsInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout HTTPFields) {
        if let name = HTTPField.Name(key) { carrier[name] = value }
    }
}

/// A consumer span for one event applied from an outbox feed (OpenTelemetry's messaging conventions: a `process`
/// span named `process <type>`), **linked** to the span of the request whose transaction wrote the event (its
/// `traceparent`): the event is applied later, in a trace of its own.
public enum ConsumerSpan {
    public static func start(
        _ tracer: any Tracer, eventType: String, eventID: Int64, aggregate: String, feed: String,
        traceparent: String?, consumer: String? = nil
    ) -> any Span {
        let span = tracer.startSpan("process \(eventType)", context: ServiceContext.topLevel, ofKind: .consumer)
        span.updateAttributes { attributes in
            attributes.set("messaging.system", value: .string("strangler.outbox"))
            attributes.set("messaging.operation.type", value: .string("process"))
            attributes.set("messaging.destination.name", value: .string(feed))
            attributes.set("messaging.message.id", value: .string("\(eventID)"))
            if let consumer { attributes.set("messaging.consumer.group.name", value: .string(consumer)) }
            attributes.set("strangler.event.type", value: .string(eventType))
            attributes.set("strangler.event.aggregate", value: .string(aggregate))
        }
        if let traceparent {
            var fields = HTTPFields()
            fields[.traceparent] = traceparent
            var linked = ServiceContext.topLevel
            tracer.extract(fields, into: &linked, using: FieldsExtractor())
            span.addLink(SpanLink(context: linked, attributes: [:]))
        }
        return span
    }

    /// Runs `body` in `span` (nil: just runs it), recording a failure, and ends it.
    public static func around<T>(_ span: (any Span)?, _ body: () throws -> T) rethrows -> T {
        guard let span else { return try body() }
        do {
            let result = try body()
            span.end()
            return result
        } catch {
            Self.failed(span, error)
            throw error
        }
    }

    private static func failed(_ span: any Span, _ error: any Error) {
        span.recordError(error)
        span.setStatus(SpanStatus(code: .error))
        span.end()
    }

    /// The same for an asynchronous `body`.
    public static func around<T>(_ span: (any Span)?, _ body: () async throws -> T) async rethrows -> T {
        guard let span else { return try await body() }
        do {
            let result = try await body()
            span.end()
            return result
        } catch {
            Self.failed(span, error)
            throw error
        }
    }
}
