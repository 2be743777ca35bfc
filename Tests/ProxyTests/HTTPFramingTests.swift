import AdminAPI
import Gateway
import HTTP1
import NIOCore
import ProxyTestSupport
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

@Suite("HTTP/1.1 heads and framing")
struct HTTPFramingTests {
    func parse(_ text: String) throws(HeadError) -> HTTPHead {
        try HTTPHeadParser.parseRequest(ByteBuffer(string: text))
    }

    @Test func absoluteFormIsRoutedByItsPathAndItsAuthorityStandsForHost() throws {
        let head = try self.parse("GET http://crm.example/contacts/1?x=2 HTTP/1.1\r\nHost: other\r\n\r\n")
        #expect(head.string(head.startLine.second) == "/contacts/1?x=2")
        var ids = IDGenerator()
        let (buffer, _) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: "u:1", clientAddress: "c", ids: &ids, allocator: ByteBufferAllocator())
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("GET /contacts/1?x=2 HTTP/1.1\r\n"))
        #expect(text.contains("x-forwarded-host: crm.example\r\n"))
        let bare = try self.parse("GET http://crm.example HTTP/1.1\r\n\r\n")
        let (bareBuffer, _) = HeadRewriter.upstreamRequest(
            bare, upstreamAuthority: "u:1", clientAddress: "c", ids: &ids, allocator: ByteBufferAllocator())
        #expect(String(buffer: bareBuffer).hasPrefix("GET / HTTP/1.1\r\n"))
    }

    @Test func hexDigitsAreTheLowercaseHexOfTheWord() {
        var generator = SystemRandomNumberGenerator()
        let values: [UInt64] = [0, 1, 0xF, 0x10, 0xABCD_EF01_2345_6789, .max] + (0..<500).map { _ in generator.next() }
        for value in values {
            var bytes = [UInt8](repeating: 0, count: 16)
            bytes.withUnsafeMutableBytes { IDGenerator.writeHex(value, into: $0, at: 0) }
            let expected = String(value, radix: 16)
            #expect(
                String(decoding: bytes, as: UTF8.self) == String(repeating: "0", count: 16 - expected.count) + expected)
        }
    }

    @Test func rewritesTheHeadForTheUpstream() throws {
        let head = try self.parse(
            "GET /a?b HTTP/1.1\r\nHost: front\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: "
                + "5\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
        )
        var ids = IDGenerator()
        let (buffer, requestID) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: "127.0.0.1:9", clientAddress: "127.0.0.2", ids: &ids,
            allocator: ByteBufferAllocator())
        let text = String(buffer: buffer)
        #expect(
            text.hasPrefix(
                "GET /a?b HTTP/1.1\r\nAccept: */*\r\nhost: 127.0.0.1:9\r\nx-forwarded-for: 10.0.0.1, 127.0.0.2\r\n"))
        #expect(text.contains("x-forwarded-host: front\r\n"))
        #expect(text.contains("x-request-id: \(requestID)\r\n"))
        #expect(!text.contains("X-Hop") && !text.contains("Keep-Alive") && !text.contains("Connection"))
        #expect(text.hasSuffix("\r\n\r\n"))
        // The rewritten head parses back.
        let reparsed = try HTTPHeadParser.parseRequest(buffer)
        #expect(HeaderRules.isValidTraceparent(reparsed.value(of: "traceparent") ?? ""))
    }

    @Test(arguments: [false, true])
    func aShadowHeadIsTheAnsweringHeadReaddressed(dryRun: Bool) throws {
        // A client that sends its own trace context and a Host-looking field under another name.
        let head = try self.parse(
            "POST /c HTTP/1.1\r\nHost: front\r\nx-host: not-this\r\nContent-Length: 2\r\n"
                + "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n")
        var ids = IDGenerator()
        let (answering, requestID) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: "127.0.0.1:8081", clientAddress: "10.0.0.9", ids: &ids,
            allocator: ByteBufferAllocator())
        let shadow = try #require(
            HeadRewriter.retarget(answering, to: "svc.local:8082", dryRun: dryRun, allocator: ByteBufferAllocator()))
        // What a full rewrite for the other upstream gives, with the same request id.
        let (expected, _) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: "svc.local:8082", clientAddress: "10.0.0.9", ids: &ids,
            allocator: ByteBufferAllocator(), requestID: requestID,
            dryRun: dryRun)
        #expect(String(buffer: shadow) == String(buffer: expected))
        let reparsed = try HTTPHeadParser.parseRequest(shadow)
        #expect(reparsed.value(of: "host") == "svc.local:8082")
        #expect(reparsed.value(of: "x-host") == "not-this")
        #expect(reparsed.value(of: "strangler-dry-run") == (dryRun ? "1" : nil))
        #expect(
            HeadRewriter.retarget(
                ByteBuffer(string: "GET / HTTP/1.1\r\nx-host: a\r\n\r\n"), to: "b", dryRun: false,
                allocator: ByteBufferAllocator()) == nil)
        #expect(
            HeadRewriter.retarget(
                ByteBuffer(string: "GET / HTTP/1.1\r\nhost: a\r\n"), to: "b", dryRun: false,
                allocator: ByteBufferAllocator()) == nil)
        // Offsets are taken from the readable bytes: a head read from further into a buffer.
        var offset = ByteBuffer(string: "JUNK")
        offset.writeImmutableBuffer(answering)
        offset.moveReaderIndex(forwardBy: 4)
        let fromOffset = try #require(
            HeadRewriter.retarget(offset, to: "svc.local:8082", dryRun: dryRun, allocator: ByteBufferAllocator()))
        #expect(String(buffer: fromOffset) == String(buffer: expected))
        let reparsedFromOffset = try HTTPHeadParser.parseRequest(offset)
        #expect(
            reparsedFromOffset.value(of: "x-host") == "not-this"
                && reparsedFromOffset.string(reparsedFromOffset.startLine.second) == "/c")
    }

    @Test func theUpstreamHeadCarriesTheCanonicalPathAndNoInternalField() throws {
        let head = try self.parse(
            "GET //r/./ID/?q=%2F..&x=// HTTP/1.1\r\nHost: front\r\nStrangler-Route: r\r\nAccept: "
                + "*/*\r\nstrangler-x: 2\r\n\r\n"
        )
        var ids = IDGenerator()
        let rewrite = HeadRewriter.PathRewrite(bytes: Array("/r/ID".utf8), replacing: "//r/./ID/".utf8.count)
        let (buffer, _) = HeadRewriter.upstreamRequest(
            head, upstreamAuthority: "u:1", clientAddress: "c", ids: &ids, allocator: ByteBufferAllocator(),
            path: rewrite)
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("GET /r/ID?q=%2F..&x=// HTTP/1.1\r\nAccept: */*\r\nhost: u:1\r\n"), "\(text)")
        #expect(!text.lowercased().contains("strangler-"))
        // The shadow copy is that head re-addressed: the same path; a dry run adds the proxy's own field.
        let shadow = try #require(
            HeadRewriter.retarget(buffer, to: "s:2", dryRun: true, allocator: ByteBufferAllocator()))
        let reparsed = try HTTPHeadParser.parseRequest(shadow)
        #expect(reparsed.string(reparsed.startLine.second) == "/r/ID?q=%2F..&x=//")
        #expect(reparsed.value(of: "strangler-dry-run") == "1" && reparsed.value(of: "strangler-route") == nil)
    }
}
