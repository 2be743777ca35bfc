import Testing

@testable import Diff
@testable import JSON

@Suite("Response comparison: status, headers, bodies, signatures")
struct ResponseDifferTests {
    func response(
        _ body: String, status: Int = 200, contentType: String? = "application/json",
        headers: [(name: String, value: String)] = []
    )
        -> ResponseSnapshot
    {
        ResponseSnapshot(
            status: status, headers: (contentType.map { [("Content-Type", $0)] } ?? []) + headers,
            body: Array(body.utf8))
    }

    @Test func identicalResponsesMatch() {
        let comparison = ResponseDiffer.compare(
            self.response(#"{"a": 1}"#), self.response(#"{"a":1.0}"#), options: DiffOptions())
        #expect(comparison.isMatch)
        #expect(comparison.signature.isEmpty)
        #expect(comparison.signature.text == "")
        #expect(
            ResponseDiffer.compare(
                self.response("", status: 204, contentType: nil), self.response("", status: 204, contentType: nil),
                options: DiffOptions()
            ).isMatch)
    }

    @Test func statusAndChosenHeadersArePartOfTheSignature() {
        let left = self.response("{}", status: 200, headers: [("X-Trace", "1"), ("cache-control", "no-store")])
        let right = self.response(
            "{}", status: 404, contentType: "application/json; charset=utf-8",
            headers: [("x-trace", "2"), ("Cache-Control", "no-store")])
        let comparison = ResponseDiffer.compare(
            left, right, options: DiffOptions(headers: ["Content-Type", "cache-control"]))
        #expect(comparison.status! == (200, 404))
        #expect(
            comparison.headers == [
                HeaderDifference(
                    name: "content-type", left: "application/json", right: "application/json; charset=utf-8")
            ])
        #expect(comparison.signature.text == "header content-type changed, status changed")
        #expect(!comparison.isMatch)
        let missing = ResponseDiffer.compare(left, self.response("{}", contentType: nil), options: DiffOptions())
        #expect(missing.signature.text == "header content-type removed")
    }

    @Test func answersInDifferentMediaTypesAreNotComparedAndTheirDifferenceIsItsOwnSignature() {
        let json = self.response(#"{"id": 1, "name": "Ada"}"#)
        let html = self.response("<p>Ada</p>", contentType: "text/html; charset=utf-8", headers: [("X-Trace", "2")])
        let comparison = ResponseDiffer.compare(json, html, options: DiffOptions(headers: ["content-type", "x-trace"]))
        #expect(comparison.mediaType! == ("application/json", "text/html"))
        #expect(comparison.signature.text == "header x-trace added, media type changed")
        #expect(comparison.pointers.isEmpty, "the bodies are not compared")
        #expect(!comparison.isMatch)
        // Same body bytes in two media types are still two representations.
        let sameBytes = ResponseDiffer.compare(
            self.response("{}"), self.response("{}", contentType: "application/problem+json"), options: DiffOptions())
        #expect(sameBytes.signature.text == "media type changed")
        // Parameters and case do not make another media type; a missing Content-Type is compared as before.
        #expect(
            ResponseDiffer.compare(
                self.response("{}"), self.response("{}", contentType: "Application/JSON; charset=utf-8"),
                options: DiffOptions(headers: [])
            ).isMatch)
        #expect(
            ResponseDiffer.compare(json, self.response("{}", contentType: nil), options: DiffOptions()).mediaType == nil
        )
    }

    @Test func jsonBodiesCompareStructurally() throws {
        let comparison = ResponseDiffer.compare(
            self.response(#"{"items": [{"title": "CEO"}, {"title": "CTO"}]}"#),
            self.response(#"{"items": [{"title": "Changed"}, {"title": "CTO2"}]}"#),
            options: DiffOptions()
        )
        guard case .json(let result) = comparison.body else {
            Issue.record("not compared as JSON: \(comparison.body)")
            return
        }
        #expect(summary(result) == ["changed /items/0/title", "changed /items/1/title"])
        #expect(comparison.pointers == ["/items/0/title", "/items/1/title"])
        #expect(comparison.signature.text == "/items/*/title changed")
    }

    @Test func bodiesWithoutJSONContentTypeAreJSONWhenBothLookLikeIt() {
        let comparison = ResponseDiffer.compare(
            self.response(" [1, 2]", contentType: "text/plain"), self.response("[1,2]", contentType: "text/plain"),
            options: DiffOptions())
        #expect(comparison.isMatch)
    }

    @Test func otherBodiesCompareAsBytesWithOffsetAndLine() {
        let comparison = ResponseDiffer.compare(
            self.response("line one\nline two\nline three", contentType: "text/plain"),
            self.response("line one\nline 2\nline three", contentType: "text/plain"),
            options: DiffOptions()
        )
        guard case .bytes(let offset, let line) = comparison.body else {
            Issue.record("not compared as bytes")
            return
        }
        #expect(offset == 14)
        #expect(line == 2)
        #expect(comparison.signature.text == "body changed")
        #expect(comparison.pointers.isEmpty)
    }

    @Test func aPrefixDiffersAtTheShorterLengthAndBinaryHasNoLine() {
        guard case .bytes(let offset, let line) = ResponseDiffer.compareBytes(Array("abc".utf8), Array("abcdef".utf8))
        else {
            Issue.record("equal")
            return
        }
        #expect(offset == 3)
        #expect(line == 1)
        guard
            case .bytes(let binaryOffset, let binaryLine) = ResponseDiffer.compareBytes(
                [0, 1, 0xFF, 3], [0, 1, 0xFF, 4])
        else {
            Issue.record("equal")
            return
        }
        #expect(binaryOffset == 3)
        #expect(binaryLine == nil)
        if case .equal = ResponseDiffer.compareBytes([], []) {} else { Issue.record("empty bodies differ") }
    }

    @Test func invalidJSONFallsBackToBytes() {
        let comparison = ResponseDiffer.compare(
            self.response(#"{"a": 1}"#), self.response(#"{"a": 1"#), options: DiffOptions())
        guard case .bytes(let offset, _) = comparison.body else {
            Issue.record("not compared as bytes: \(comparison.body)")
            return
        }
        #expect(offset == 7)
        #expect(comparison.signature.text == "body changed")
    }

    @Test func ignoreRulesApplyToResponses() {
        let comparison = ResponseDiffer.compare(
            self.response(#"{"id": 1, "requestId": "a"}"#),
            self.response(#"{"id": 1, "requestId": "b"}"#),
            options: DiffOptions(ignore: ["/requestId"])
        )
        #expect(comparison.isMatch)
    }
}

@Suite("Signatures")
struct SignatureTests {
    func signature(_ left: String, _ right: String, status: (Int, Int) = (200, 200)) -> Signature {
        ResponseDiffer.compare(
            ResponseSnapshot(status: status.0, headers: [("content-type", "application/json")], body: Array(left.utf8)),
            ResponseSnapshot(
                status: status.1, headers: [("content-type", "application/json")], body: Array(right.utf8)),
            options: DiffOptions()
        ).signature
    }

    @Test func mismatchesDifferingOnlyInIndicesShareASignature() {
        let first = self.signature(
            #"{"items": [{"t": 1}, {"t": 2}, {"t": 3}]}"#, #"{"items": [{"t": 9}, {"t": 2}, {"t": 3}]}"#)
        let second = self.signature(
            #"{"items": [{"t": 1}, {"t": 2}, {"t": 3}]}"#, #"{"items": [{"t": 1}, {"t": 2}, {"t": 7}]}"#)
        let both = self.signature(
            #"{"items": [{"t": 1}, {"t": 2}, {"t": 3}]}"#, #"{"items": [{"t": 0}, {"t": 0}, {"t": 3}]}"#)
        #expect(first == second)
        #expect(first == both)
        #expect(first.id == second.id)
        #expect(first.text == "/items/*/t changed")
    }

    @Test func differentKindsOrPlacesHaveDifferentSignatures() {
        let changed = self.signature(#"{"a": 1}"#, #"{"a": 2}"#)
        let typeChanged = self.signature(#"{"a": 1}"#, #"{"a": "1"}"#)
        let removed = self.signature(#"{"a": 1}"#, #"{}"#)
        let elsewhere = self.signature(#"{"b": 1}"#, #"{"b": 2}"#)
        let withStatus = self.signature(#"{"a": 1}"#, #"{"a": 2}"#, status: (200, 500))
        let all = [changed, typeChanged, removed, elsewhere, withStatus]
        #expect(Set(all).count == all.count)
        #expect(Set(all.map(\.id)).count == all.count)
        #expect(withStatus.text == "/a changed, status changed")
    }

    @Test func entriesAreSortedAndUniqueAndTheIDIsStable() {
        let signature = Signature(entries: [
            Signature.Entry(pattern: "status", kind: "changed"),
            Signature.Entry(pattern: "/b", kind: "removed"),
            Signature.Entry(pattern: "/a", kind: "changed"),
            Signature.Entry(pattern: "/b", kind: "removed"),
        ])
        #expect(signature.entries.map(\.pattern) == ["/a", "/b", "status"])
        #expect(signature.text == "/a changed, /b removed, status changed")
        #expect(signature.id.count == 16)
        #expect(signature.id.allSatisfy { $0.isHexDigit })
        // FNV-1a 64 of the text: fixed forever, since the store keys on it.
        #expect(Signature(entries: [Signature.Entry(pattern: "status", kind: "changed")]).id == fnv1a("status changed"))
        #expect(Signature.empty.id == "cbf29ce484222325")
    }

    func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

@Suite("Pointer patterns")
struct PointerPatternTests {
    @Test func generalizeReplacesIndexSegments() {
        #expect(PointerPattern.generalize("/items/3/title") == "/items/*/title")
        #expect(PointerPattern.generalize("/items/03/x/0") == "/items/03/x/*")
        #expect(PointerPattern.generalize("") == "")
    }

    @Test func matchingIsPerSegment() {
        #expect(PointerPattern.matches(pattern: "/items/*/title", pointer: "/items/3/title"))
        #expect(!PointerPattern.matches(pattern: "/items/*", pointer: "/items/3/title"))
        #expect(PointerPattern.covers(pattern: "/items/*", pointer: "/items/3/title"))
        #expect(!PointerPattern.covers(pattern: "/items/*/x", pointer: "/items/3"))
        #expect(PointerPattern.matches(pattern: "/a~1b/*", pointer: "/a~1b/c"))
        #expect(!PointerPattern.matches(pattern: "/a/b", pointer: "/a~1b"))
    }

    @Test func segmentsUnescapeAndInvalidPointersAreRefused() {
        #expect(PointerPattern.segments("/a~1b/m~0n/") == ["a/b", "m~n", ""])
        #expect(PointerPattern.segments("items") == nil)
        #expect(PointerPattern.segments("/a~2") == nil)
        #expect(PointerPattern.pointer(["a/b", "~"]) == "/a~1b/~0")
    }
}
