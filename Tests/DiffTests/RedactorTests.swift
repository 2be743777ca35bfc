import Diff
import JSON
import Testing

@Suite("Redactor")
struct RedactorTests {
    func redact(_ body: String, _ pointers: [String]) -> String {
        String(decoding: Redactor.redact(Array(body.utf8), pointers: pointers), as: UTF8.self)
    }

    @Test func masksTheValuesAtThePointersAndKeepsTheRest() throws {
        let body =
            #"{"email": "ada@example.com", "items": [{"ssn": "123-45-6789", "id": 1}, {"ssn": {"n": 42}, "id": 2}], "#
            + #""n": 7}"#
        let redacted = self.redact(body, ["/email", "/items/*/ssn"])
        #expect(
            redacted
                == #"{"email": "[redacted]", "items": [{"ssn": "[redacted]", "id": 1}, {"ssn": "[redacted]", "id": 2}"#
                + #"], "n": 7}"#
        )
        #expect(try JSONParser.parse(redacted)["n"] == .number(7))
    }

    @Test func neverLeaksAValueWrittenWithEscapes() {
        let body = #"{"s\u0065cret": "t\u006fp-s3cr3t", "list": ["aa-s3cr3t-bb"]}"#
        let redacted = self.redact(body, ["/secret", "/list"])
        for leak in ["top-s3cr3t", "t\\u006fp", "s3cr3t"] { #expect(!redacted.contains(leak)) }
    }

    @Test func bodiesThatAreNotJSONAreKeptAndBrokenJSONIsMaskedWhole() {
        #expect(self.redact("plain text with ada@example.com", ["/email"]) == "plain text with ada@example.com")
        #expect(self.redact(#"{"email": "ada@example.com", "n": "#, ["/email"]) == #""[redacted]""#)
        #expect(self.redact(#"{"email": "ada@example.com"}"#, []) == #"{"email": "ada@example.com"}"#)
        #expect(self.redact(#"{"a": 1}"#, ["/missing", "not a pointer"]) == #"{"a": 1}"#)
        #expect(self.redact(#"{"a": 1}"#, [""]) == #""[redacted]""#)
    }

    @Test(arguments: 0..<100)
    func generatedDocumentsNeverLeakTheSecrets(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed &+ 1000)
        var document = PropertyTests.randomValue(&generator)
        document = .object([("doc", document), ("extra", PropertyTests.randomValue(&generator))])
        let leaves = PropertyTests.leaves(document).shuffled(using: &generator).prefix(4)
        var pointers: [String] = []
        for (number, path) in leaves.enumerated() {
            document = PropertyTests.replacing(document, at: path[...], with: .string("SECRET-\(number)-é"))!
            // Half by exact pointer, half with `*` for array indices.
            let pattern = PropertyTests.pointer(path)
            pointers.append(
                Bool.random(using: &generator)
                    ? pattern : PointerPattern.generalize(pattern) == pattern ? pattern : pattern)
        }
        let body = PropertyTests.rewrite(document, &generator)
        let redacted = Redactor.redact(Array(body.utf8), pointers: pointers)
        let text = String(decoding: redacted, as: UTF8.self)
        #expect(!text.contains("SECRET"), "\(body)\n\(pointers)\n\(text)")
        #expect((try? JSONParser.parse(redacted)) != nil)
    }
}

@Suite("Redactor: values")
struct RedactorValueTests {
    @Test func masksValuesInATree() {
        let value = json(#"{"a": {"email": "x@y"}, "list": [{"ssn": 1}, {"ssn": [2]}], "keep": true}"#)
        #expect(
            Redactor.redact(value, pointers: ["/a/email", "/list/*/ssn"])
                == json(
                    #"{"a": {"email": "[redacted]"}, "list": [{"ssn": "[redacted]"}, {"ssn": "[redacted]"}], "keep": "#
                        + #"true}"#
                ))
        #expect(Redactor.redact(value, pointers: []) == value)
        #expect(Redactor.redact(value, pointers: [""]) == .string("[redacted]"))
    }
}
