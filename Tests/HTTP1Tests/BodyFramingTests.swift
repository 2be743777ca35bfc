import HTTP1
import NIOCore
import Testing

@Suite("Body framing and response heads across reads")
struct BodyFramingTests {
    func response(_ text: String) throws -> HTTPHead {
        try HTTPHeadParser.parseResponse(ByteBuffer(string: text))
    }

    func request(_ text: String) throws -> HTTPHead {
        try HTTPHeadParser.parseRequest(ByteBuffer(string: text))
    }

    @Test func aResponseIsFramedByItsLengthItsChunksOrTheClose() throws {
        guard
            case .length(5) = BodyFraming.response(
                try self.response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), toHEAD: false)
        else {
            Issue.record("length")
            return
        }
        guard
            case .chunked = BodyFraming.response(
                try self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), toHEAD: false)
        else {
            Issue.record("chunked")
            return
        }
        guard case .untilClose = BodyFraming.response(try self.response("HTTP/1.1 200 OK\r\n\r\n"), toHEAD: false)
        else {
            Issue.record("until close")
            return
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true), ("HTTP/1.1 204 No Content\r\n\r\n", false),
        ("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true),
    ])
    func headAnswers204sAnd304sHaveNoBody(text: String, toHEAD: Bool) throws {
        let framing = BodyFraming.response(try self.response(text), toHEAD: toHEAD)
        guard case .length(0) = framing else {
            Issue.record("\(text): \(framing)")
            return
        }
        #expect(framing.isComplete)
    }

    @Test func aRequestHasABodyOnlyWithALengthOrChunks() throws {
        #expect(BodyFraming.request(try self.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == nil)
        #expect(BodyFraming.request(try self.request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")) == nil)
        guard
            case .length(3) = BodyFraming.request(
                try self.request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"))
        else {
            Issue.record("length")
            return
        }
        let chunked = BodyFraming.request(
            try self.request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
        guard case .chunked = chunked else {
            Issue.record("chunked")
            return
        }
        #expect(chunked?.isComplete == false)
    }

    @Test func readsAHeadAcrossReadsAndLeavesTheBody() {
        var reader = ResponseHeadReader()
        var first = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Le")
        guard case .needMore = reader.read(&first) else {
            Issue.record("needMore")
            return
        }
        var second = ByteBuffer(string: "ngth: 2\r\n\r\nok")
        guard case .final(let head) = reader.read(&second) else {
            Issue.record("final")
            return
        }
        #expect(head.statusCode == 200 && head.contentLength == 2)
        #expect(String(buffer: second) == "ok")
    }

    @Test func interimHeadsComeApartAndA101IsRefused() {
        var reader = ResponseHeadReader()
        var bytes = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        guard case .interim(let interim) = reader.read(&bytes) else {
            Issue.record("interim")
            return
        }
        #expect(interim.statusCode == 100)
        guard case .final(let final) = reader.read(&bytes) else {
            Issue.record("final")
            return
        }
        #expect(final.statusCode == 200 && bytes.readableBytes == 0)
        var upgrade = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\n\r\n")
        guard case .broken(let reason) = reader.read(&upgrade) else {
            Issue.record("101")
            return
        }
        #expect(reason == "switched protocols (101) though no upgrade was asked for")
    }

    @Test func aMalformedOrHugeHeadIsBroken() {
        var reader = ResponseHeadReader()
        var malformed = ByteBuffer(string: "HTTP/1.1 2000 OK\r\n\r\n")
        guard case .broken(let reason) = reader.read(&malformed) else {
            Issue.record("malformed")
            return
        }
        #expect(reason == "sent a malformed response (an invalid status code)")
        var huge = ByteBuffer(
            string: "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: ResponseHeadReader.maxHeadBytes))
        guard case .broken(let tooLarge) = reader.read(&huge) else {
            Issue.record("huge")
            return
        }
        #expect(tooLarge == "sent a response head larger than 1 MiB")
    }
}
