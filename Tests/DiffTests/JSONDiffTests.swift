import Diff
import JSON
import Testing

@Suite("JSON diff: kinds, equality rules, pointers")
struct JSONDiffTests {
    @Test func equalDocumentsHaveNoDifference() throws {
        let result = try diff(#"{"a": [1, {"b": null}], "c": true}"#, #"{"a":[1,{"b":null}],"c":true}"#)
        #expect(result.isEqual)
        #expect(!result.truncated)
        #expect(result.signature.isEmpty)
    }

    @Test func reportsEachKindWithBothValues() throws {
        let result = try diff(
            #"{"changed": 1, "removed": "x", "type": "1", "same": 0}"#,
            #"{"changed": 2, "type": 1, "added": [true], "same": 0}"#)
        #expect(
            result.differences == [
                Difference(pointer: "/changed", kind: .changed, left: .number(1), right: .number(2)),
                Difference(pointer: "/removed", kind: .removed, left: .string("x"), right: nil),
                Difference(pointer: "/type", kind: .typeChanged, left: .string("1"), right: .number(1)),
                Difference(pointer: "/added", kind: .added, left: nil, right: .array([.bool(true)])),
            ]
        )
    }

    @Test func booleansChangeAndNullIsAType() throws {
        #expect(
            summary(try diff("[true, null, {}]", "[false, 0, []]")) == [
                "changed /0", "type_changed /1", "type_changed /2",
            ])
    }

    @Test func rootDifferencesHaveTheEmptyPointer() throws {
        let result = try diff("1", #""1""#)
        #expect(result.differences.map(\.pointer) == [""])
        #expect(result.differences[0].kind == .typeChanged)
        #expect(result.signature.text == "(root) type_changed")
    }

    @Test func keyOrderNeverMatters() throws {
        #expect(
            try diff(#"{"a": 1, "b": {"x": 1, "y": 2}, "c": 3}"#, #"{"c": 3, "b": {"y": 2, "x": 1}, "a": 1}"#).isEqual)
        #expect(summary(try diff(#"{"a": 1, "b": 2, "c": 3}"#, #"{"c": 3, "a": 9}"#)) == ["changed /a", "removed /b"])
    }

    @Test func numbersCompareByValue() throws {
        #expect(
            try diff("[1, 1.5, 0, -0, 100, 2.50, 1e2, 0.001]", "[1.0, 1.50, 0.0, 0, 1E2, 2.5, 100.0, 1e-3]").isEqual)
        #expect(summary(try diff("[1, 0.1]", "[1.0000001, 0.10000001]")) == ["changed /0", "changed /1"])
    }

    @Test func largeIntegersCompareExactly() throws {
        // Both round to the same Double; the byte engine compares exact decimals.
        let result = try JSONDiff.diff(
            Array("[12345678901234567890]".utf8), Array("[12345678901234567891]".utf8), options: DiffOptions())
        #expect(summary(result) == ["changed /0"])
    }

    @Test func escapedAndLiteralUnicodeAreEqual() throws {
        #expect(
            try diff(
                #"{"name": "\u00e9t\u00E9 \ud83d\ude00", "k\u0065y": "a\/b\n"}"#,
                #"{"name": "été 😀", "key": "a/b\u000a"}"#
            ).isEqual)
        let result = try diff(#"{"a": "\u00e9"}"#, #"{"a": "e"}"#)
        #expect(
            result.differences == [Difference(pointer: "/a", kind: .changed, left: .string("é"), right: .string("e"))])
    }

    @Test func pointersEscapeTildeAndSlash() throws {
        let result = try diff(#"{"a/b": {"m~n": 1}, "": 2}"#, #"{"a/b": {"m~n": 2}, "": 3}"#)
        #expect(result.differences.map(\.pointer) == ["/a~1b/m~0n", "/"])
    }

    @Test func arraysCompareByIndex() throws {
        #expect(summary(try diff("[1, 2, 3]", "[1, 3]")) == ["changed /1", "removed /2"])
        #expect(summary(try diff("[1]", "[1, 2, 3]")) == ["added /1", "added /2"])
        let result = try diff(#"{"items": [{"t": "a"}, {"t": "b"}]}"#, #"{"items": [{"t": "a"}, {"t": "c"}]}"#)
        #expect(result.differences.map(\.pattern) == ["/items/*/t"])
    }

    @Test func patternsKeepObjectKeysMadeOfDigits() throws {
        let result = try diff(#"{"2024": [{"7": 1}]}"#, #"{"2024": [{"7": 2}]}"#)
        #expect(result.differences.map(\.pointer) == ["/2024/0/7"])
        #expect(result.differences.map(\.pattern) == ["/2024/*/7"])
        #expect(PointerPattern.generalize("/2024/0/7") == "/*/*/*")
    }

    @Test func arraysByKeyMatchElementsAndReportLeftIndices() throws {
        let left = #"{"items": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]}"#
        let right = #"{"items": [{"id": 4, "v": "d"}, {"id": 3, "v": "C"}, {"id": 1.0, "v": "a"}]}"#
        let options = DiffOptions(arrays: ["/items": "id"])
        // Changed inside a pair: the left index (2); removed: the left index (1); added: the right index (0).
        #expect(
            summary(try diff(left, right, options)) == ["removed /items/1", "changed /items/2/v", "added /items/0"])
        // Without the key, by index.
        #expect(summary(try diff(left, right)).count == 6)
        // Reordering alone is no difference.
        #expect(
            try diff(
                #"[{"id": "x"}, {"id": "y", "n": [1]}]"#, #"[{"id": "y", "n": [1]}, {"id": "x"}]"#,
                DiffOptions(arrays: ["": "id"])
            ).isEqual)
    }

    @Test func arraysByKeyAcceptAWildcardAndPairElementsWithoutKeyInOrder() throws {
        let left =
            #"{"groups": [{"members": [{"id": "a", "n": 1}, {"n": 5}, {"id": "d", "n": 0}, {"id": "d", "n": 1}]}]}"#
        let right =
            #"{"groups": [{"members": [{"n": 6}, {"id": "d", "n": 0}, {"id": "a", "n": 2}, {"id": "d", "n": 1}]}]}"#
        let result = try diff(left, right, DiffOptions(arrays: ["/groups/*/members": "id"]))
        // "a" by key; the unkeyed {"n": 5} pairs with {"n": 6}; duplicated "d"s pair in order.
        #expect(summary(result) == ["changed /groups/0/members/0/n", "changed /groups/0/members/1/n"])
    }

    @Test func ignoreRulesIgnoreWholeSubtreesAndAcceptOneSegmentWildcards() throws {
        let left = #"{"meta": {"id": 1, "at": 2}, "items": [{"u": 1, "k": {"x": 1}}, {"u": 2, "k": {"x": 2}}], "n": 1}"#
        let right = #"{"meta": {"id": 9}, "items": [{"u": 3, "k": {"x": 9}}, {"u": 4}], "n": 2}"#
        #expect(
            summary(try diff(left, right, DiffOptions(ignore: ["/meta", "/items/*/u", "/items/*/k"]))) == ["changed /n"]
        )
        // `*` is one segment only: /items/* ignores the elements, * alone does not reach /items/0/u.
        #expect(summary(try diff(left, right, DiffOptions(ignore: ["/*"]))).isEmpty)
        #expect(summary(try diff(left, right, DiffOptions(ignore: ["/*/u"]))).count == 7)
        #expect(try diff(left, right, DiffOptions(ignore: [""])).isEqual)
        // Ignored added or removed members are not reported either.
        #expect(try diff(#"{"a": 1}"#, #"{"a": 1, "b": 2}"#, DiffOptions(ignore: ["/b"])).isEqual)
        #expect(try diff("[1, 2]", "[1]", DiffOptions(ignore: ["/1"])).isEqual)
    }

    @Test func numericToleranceIsAbsolute() throws {
        let options = DiffOptions(numericTolerance: 0.01)
        #expect(try diff("[1.000, 100.004]", "[1.005, 100.0]", options).isEqual)
        #expect(summary(try diff("[1.0]", "[1.02]", options)) == ["changed /0"])
        #expect(summary(try diff(#"["1.0"]"#, #"["1.001"]"#, options)) == ["changed /0"])
    }

    @Test func reportedDifferencesAreCappedButAllAreCountedAndSigned() throws {
        let left = "[" + (0..<50).map { #"{"a": \#($0), "b": 0}"# }.joined(separator: ",") + "]"
        let right = "[" + (0..<50).map { #"{"a": \#($0 + 1), "b": \#($0 == 49 ? 1 : 0)}"# }.joined(separator: ",") + "]"
        let result = try JSONDiff.diff(Array(left.utf8), Array(right.utf8), options: DiffOptions(maxDifferences: 10))
        #expect(result.differences.count == 10)
        #expect(result.truncated)
        #expect(result.totalCount == 51)
        #expect(result.signature.text == "/*/a changed, /*/b changed")
        let counted = try JSONDiff.diff(Array(left.utf8), Array(right.utf8), options: DiffOptions(maxDifferences: 0))
        #expect(counted.differences.isEmpty)
        #expect(!counted.isEqual)
        #expect(counted.totalCount == 51)
    }

    @Test func documentsAreParsedOnceAndComparedAgain() throws {
        let left = try JSONDocument(parsing: Array(#"{"a": [1, 2]}"#.utf8))
        let right = try JSONDocument(parsing: Array(#"{"a": [1, 3]}"#.utf8))
        #expect(left.value == json(#"{"a": [1, 2]}"#))
        #expect(summary(JSONDiff.diff(left, right, options: DiffOptions())) == ["changed /a/1"])
        #expect(JSONDiff.diff(left, right, options: DiffOptions(ignore: ["/a"])).isEqual)
    }

    @Test func equalPrefixesAreSkippedWithoutMissingLaterDifferences() throws {
        // Same bytes up to deep inside, then a difference; also shifted offsets after a length change.
        let left = #"{"a": [{"x": "same", "y": [1, 2, 3]}, {"x": "long value", "y": [4]}, {"x": "z", "y": [5]}]}"#
        let right = #"{"a": [{"x": "same", "y": [1, 2, 4]}, {"x": "v", "y": [4]}, {"x": "z", "y": [6]}]}"#
        #expect(summary(try diff(left, right)) == ["changed /a/0/y/2", "changed /a/1/x", "changed /a/2/y/0"])
    }

    @Test func largeObjectsInAnotherKeyOrderMatchByKey() throws {
        let keys = (0..<200).map { "key\($0)" }
        let left = "{" + keys.map { "\"\($0)\": 1" }.joined(separator: ", ") + #", "é": 2, "gone": 0}"#
        let right =
            #"{"\u00e9": 2, "# + keys.reversed().map { "\"\($0)\": \($0 == "key7" ? 2 : 1)" }.joined(separator: ", ")
            + #", "new": 0}"#
        #expect(summary(try diff(left, right)) == ["changed /key7", "removed /gone", "added /new"])
    }
}
