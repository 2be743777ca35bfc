import Testing

@testable import JSON

@Suite("JSON parser")
struct JSONParserTests {
    @Test func parsesAndKeepsKeyOrder() throws {
        let value = try JSONParser.parse(#"{"b":1,"a":[true,null,"\u00e9\ud83d\ude00",-1.5e2]}"#)
        #expect(value.objectValue?.map(\.key) == ["b", "a"])
        #expect(value["a"]?.arrayValue?[2] == .string("é😀"))
        #expect(value["a"]?.arrayValue?[3] == .number(-150))
        #expect(value.jsonText == #"{"b":1,"a":[true,null,"é😀",-150]}"#)
    }

    @Test(arguments: [
        ("", "empty"), ("{", "end"), (#"{"a":1,}"#, "key"), ("[1,]", "unexpected"), ("01", "start with 0"),
        (#"{"a":1,"a":2}"#, "duplicate key"),
        ("1e999", "too large"), ("\"\u{01}\"", "control character"), (#""\ud800""#, "surrogate"),
        ("[1] x", "after the JSON value"),
    ])
    func refusesWithAReason(text: String, fragment: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
        do {
            _ = try JSONParser.parse(text)
        } catch {
            #expect(error.reason.contains(fragment), "\(text): \(error)")
        }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }
}

@Suite("JSON parser: positions, limits, numbers and escapes")
struct JSONParserDetailTests {
    /// The error `text` is refused with (the test fails if it is accepted).
    static func refusal(_ text: String, maxDepth: Int = JSONParser.defaultMaxDepth) -> JSONParseError? {
        self.refusal(Array(text.utf8), maxDepth: maxDepth)
    }

    static func refusal(_ bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) -> JSONParseError? {
        do {
            let value = try JSONParser.parse(bytes, maxDepth: maxDepth)
            Issue.record("accepted \(String(decoding: bytes, as: UTF8.self)) as \(value)")
            return nil
        } catch {
            return error
        }
    }

    @Test func refusalsSayWhereWithOffsetLineAndColumn() throws {
        let missingColon = try #require(Self.refusal("{\n  \"a\": 1,\n  \"b\" 2\n}"))
        #expect(missingColon == JSONParseError(reason: "expected ':' after a key", offset: 18, line: 3, column: 7))
        #expect(missingColon.description == "line 3, column 7: expected ':' after a key")
        // A duplicate key is pointed at where the second one starts.
        let duplicate = try #require(Self.refusal(#"{"a":1,"a":2}"#))
        #expect(duplicate.offset == 7 && duplicate.column == 8 && duplicate.reason == #"duplicate key "a""#)
        // A truncated document ends where the text does; an unterminated string at its opening quote.
        #expect(
            Self.refusal("[1, 2")
                == JSONParseError(reason: "unexpected end of the document", offset: 5, line: 1, column: 6))
        #expect(
            Self.refusal("\n\"abc") == JSONParseError(reason: "unterminated string", offset: 1, line: 2, column: 1))
        // Invalid UTF-8 is pointed at the string that holds it.
        let bytes = Array(#"["ok", ""#.utf8) + [0xFF] + Array(#""]"#.utf8)
        #expect(
            Self.refusal(bytes) == JSONParseError(reason: "invalid UTF-8 in a string", offset: 8, line: 1, column: 9))
        #expect(Self.refusal("   ")?.reason == "the document is empty")
        #expect(Self.refusal("[1 2]")?.reason == "expected ',' or ']' in an array")
        #expect(Self.refusal(#"{"a" :1 "b":2}"#)?.reason == "expected ',' or '}' in an object")
        #expect(Self.refusal("{1:2}")?.reason == "expected a key in double quotes")
        #expect(Self.refusal("tru")?.reason == "unexpected end of the document")
        #expect(Self.refusal("nul!")?.reason == "unexpected character 'n'")
    }

    @Test func nestingIsBoundedAtTheLimitExactly() throws {
        func arrays(_ depth: Int) -> String {
            String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
        #expect(throws: Never.self) { try JSONParser.parse(arrays(JSONParser.defaultMaxDepth)) }
        let tooDeep = try #require(Self.refusal(arrays(JSONParser.defaultMaxDepth + 1)))
        #expect(tooDeep.reason == "nesting deeper than 512 levels" && tooDeep.offset == 512)
        // Objects count as arrays do, and the limit is a parameter.
        #expect(try JSONParser.parse(#"{"a":[{}]}"#, maxDepth: 3) == .object([("a", .array([.object([])]))]))
        #expect(Self.refusal(#"{"a":[{}]}"#, maxDepth: 2)?.reason == "nesting deeper than 2 levels")
        // A hostile document far deeper than the limit is refused as soon as it passes it.
        #expect(Self.refusal(String(repeating: #"{"a":"#, count: 100_000))?.offset == 512 * 5)
    }

    @Test func numbersAreRFC8259NumbersThatFitADouble() throws {
        for (text, value) in [
            ("0", 0.0), ("-0", 0), ("12", 12), ("-1.25", -1.25), ("1E+2", 100), ("2.5e-1", 0.25), ("1e0", 1),
            ("12345678901234567890", 12_345_678_901_234_567_890),
            ("1.7976931348623157e308", Double.greatestFiniteMagnitude),
        ] {
            #expect(try JSONParser.parse(text) == .number(value), "\(text)")
        }
        for (text, reason) in [
            ("-", "a number needs digits"), ("-x", "a number needs digits"), ("1.", "a number needs digits after '.'"),
            ("1.e3", "a number needs digits after '.'"), ("1e", "a number needs digits in its exponent"),
            ("1e+", "a number needs digits in its exponent"), ("007", "a number may not start with 0"),
            ("-01", "a number may not start with 0"), ("1e309", "number 1e309 is too large"),
            ("-1e309", "number -1e309 is too large"), (".5", "unexpected character '.'"),
            ("+1", "unexpected character '+'"), ("NaN", "unexpected character 'N'"),
            ("Infinity", "unexpected character 'I'"), ("0x10", "unexpected text after the JSON value"),
        ] {
            #expect(Self.refusal(text)?.reason == reason, "\(text)")
        }
    }

    @Test func escapesAreDecodedAndBadOnesRefused() throws {
        let escaped = try JSONParser.parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00 plain""#)
        #expect(escaped == .string("\"\\/\u{08}\u{0C}\n\r\tAé😀 plain"))
        #expect(try JSONParser.parse(#"{"k\u0000y":"\u20AC"}"#) == .object([("k\u{0}y", .string("€"))]))
        for (text, reason) in [
            (#""\x""#, "invalid escape '\\x'"), (#""\u12G4""#, "invalid hex digit in a \\u escape"),
            (#""\u12""#, "unexpected end of the document"), (#""\udc00""#, "unpaired surrogate in a \\u escape"),
            (#""\ud800\u0041""#, "unpaired surrogate in a \\u escape"),
            (#""\ud800x""#, "unpaired surrogate in a \\u escape"),
            ("\"a\tb\"", "control character in a string (escape it)"),
            ("\"\\n\u{1F}\"", "control character in a string (escape it)"),
        ] {
            #expect(Self.refusal(text)?.reason == reason, "\(text)")
        }
    }

    @Test func aByteOrderMarkIsToleratedAndNothingElseAroundTheValue() throws {
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array(" [1] ".utf8)) == .array([.number(1)]))
        #expect(Self.refusal([0xEF, 0xBB])?.reason == "unexpected character '\\xef'")
        #expect(Self.refusal("[1] // comment")?.reason == "unexpected text after the JSON value")
    }

    @Test func randomBytesNeverCrash() throws {
        var state: UInt64 = 0x5EED
        let alphabet = Array(#"{}[]":,.-+eE0123456789tfnulrsa\ "#.utf8) + [0x00, 0x0A, 0x80, 0xC3, 0xFF]
        for _ in 0..<5_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(state % 40) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(alphabet[Int((state >> 33) % UInt64(alphabet.count))])
            }
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            if let value = try? JSONParser.parse(bytes) {
                // Whatever is accepted writes back as text that parses to the same value.
                #expect(try JSONParser.parse(value.jsonText) == value)
            }
        }
    }
}

@Suite("JSON writer")
struct JSONWriterTests {
    @Test func compactTextRoundTripsAndKeepsKeyOrder() throws {
        let text = #"{ "z": [1, -2.5, true, false, null, "s"], "a": {"in": {"deep": []}, "e": {}}, "m": 1e-7 }"#
        let value = try JSONParser.parse(text)
        #expect(value.jsonText == #"{"z":[1,-2.5,true,false,null,"s"],"a":{"in":{"deep":[]},"e":{}},"m":1e-07}"#)
        #expect(try JSONParser.parse(value.jsonText) == value)
        #expect(try JSONParser.parse(value.prettyJSONText) == value)
        #expect(value.objectValue?.map(\.key) == ["z", "a", "m"])
    }

    @Test func prettyTextIsIndentedByTwoSpaces() throws {
        let value = try JSONParser.parse(#"{"a":[1,{"b":null}],"c":{},"d":[]}"#)
        #expect(
            value.prettyJSONText == """
                {
                  "a": [
                    1,
                    {
                      "b": null
                    }
                  ],
                  "c": {},
                  "d": []
                }

                """)
    }

    @Test func stringsAreEscapedOnlyWhereJSONRequires() throws {
        let string = "q\"b\\n\nr\rt\t\u{01}\u{08}\u{1F}/é😀"
        let text = JSONValue.string(string).jsonText
        #expect(text == #""q\"b\\n\nr\rt\t\u0001\u0008\u001f/é😀""#)
        #expect(try JSONParser.parse(text) == .string(string))
        #expect(JSONValue.object([("k\"ey", .string(""))]).jsonText == #"{"k\"ey":""}"#)
    }

    @Test func numbersAreWrittenShortestAndIntegersWithoutAFraction() throws {
        #expect(JSONValue.format(3) == "3")
        #expect(JSONValue.format(-0.0) == "0")
        #expect(JSONValue.format(-42) == "-42")
        #expect(JSONValue.format(0.1) == "0.1")
        #expect(JSONValue.format(999_999_999_999_999) == "999999999999999")
        for number in [0.1, 1.0 / 3, -2.5e-300, 1e300, 123_456_789.125, 1e15, 2e20, Double.greatestFiniteMagnitude] {
            #expect(try JSONParser.parse(JSONValue.format(number)) == .number(number), "\(number)")
        }
    }

    @Test func valuesCompareAsJSONDoes() throws {
        #expect(try JSONParser.parse(#"{"a":1,"b":[1,2]}"#) == JSONParser.parse(#"{"b":[1,2.0],"a":1e0}"#))
        #expect(try JSONParser.parse("[1,2]") != JSONParser.parse("[2,1]"))
        #expect(try JSONParser.parse(#"{"a":1}"#) != JSONParser.parse(#"{"a":1,"b":2}"#))
        #expect(JSONValue.null != .bool(false) && JSONValue.number(0) != .string("0"))
        #expect(
            [JSONValue.null, .bool(true), .number(1), .string(""), .array([]), .object([])].map(\.typeName) == [
                "null", "boolean", "number", "string", "array", "object",
            ])
        let value = try JSONParser.parse(#"{"s":"x","n":2,"b":true,"a":[],"o":{}}"#)
        #expect(value["s"]?.stringValue == "x" && value["n"]?.numberValue == 2 && value["b"]?.boolValue == true)
        #expect(value["a"]?.arrayValue?.isEmpty == true && value["o"]?.objectValue?.isEmpty == true)
        #expect(value["missing"] == nil && value["s"]?.numberValue == nil && JSONValue.array([])["s"] == nil)
    }
}
