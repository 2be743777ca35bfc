import Testing

@testable import Diff
@testable import JSON

@Suite("JSON diff: hostile input gives an error, never a crash")
struct HostileInputTests {
    func error(_ left: [UInt8], _ right: [UInt8] = Array("{}".utf8), options: DiffOptions = DiffOptions()) -> DiffError?
    {
        do {
            _ = try JSONDiff.diff(left, right, options: options)
            return nil
        } catch {
            return error
        }
    }

    func error(_ left: String, _ right: String = "{}") -> DiffError? { self.error(Array(left.utf8), Array(right.utf8)) }

    @Test func deepNestingIsRefused() throws {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        let failure = try #require(self.error(deep))
        #expect(failure.side == .left)
        #expect(failure.reason.contains("nesting deeper than 512"))
        let balanced = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(self.error("[]", balanced)?.side == .right)
        // Up to the limit is fine, and the limit is an option.
        let limit = String(repeating: "{\"a\":", count: 511) + "[]" + String(repeating: "}", count: 511)
        #expect(self.error(limit, limit) == nil)
        #expect(
            self.error(Array(limit.utf8), Array(limit.utf8), options: DiffOptions(maxDepth: 100))?.reason.contains(
                "deeper than 100") == true)
    }

    @Test func invalidUTF8IsRefused() throws {
        for bytes: [UInt8] in [
            [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x80],
        ] {
            let document = Array(#"{"a": ""#.utf8) + bytes + Array(#""}"#.utf8)
            #expect(self.error(document)?.reason == "invalid UTF-8 in a string", "\(bytes)")
        }
        #expect(self.error(Array(#"{""#.utf8) + [0xFF] + Array(#"": 1}"#.utf8))?.reason == "invalid UTF-8 in a string")
        #expect(self.error([0xFF]) != nil)
    }

    @Test func hugeNumbersAreRefused() throws {
        #expect(self.error("[1e400]")?.reason.contains("too large") == true)
        #expect(self.error("[-1e400]")?.reason.contains("too large") == true)
        #expect(self.error("[" + String(repeating: "9", count: 400) + "]")?.reason.contains("too large") == true)
        // Tiny ones round to zero and are accepted.
        #expect(self.error("[1e-400]") == nil)
    }

    @Test func truncatedDocumentsAreRefusedWithTheirPosition() throws {
        let full = #"{"items": [{"id": 1, "name": "Ada \u00e9"}, true, null, -1.5e3]}"#
        for end in 1..<full.utf8.count {
            let truncated = Array(full.utf8.prefix(end))
            let failure = try #require(self.error(truncated), "prefix \(end)")
            #expect(failure.offset <= end)
        }
        #expect(
            self.error("{\n  \"a\": [1,\n  2,")
                == DiffError(side: .left, reason: "unexpected end of the document", offset: 17, line: 3, column: 5))
    }

    @Test func syntaxErrorsAreRefused() throws {
        let cases = [
            "", " ", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[1e]", "[+1]", "[tru]", "[nul]", "[\"\\x\"]",
            "[\"\\u12\"]",
            "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"a\u{1}\"]", "{\"a\" 1}", "{1: 2}", "[1 2]", "[] []",
            "{\"a\": 1, \"a\": 2}",
            "{\"a\": 1, \"\\u0061\": 2}", "'a'", "[NaN]", "[Infinity]",
        ]
        for text in cases { #expect(self.error(text) != nil, "\(text.debugDescription) was accepted") }
    }

    @Test func errorsSayWhichSideAndWhere() throws {
        let failure = try #require(self.error("[1, 2]", "[1,\n 2,,]"))
        #expect(failure.side == .right)
        #expect(failure.line == 2)
        #expect(failure.column == 4)
        #expect(failure.description == "right document, line 2, column 4: unexpected character ','")
    }

    @Test func duplicateKeysAreRefusedInLargeObjectsToo() throws {
        let members = (0..<100).map { "\"k\($0)\": \($0)" }
        #expect(self.error("{" + members.joined(separator: ",") + "}") == nil)
        #expect(
            self.error("{" + (members + ["\"k42\": 0"]).joined(separator: ",") + "}")?.reason == #"duplicate key "k42""#
        )
    }

    @Test func randomBytesNeverCrash() throws {
        var generator = SeededGenerator(seed: 7)
        let alphabet = Array(#"{}[]":,.-+eE0123456789 tfnrule"\/u"#.utf8) + [0xC3, 0xA9, 0xFF, 0x0A]
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            let parsed = try? JSONParser.parse(bytes)
            let compared = try? JSONDiff.diff(bytes, bytes, options: DiffOptions())
            // Both parsers agree on what is JSON.
            #expect((parsed == nil) == (compared == nil), "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            #expect(compared?.isEqual ?? true)
        }
    }
}
