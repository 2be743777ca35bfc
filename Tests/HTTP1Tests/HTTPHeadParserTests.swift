import HTTP1
import NIOCore
import Testing

/// Feeds `bytes` to `tracker`; returns how many it took, and appends chunk data to `data`.
func feed(_ tracker: inout ChunkedTracker, _ bytes: [UInt8], data: inout [UInt8]) throws -> Int {
    var ranges: [Range<Int>] = []
    let consumed = try bytes.withUnsafeBytes { raw in
        try tracker.consume(raw) { ranges.append($0) }
    }
    for range in ranges { data.append(contentsOf: bytes[range]) }
    return consumed
}

/// The strict parser, chunked tracking and framing: pure, no sockets (moved from the proxy's framing tests).
@Suite("HTTP/1.1 heads, framing and chunked bodies")
struct HTTPHeadParserTests {
    func parse(_ text: String) throws(HeadError) -> HTTPHead {
        try HTTPHeadParser.parseRequest(ByteBuffer(string: text))
    }

    @Test func parsesARequestHead() throws {
        let head = try self.parse(
            "POST /contacts?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Empty:\r\nX-Spaced:   v  \r\n\r\n")
        #expect(head.string(head.startLine.first) == "POST")
        #expect(head.string(head.startLine.second) == "/contacts?x=1")
        #expect(head.versionMinor == 1)
        #expect(head.contentLength == 12)
        #expect(!head.chunked)
        #expect(head.isKeepAlive)
        #expect(head.value(of: "x-spaced") == "v")
        #expect(head.value(of: "x-empty") == "")
        #expect(head.fields.count == 4)
    }

    @Test func responseHeadsNeedAThreeDigitStatus() {
        #expect(throws: HeadError.self) {
            try HTTPHeadParser.parseResponse(ByteBuffer(string: "HTTP/1.1 2000 OK\r\n\r\n"))
        }
        #expect(throws: Never.self) { try HTTPHeadParser.parseResponse(ByteBuffer(string: "HTTP/1.1 204\r\n\r\n")) }
    }

    @Test func keepAliveFollowsTheVersionAndConnection() throws {
        #expect(try !self.parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").isKeepAlive)
        #expect(try !self.parse("GET / HTTP/1.0\r\n\r\n").isKeepAlive)
        #expect(try self.parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").isKeepAlive)
        let named = try self.parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\n\r\n")
        #expect(named.hasClose && !named.hasKeepAlive)
        #expect(named.connectionNamedFields == ["x-secret"])
        #expect(named.connectionNamesFields)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/2.0\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: b\u{7F}\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: b\rc\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ])
    func refusesAmbiguousOrMalformedHeads(text: String) {
        #expect(throws: HeadError.self) { try self.parse(text) }
    }

    /// The reason names the line's defect (the client's 400 says it).
    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "a header line without ':'"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", "an invalid header name"),
        ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", "an invalid header name"),
        ("GET / HTTP/1.1\r\nHost: a\r\nA: b\u{01}\r\n\r\n", "a control character in a header value"),
        ("GET / HTTP/1.1\r\nHost: a\r\nA: b\nB: c\r\n\r\n", "a bare LF in the head (lines end with CRLF)"),
        ("GET / HTTP/1.1\r\nHost: a\r\nAB\nC: d\r\n\r\n", "a bare LF in the head (lines end with CRLF)"),
        ("GET / HTTP/1.1\r\nHost: a\r\nA: b\rc\r\n\r\n", "a bare CR in the head"),
        ("GET / HTTP/1.1\r\nHost: a\r\nA\rB: c\r\n\r\n", "a bare CR in the head"),
        ("GET / HTTP/1.1\r\nHost: a\r\n\r", "a bare CR in the head"),
        ("GET / HTTP/1.1\r\nHost: a\r\n b: c\r\n\r\n", "obsolete line folding"),
        ("GET / HTTP/1.1\r\nHost: a\r\nA: b", "an unterminated line"),
        ("GET / HTTP/1.1\r\nHost: a\r\nAb", "an unterminated line"),
    ])
    func saysWhatIsWrongWithAFieldLine(text: String, reason: String) {
        #expect {
            _ = try self.parse(text)
        } throws: { error in
            (error as? HeadError)?.reason == reason
        }
    }

    /// Field names and methods are RFC 9110 tokens, exactly.
    @Test func tokenBytesAreTheRFCsTchars() {
        let tchars = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPHeadParser.isTokenByte(byte) == tchars.contains(byte), "byte \(byte)")
        }
    }

    @Test func findsTheEndOfAHeadAcrossReads() {
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r")
        #expect(HTTPHeadParser.headLength(in: buffer, searchFrom: 0) == nil)
        buffer.writeString("\nnext")
        #expect(HTTPHeadParser.headLength(in: buffer, searchFrom: buffer.readableBytes - 5) == buffer.readableBytes - 4)
    }

    /// The search skips ahead where no terminator can start: it must still find the first one, from any start.
    @Test func findsTheFirstTerminatorLikeANaiveSearch() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, UInt8(ascii: "a"), UInt8(ascii: ":"), UInt8(ascii: " ")]
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            let buffer = ByteBuffer(bytes: bytes)
            for searchFrom in 0...bytes.count {
                var expected: Int?
                var index = max(0, searchFrom - 3)
                while index + 3 < bytes.count {
                    if bytes[index..<(index + 4)].elementsEqual([0x0D, 0x0A, 0x0D, 0x0A]) {
                        expected = index + 4
                        break
                    }
                    index += 1
                }
                #expect(
                    HTTPHeadParser.headLength(in: buffer, searchFrom: searchFrom) == expected,
                    "\(bytes) from \(searchFrom)")
            }
        }
    }

    /// A chunked body fed one byte at a time ends exactly at its last byte, yields its data, and leaves what
    /// follows for the next message.
    @Test func followsChunkedFramingAcrossEveryReadBoundary() throws {
        let body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
        let next = "GET /next HTTP/1.1\r\n"
        let bytes = Array((body + next).utf8)
        var tracker = ChunkedTracker()
        var data: [UInt8] = []
        var consumedTotal = 0
        for byte in bytes where !tracker.isDone {
            consumedTotal += try feed(&tracker, [byte], data: &data)
        }
        #expect(tracker.isDone)
        #expect(consumedTotal == body.utf8.count)
        #expect(String(decoding: data, as: UTF8.self) == "hello, world")

        var whole = ChunkedTracker()
        var ignored: [UInt8] = []
        let consumed = try feed(&whole, bytes, data: &ignored)
        #expect(consumed == body.utf8.count && whole.isDone)
    }

    @Test(arguments: [
        "x\r\n", "5\r\nhelloXX\r\n", "5\nhello", "5\r\nhello\r\n0\r\nbad\n", "5 xyz\r\nhello\r\n",
        "0\r\nNoColon\r\n\r\n",
        "0\r\n Folded: x\r\n\r\n", "0\r\nA: \u{00}\r\n\r\n",
    ])
    func refusesMalformedChunks(text: String) {
        var tracker = ChunkedTracker()
        var data: [UInt8] = []
        #expect(throws: HeadError.self) { _ = try feed(&tracker, Array(text.utf8), data: &data) }
    }

    @Test func theParserFlagsInternalFieldsAndExpectContinue() throws {
        let plain = try self.parse(
            "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nStranglers: 1\r\nX-Strangler-Actor: b\r\nServer-Timing: "
                + "c\r\n\r\n"
        )
        #expect(!plain.hasInternalFields && !plain.hasDryRunField && !plain.expectsContinue)
        let foo = try self.parse("GET / HTTP/1.1\r\nHost: a\r\nSTRANGLER-Foo: 1\r\n\r\n")
        #expect(foo.hasInternalFields && !foo.hasDryRunField)
        let bare = try self.parse("GET / HTTP/1.1\r\nHost: a\r\nstrangler-: 1\r\n\r\n")
        #expect(bare.hasInternalFields)
        let dryRun = try self.parse(
            "POST / HTTP/1.1\r\nHost: a\r\nStrangler-Dry-Run: 1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
        #expect(dryRun.hasInternalFields && dryRun.hasDryRunField && dryRun.expectsContinue)
    }

    /// Field names are read by a table and values eight bytes at a time: every byte value, at every place of a word and
    /// of the tail after the last whole word, is taken or refused exactly as RFC 9110 says.
    @Test func everyByteValueIsJudgedAlikeWhereverItFallsInANameOrAValue() throws {
        for byte in 0...255 {
            let value = UInt8(byte)
            for place in 0..<21 {
                var name = Array("X-Field-Name-Long-21c".utf8)
                name[place] = value
                var line = Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8) + name + Array(": v\r\n\r\n".utf8)
                let nameIsToken = HTTPHeadParser.isTokenByte(value) || (value == 0x3A && place > 0)
                let named = try? HTTPHeadParser.parseRequest(ByteBuffer(bytes: line))
                #expect((named != nil) == nameIsToken, "name byte \(byte) at \(place)")
                var text = Array("value-of-twenty-one!".utf8) + [0x21]
                text[place] = value
                line = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Value: ".utf8) + text + Array("\r\n\r\n".utf8)
                let allowed = !(value < 0x20 && value != 0x09) && value != 0x7F
                let parsed = try? HTTPHeadParser.parseRequest(ByteBuffer(bytes: line))
                #expect((parsed != nil) == allowed, "value byte \(byte) at \(place)")
                if let parsed, let field = parsed.fields.last {
                    // Tabs and spaces at either end are trimmed; inside, the value is kept as sent.
                    let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
                    let trimmed = text.drop(while: blank).reversed().drop(while: blank).reversed()
                    #expect(Array(parsed.bytes.readableBytesView[field.value]) == Array(trimmed), "\(byte) at \(place)")
                }
            }
        }
    }
}
