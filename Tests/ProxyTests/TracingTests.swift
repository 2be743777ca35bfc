import ContactsService
import Foundation
import Gateway
import HTTPTypes
import HummingbirdTesting
import JSON
import Logging
import Monolith
import NIOConcurrencyHelpers
import Proxy
import ProxyTestSupport
import ServiceKit
import Telemetry
import Testing

/// Spans through every hop, exported over OTLP/HTTP to a test collector: the proxy, the monolith and a service in one
/// trace for one request, and the event that request wrote followed to the service that applied it.
@Suite struct TracingTests {
    static let clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let clientParent = "00f067aa0ba902b7"

    @Test func oneRequestIsOneTraceThroughTheProxyTheMonolithAndTheServiceAndItsEventIsLinked() async throws {
        try await TraceCollector.run { collector in
            let proxyTracing = try collector.backend(service: "strangler")
            let monolithTracing = try collector.backend(service: "monolith")
            let contactsTracing = try collector.backend(service: "contacts")
            try await withExporters([proxyTracing, monolithTracing, contactsTracing]) {
                var configuration = MonolithConfiguration(port: 0, databasePath: nil)
                configuration.tracer = monolithTracing.tracer
                let monolithApp = try await buildMonolithApplication(
                    configuration: configuration, logger: Logger(label: "test.monolith"))
                try await monolithApp.test(.live) { monolith in
                    let monolithPort = try #require(monolith.port)
                    let account = try await monolith.create("/accounts", #"{"name":"Acme"}"#)
                    let service = try await ServiceUnderTest(
                        .contacts, feed: FeedEndpoint(host: "127.0.0.1", port: monolithPort),
                        tracer: contactsTracing.tracer)
                    try await service.consumer.catchUp()
                    try await service.test { contacts in
                        let servicePort = try #require(contacts.port)
                        try await Self.followARequest(
                            collector: collector, proxyTracing: proxyTracing, monolithPort: monolithPort,
                            servicePort: servicePort, account: account, consumer: service.consumer)
                    }
                }
            }
        }
    }

    static func followARequest(
        collector: TraceCollector, proxyTracing: TracingBackend, monolithPort: Int, servicePort: Int, account: String,
        consumer: FeedConsumer
    ) async throws {
        let routes = """
            { "monolith": "http://127.0.0.1:\(monolithPort)", "services": { "contacts": "http://127.0.0.1:\(servicePort)" },
              "routes": [
                { "id": "contacts.create", "method": "POST", "path": "/contacts", "service": "contacts",
                  "stage": "coexist", "shadow": { "sample": 1, "writes": "dry-run" } } ] }
            """
        try await ProxyHarness.run(
            routes: { _, _ in routes }, configure: { $0.tracing = (proxyTracing.tracer, nil) }
        ) { harness in
            let body = #"{"accountId":"\#(account)","firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}"#
            let answer = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n"
                    + "traceparent: 00-\(Self.clientTraceID)-\(Self.clientParent)-01\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)",
                port: harness.proxyPort)
            #expect(answer.text.hasPrefix("HTTP/1.1 201"), "\(answer.text.prefix(300))")
            // The service applies the event the monolith wrote.
            try await consumer.catchUp()

            let trace = Self.clientTraceID
            let spans = try await collector.wait(for: "the request's spans and the consumer's") { spans in
                let inTrace = spans.filter { $0.traceID == trace }
                return inTrace.contains { $0.service == "strangler" && $0.attributes["strangler.shadow"] == "true" }
                    && inTrace.contains { $0.service == "monolith" && $0.kind == "server" }
                    && inTrace.contains { $0.service == "contacts" && $0.kind == "server" }
                    && spans.contains {
                        $0.service == "contacts" && $0.kind == "consumer"
                            && $0.attributes["strangler.event.type"] == "ContactCreated"
                    }
            }
            let inTrace = spans.filter { $0.traceID == trace }
            // The proxy's server span continues the client's trace.
            let server = try #require(inTrace.first { $0.service == "strangler" && $0.kind == "server" })
            #expect(server.parentSpanID == Self.clientParent)
            #expect(server.name == "POST /contacts")
            #expect(server.attributes["http.request.method"] == "POST")
            #expect(server.attributes["http.route"] == "/contacts")
            #expect(server.attributes["http.response.status_code"] == "201")
            #expect(server.attributes["strangler.route"] == "contacts.create")
            #expect(server.attributes["strangler.stage"] == "coexist")
            #expect(server.attributes["strangler.side"] == "monolith")
            // Under it, the answering side's client span and the shadow's, siblings.
            let upstream = try #require(
                inTrace.first {
                    $0.service == "strangler" && $0.kind == "client" && $0.attributes["strangler.shadow"] == nil
                })
            let shadow = try #require(inTrace.first { $0.attributes["strangler.shadow"] == "true" })
            #expect(upstream.parentSpanID == server.spanID)
            #expect(shadow.parentSpanID == server.spanID)
            #expect(upstream.attributes["strangler.instance"] == "http://127.0.0.1:\(monolithPort)")
            #expect(upstream.attributes["http.response.status_code"] == "201")
            #expect(shadow.attributes["strangler.instance"] == "http://127.0.0.1:\(servicePort)")
            #expect(shadow.attributes["strangler.side"] == "service")
            // The service's dry run answers with its own id and times: a mismatch, with its signature.
            #expect(shadow.attributes["strangler.comparison.result"] == "mismatch")
            let signature = try #require(shadow.attributes["strangler.comparison.signature"])
            // The monolith's span hangs under the proxy's span for it, the service's under the shadow's.
            let monolithSpan = try #require(inTrace.first { $0.service == "monolith" && $0.kind == "server" })
            #expect(monolithSpan.parentSpanID == upstream.spanID)
            #expect(monolithSpan.attributes["http.route"] == "/contacts")
            #expect(monolithSpan.attributes["http.response.status_code"] == "201")
            let serviceSpan = try #require(inTrace.first { $0.service == "contacts" && $0.kind == "server" })
            #expect(serviceSpan.parentSpanID == shadow.spanID)
            // The service applied the event in a span of its own, linked to the monolith's request span.
            let consumed = spans.filter { $0.service == "contacts" && $0.kind == "consumer" }
            let applied = try #require(consumed.first { $0.attributes["strangler.event.type"] == "ContactCreated" })
            #expect(applied.links.contains { $0.traceID == trace && $0.spanID == monolithSpan.spanID })
            #expect(applied.name == "process ContactCreated")
            // Every export was JSON, as asked.
            #expect(collector.contentTypes.allSatisfy { $0.hasPrefix("application/json") })

            // The mismatch's sample keeps the trace id.
            await harness.proxy.recorder.flush()
            let samples = try await RawHTTP.get(
                "/admin/diffs/samples?route=contacts.create", port: harness.adminPort,
                headers: ["Authorization: Bearer \(ProxyHarness.token)"])
            let kept = jsonValue(samples.body)["samples"]?.arrayValue ?? []
            #expect(kept.count == 1, "\(samples.body)")
            #expect(kept.first?["traceId"]?.stringValue == trace)
            #expect(kept.first?["signature"]?.stringValue == signature)
        }
    }

    @Test func aMalformedTraceparentStartsANewTraceAndIsNeverForwarded() async throws {
        try await TraceCollector.run { collector in
            let tracing = try collector.backend(service: "strangler")
            try await withExporters([tracing]) {
                try await ProxyHarness.run(configure: { $0.tracing = (tracing.tracer, nil) }) { harness in
                    let malformed = "00-\(Self.clientTraceID)-0000000000000000-01"
                    let answer = try await RawHTTP.get(
                        "/contacts/con_1", port: harness.proxyPort, headers: ["traceparent: \(malformed)"])
                    let forwarded = (jsonValue(answer.body)["headers"]?["traceparent"]?.stringValue) ?? ""
                    #expect(forwarded != malformed)
                    let parts = forwarded.split(separator: "-")
                    #expect(parts.count == 4 && parts[1] != Self.clientTraceID[...], "\(forwarded)")
                    let spans = try await collector.wait(for: "the proxy's spans") { spans in
                        spans.contains { $0.kind == "server" } && spans.contains { $0.kind == "client" }
                    }
                    let server = try #require(spans.first { $0.kind == "server" })
                    let client = try #require(spans.first { $0.kind == "client" })
                    // A new trace: the server span is a root, and the upstream got the client span's id as parent.
                    #expect(server.parentSpanID == nil)
                    #expect(server.traceID != Self.clientTraceID)
                    #expect(forwarded == "00-\(server.traceID)-\(client.spanID)-01")
                    #expect(server.attributes["http.route"] == "/contacts/{id}")
                    #expect(server.attributes["strangler.route"] == "contacts.get")
                }
            }
        }
    }

    @Test func eventsCarryTheTraceparentOfTheRequestThatWroteThemWithTracingOff() async throws {
        let given = "00-\(Self.clientTraceID)-\(Self.clientParent)-01"
        try await withLiveMonolith { monolith, feed in
            let account = try await monolith.create(
                "/accounts", #"{"name":"Acme"}"#)
            var headers = HTTPFields()
            headers[HTTPField.Name("traceparent")!] = given
            let created = try await monolith.answer(
                .post, "/contacts",
                json: #"{"accountId":"\#(account)","firstName":"Ada","lastName":"L","email":"ada@example.com"}"#,
                headers: headers)
            #expect(created.status == 201, "\(created)")
            headers[HTTPField.Name("traceparent")!] = "00-zz-not-a-traceparent"
            let patched = try await monolith.answer(
                .patch, "/accounts/\(account)", json: #"{"name":"Acme Ltd"}"#, headers: headers)
            #expect(patched.status == 200, "\(patched)")
            let events = try await monolith.answer(.get, "/events")
            let items = events.json?["items"]?.arrayValue ?? []
            #expect(
                items.map { $0["type"]?.stringValue ?? "" } == ["AccountCreated", "ContactCreated", "AccountUpdated"])
            // The first had none; a malformed one is never passed on.
            #expect(items.map { $0["traceparent"] ?? .string("missing") } == [.null, .string(given), .null])

            // A service's own feed does the same.
            let service = try await ServiceUnderTest(.contacts, feed: feed)
            try await service.consumer.catchUp()
            try await service.test { contacts in
                var serviceHeaders = HTTPFields()
                serviceHeaders[HTTPField.Name("traceparent")!] = given
                let made = try await contacts.answer(
                    .post, "/contacts",
                    json:
                        #"{"accountId":"\#(account)","firstName":"Grace","lastName":"H","email":"grace@example.com"}"#,
                    headers: serviceHeaders)
                #expect(made.status == 201, "\(made)")
                let own = try await contacts.answer(.get, "/events")
                #expect(own.json?["items"]?.arrayValue?.last?["traceparent"]?.stringValue == given)
            }
        }
    }

    @Test func aShadowSentWithAnotherPathPrefixIsInTheSameTraceAndItsSampleNamesIt() async throws {
        // The service's URL has a prefix the monolith's has not: the shadow's head is written again, not re-addressed.
        let routes: (Int, Int) -> String = { monolith, service in
            """
            { "monolith": "http://127.0.0.1:\(monolith)", "services": { "contacts": "http://127.0.0.1:\(service)/v2" },
              "routes": [ { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts",
                "stage": "coexist", "shadow": { "sample": 1, "timeout": "60s" } } ] }
            """
        }
        try await ProxyHarness.run(routes: routes) { harness in
            let answer = try await RawHTTP.get("/contacts/c1", port: harness.proxyPort)
            #expect(answer.status == 200)
            #expect(await eventually { harness.service.seenRequests.withLockedValue { !$0.isEmpty } })
            let answered = try #require(harness.monolith.seenRequests.withLockedValue { $0.first })
            let shadowed = try #require(harness.service.seenRequests.withLockedValue { $0.first })
            #expect(shadowed.path == "/v2/contacts/c1")
            let traceparent = try #require(answered.headers["traceparent"])
            // One trace (the proxy started it: the client sent none), on both sides and in the sample.
            #expect(shadowed.headers["traceparent"] == traceparent)
            // The pair is handed to the recorder once the shadow's answer is in (after the client's).
            #expect(await eventually { harness.proxy.recorder.shadowsInFlight == 0 })
            await harness.proxy.recorder.flush()
            let samples = try await harness.admin("GET", "/admin/diffs/samples?route=contacts.get")
            let kept = jsonValue(samples.body)["samples"]?.arrayValue ?? []
            #expect(kept.count == 1, "\(samples.body)")
            #expect(kept.first?["traceId"]?.stringValue == String(traceparent.split(separator: "-")[1]))
        }
    }
}
