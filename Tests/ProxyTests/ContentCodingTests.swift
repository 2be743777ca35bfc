import CompressNIO
import DiffStore
import Foundation
import JSON
import Logging
import NIOCore
import ProxyTestSupport
import RouteTable
import Testing

@testable import Gateway
@testable import Proxy

/// Answers are compared as content: gzip or deflate on one side, plain on the other, match when what is inside does.
@Suite("Shadow comparison: encoded bodies are decoded first")
struct ContentCodingTests {
    static func answer(_ json: String, encoding: String? = nil) -> RawAnswer {
        var body = Array(json.utf8)
        if let encoding {
            var buffer = ByteBuffer(bytes: body)
            let algorithm: CompressionAlgorithm = encoding == "gzip" ? .gzip() : .zlib()
            body = Array((try! buffer.compress(with: algorithm)).readableBytesView)
        }
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + (encoding.map { "Content-Encoding: \($0)\r\n" } ?? "") + "Content-Length: \(body.count)\r\n\r\n"
        return RawAnswer(status: 200, head: Array(head.utf8), body: body)
    }

    static func observation(_ monolith: RawAnswer, _ service: RawAnswer, ignore: [String] = []) -> ShadowObservation {
        var policy = ShadowPolicy()
        policy.ignore = ignore
        return ShadowObservation(
            route: "orders.get", policy: policy, servedBy: .monolith, requestID: "r1", method: "GET",
            path: "/orders/1", query: nil,
            requestHead: Array("GET /orders/1 HTTP/1.1\r\nHost: p\r\n\r\n".utf8), requestBody: [], monolith: monolith,
            service: service, repeated: nil)
    }

    /// Records `observations` and returns the route's counters and signatures as the store has them.
    static func recorded(_ observations: [ShadowObservation]) async throws -> JSONValue {
        let store = try DiffStore.open(path: nil)
        let recorder = ShadowRecorder(store: store, interval: .seconds(3600), logger: Logger(label: "test"))
        try await ShadowRecorderTests.running(recorder) {
            for observation in observations { recorder.submit(observation) }
        }
        return try #require(try store.summary(route: "orders.get")["routes"]?.arrayValue?.first)
    }

    @Test func gzipOnOneSideOnlyMatches() async throws {
        let plain = #"{"id":"o1","total":12,"items":[{"sku":"a"}]}"#
        let route = try await Self.recorded([
            Self.observation(Self.answer(plain), Self.answer(plain, encoding: "gzip")),
            Self.observation(Self.answer(plain, encoding: "deflate"), Self.answer(plain, encoding: "gzip")),
        ])
        #expect(route["compared"]?.numberValue == 2)
        #expect(route["matched"]?.numberValue == 2, "\(route.jsonText)")
    }

    @Test func differencesInsideAGzipBodyAreJSONDifferencesAndIgnoreRulesApply() async throws {
        let monolith = Self.answer(#"{"id":"o1","total":12,"updatedAt":"a"}"#)
        let service = Self.answer(#"{"id":"o1","total":13,"updatedAt":"b"}"#, encoding: "gzip")
        let route = try await Self.recorded([Self.observation(monolith, service, ignore: ["/updatedAt"])])
        #expect(route["mismatched"]?.numberValue == 1)
        let texts = (route["signatures"]?.arrayValue ?? []).compactMap { $0["signature"]?.stringValue }
        #expect(texts == ["/total changed"], "\(route.jsonText)")
    }

    @Test func whatDoesNotDecodeIsComparedAsItCame() {
        var broken = Self.answer(#"{"a":1}"#, encoding: "gzip")
        broken.body = Array(broken.body.prefix(5))
        #expect(ContentCoding.decoded(broken) == nil)
        var cut = Self.answer(#"{"a":1,"b":"a longer value to compress"}"#, encoding: "deflate")
        cut.body.removeLast(3)
        #expect(ContentCoding.decoded(cut) == nil)
        #expect(ContentCoding.decoded(Self.answer(#"{"a":1}"#)) == nil)
        let brotli = RawAnswer(
            status: 200, head: Array("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n".utf8), body: [1, 2, 3])
        #expect(ContentCoding.decoded(brotli) == nil)
        let decoded = ContentCoding.decoded(Self.answer(#"{"a":1}"#, encoding: "gzip"))
        #expect(decoded.map { String(decoding: $0.body, as: UTF8.self) } == #"{"a":1}"#)
        #expect(decoded?.fields.contains { $0.name.lowercased() == "content-encoding" } == false)
    }
}
