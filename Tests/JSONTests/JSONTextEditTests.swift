import Foundation
import Testing

@testable import JSON

@Suite("JSON text edits that keep the author's formatting")
struct JSONTextEditTests {
    static func setting(_ text: String, _ change: (inout JSONValue) -> Void) throws -> String? {
        var document = try JSONParser.parse(text)
        change(&document)
        return JSONTextEdit.editing(text, into: document)
    }

    @Test func aChangedValueIsReplacedWhereItStandsAndNothingElseMoves() throws {
        let text = """
            {"monolith":"http://127.0.0.1:1",  "routes": [
              {"id":"a","stage":"transform","timeout":"2s"},   {"id":"b","stage":"transform", "n": 1.50}
            ],
            "gates": { "eliminate": { "minSamples": 10 } } }
            """
        let edited = try #require(
            try Self.setting(text) { document in
                document = .object(
                    document.objectValue!.map { member in
                        guard member.key == "routes" else { return member }
                        var routes = member.value.arrayValue!
                        var second = routes[1].objectValue!
                        second[1].value = .string("coexist")
                        routes[1] = .object(second)
                        return (member.key, .array(routes))
                    })
            })
        #expect(
            edited
                == text.replacingOccurrences(
                    of: #"{"id":"b","stage":"transform""#, with: #"{"id":"b","stage":"coexist""#))
    }

    @Test func severalScalarsOfEveryKindAndEscapedStrings() throws {
        let text = #"[ "x\"y", 1e2, true, null, {"k": "v\\"} ]"#
        let target = try JSONParser.parse(#"[ "z", 7, false, "now", {"k": "w"} ]"#)
        let edited = try #require(JSONTextEdit.editing(text, into: target))
        #expect(edited == #"[ "z", 7, false, "now", {"k": "w"} ]"#)
        #expect(JSONTextEdit.editing(text, into: try JSONParser.parse(text)) == text)
    }

    @Test func aChangeOfShapeIsNotAnEdit() throws {
        let text = #"{"a": [1, 2], "b": {"c": 1}}"#
        #expect(JSONTextEdit.editing(text, into: try JSONParser.parse(#"{"a": [1, 2, 3], "b": {"c": 1}}"#)) == nil)
        #expect(JSONTextEdit.editing(text, into: try JSONParser.parse(#"{"a": [1, 2], "b": {"c": 1, "d": 2}}"#)) == nil)
        #expect(JSONTextEdit.editing(text, into: try JSONParser.parse(#"{"b": {"c": 1}, "a": [1, 2]}"#)) == nil)
        #expect(JSONTextEdit.editing(text, into: try JSONParser.parse(#"{"a": [1, 2], "b": 3}"#)) == nil)
        #expect(JSONTextEdit.editing("{ not json", into: .null) == nil)
    }
}
