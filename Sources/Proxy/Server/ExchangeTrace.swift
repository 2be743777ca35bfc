import HTTP1
import RouteTable
public import Tracing

/// A forwarded exchange's spans, made only with tracing on (`ProxyConfiguration.tracing`): the proxy's server span for
/// the client's request (a child of the client's `traceparent` when it sent a valid one, else a new trace), and under
/// it one client span per request the proxy sends: the answering side's and, for a shadowed request, the shadow's, its
/// sibling. Each upstream gets the `traceparent` of its own span, so the monolith's and the service's spans hang under
/// the proxy's. docs/observability.md lists the attributes.
final class ExchangeTrace {
    let tracer: any Tracer
    let server: any Span
    let upstream: any Span
    /// The answering side's span as trace fields, written into its head in place of the client's (nil: the tracer
    /// gave none, and the head gets the client's or a new one, as without tracing).
    let forwarded: TraceFields?

    struct TraceFields {
        /// Always 55 characters (version 00), so that a shadow's head can take another span's in place.
        var traceparent: String
        var tracestate: String?
    }

    private init(tracer: any Tracer, server: any Span, upstream: any Span, forwarded: TraceFields?) {
        self.tracer = tracer
        self.server = server
        self.upstream = upstream
        self.forwarded = forwarded
    }

    /// Starts the spans of an exchange answered by `upstream` (an instance of the monolith's group when
    /// `byMonolith`).
    static func begin(
        _ tracer: any Tracer, head: HTTPHead, method: String, route: Route?, upstream: Upstream, byMonolith: Bool,
        path: @autoclosure () -> String, query: @autoclosure () -> String?, clientAddress: String, secure: Bool
    ) -> ExchangeTrace {
        var context = ServiceContext.topLevel
        if let sent = head.value(of: "traceparent"), let traceparent = HeaderRules.traceparent(sent) {
            let states = head.fields.compactMap { field -> String? in
                let name = head.string(field.name)
                return name.utf8.count == 10 && name.lowercased() == "tracestate" ? head.string(field.value) : nil
            }
            let carrier = TraceCarrier(
                traceparent: traceparent, tracestate: states.isEmpty ? nil : HeaderRules.tracestate(states))
            tracer.extract(carrier, into: &context, using: TraceCarrier.Extract())
        }
        let name = route.map { "\(method) \($0.path.description)" } ?? method
        let server = tracer.startSpan(name, context: context, ofKind: .server)
        let side = byMonolith ? "monolith" : "service"
        let client = Self.clientSpan(
            tracer, parent: server, method: method, route: route, upstream: upstream, side: side, shadow: false)
        let trace = ExchangeTrace(
            tracer: tracer, server: server, upstream: client, forwarded: Self.fields(of: client, tracer))
        // A span the sampler dropped records nothing: its attributes are not even made.
        guard server.isRecording else { return trace }
        var attributes = SpanAttributes()
        attributes.set("http.request.method", value: .string(method))
        // The path and query are made only for a span the sampler kept.
        attributes.set("url.path", value: .string(path()))
        if let query = query() { attributes.set("url.query", value: .string(query)) }
        attributes.set("url.scheme", value: .string(secure ? "https" : "http"))
        if let route {
            attributes.set("http.route", value: .string(route.path.description))
            attributes.set("strangler.route", value: .string(route.id))
            attributes.set("strangler.stage", value: .string(route.stage.rawValue))
        }
        attributes.set("client.address", value: .string(clientAddress))
        attributes.set("network.protocol.version", value: .string(head.versionMinor == 0 ? "1.0" : "1.1"))
        if let agent = head.value(of: "user-agent") { attributes.set("user_agent.original", value: .string(agent)) }
        attributes.set("strangler.side", value: .string(side))
        server.updateAttributes { $0.merge(attributes) }
        return trace
    }

    /// A client span under `parent` for a request to `upstream`.
    private static func clientSpan(
        _ tracer: any Tracer, parent: any Span, method: String, route: Route?, upstream: Upstream, side: String,
        shadow: Bool
    ) -> any Span {
        let span = tracer.startSpan(method, context: parent.context, ofKind: .client)
        guard span.isRecording else { return span }
        span.updateAttributes { attributes in
            attributes.set("http.request.method", value: .string(method))
            attributes.set("server.address", value: .string(upstream.host))
            attributes.set("server.port", value: .int(Int64(upstream.port)))
            attributes.set("strangler.instance", value: .string(upstream.url))
            attributes.set("strangler.side", value: .string(side))
            if let route {
                attributes.set("strangler.route", value: .string(route.id))
                attributes.set("strangler.stage", value: .string(route.stage.rawValue))
            }
            if shadow { attributes.set("strangler.shadow", value: .bool(true)) }
        }
        return span
    }

    private static func fields(of span: any Span, _ tracer: any Tracer) -> TraceFields? {
        var carrier = TraceCarrier()
        tracer.inject(span.context, into: &carrier, using: TraceCarrier.Inject())
        guard let traceparent = carrier.traceparent, traceparent.utf8.count == 55,
            HeaderRules.isValidTraceparent(traceparent)
        else { return nil }
        return TraceFields(traceparent: traceparent, tracestate: carrier.tracestate)
    }

    /// The shadow's span (a sibling of the answering side's, `strangler.shadow=true`) and the trace fields its head
    /// carries.
    func shadow(to upstream: Upstream, method: String, route: Route, byMonolith: Bool) -> (any Span, TraceFields?) {
        let span = Self.clientSpan(
            self.tracer, parent: self.server, method: method, route: route, upstream: upstream,
            side: byMonolith ? "monolith" : "service", shadow: true)
        return (span, Self.fields(of: span, self.tracer))
    }

    /// The exchange ended: `status` is the upstream's answer (nil: it gave none, and `failure` says why).
    func end(status: UInt?, failure: String?) {
        guard self.server.isRecording else {
            self.upstream.end()
            self.server.end()
            return
        }
        if let status {
            let code = Int64(status)
            self.upstream.updateAttributes { $0.set("http.response.status_code", value: .int(code)) }
            self.server.updateAttributes { $0.set("http.response.status_code", value: .int(code)) }
            // OpenTelemetry's HTTP conventions: a 5xx is an error of both spans; a 4xx of the client span only.
            if status >= 500 {
                self.server.updateAttributes { $0.set("error.type", value: .string("\(status)")) }
                self.server.setStatus(SpanStatus(code: .error))
            }
            if status >= 400 {
                self.upstream.updateAttributes { $0.set("error.type", value: .string("\(status)")) }
                self.upstream.setStatus(SpanStatus(code: .error))
            }
        } else {
            let why = failure ?? "the exchange ended before the upstream answered"
            for span in [self.upstream, self.server] {
                span.updateAttributes { $0.set("error.type", value: .string(failure == nil ? "aborted" : "upstream")) }
                span.setStatus(SpanStatus(code: .error, message: why))
            }
        }
        self.upstream.end()
        self.server.end()
    }
}

/// The two W3C Trace Context fields, as a carrier for a tracer's `extract` and `inject`.
struct TraceCarrier {
    var traceparent: String?
    var tracestate: String?

    struct Extract: Extractor {
        func extract(key: String, from carrier: TraceCarrier) -> String? {
            switch key {
            case "traceparent": carrier.traceparent
            case "tracestate": carrier.tracestate
            default: nil
            }
        }
    }

    struct Inject: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout TraceCarrier) {
            switch key {
            case "traceparent": carrier.traceparent = value
            case "tracestate": carrier.tracestate = value
            default: break
            }
        }
    }
}

/// How a shadow ended, on its span (`strangler.comparison.result`): `match`, `mismatch` (with
/// `strangler.comparison.signature`), or why it was not compared.
public enum ShadowSpanResult {
    /// Sets the comparison's outcome on a shadow's span and ends it.
    public static func end(_ span: (any Span)?, result: String, signature: String? = nil, status: Int? = nil) {
        guard let span else { return }
        guard span.isRecording else { return span.end() }
        span.updateAttributes { attributes in
            attributes.set("strangler.comparison.result", value: .string(result))
            if let signature { attributes.set("strangler.comparison.signature", value: .string(signature)) }
            if let status { attributes.set("http.response.status_code", value: .int(Int64(status))) }
        }
        if result == "shadow-error" || result == "timeout" {
            span.setStatus(SpanStatus(code: .error, message: result))
        }
        span.end()
    }
}
