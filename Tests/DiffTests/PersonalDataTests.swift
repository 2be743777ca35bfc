import Diff
import JSON
import Testing

@Suite("Personal data: detectors")
struct PersonalDataDetectorTests {
    func found(_ text: String) -> [(String, PersonalDataDetector.Kind)] {
        let bytes = Array(text.utf8)
        return PersonalDataDetector.matches(in: bytes).map {
            (String(decoding: bytes[$0.range], as: UTF8.self), $0.kind)
        }
    }

    func kinds(_ text: String) -> [PersonalDataDetector.Kind] { self.found(text).map(\.1) }

    @Test func luhnTellsValidCardNumbersFromInvalidOnes() {
        for valid in ["4111111111111111", "5500000000000004", "378282246310005", "6011111111111117", "79927398713"] {
            #expect(PersonalDataDetector.luhnValid(Array(valid.utf8)), "\(valid)")
        }
        for invalid in [
            "4111111111111112", "5500000000000005", "378282246310006", "79927398710", "1", "41111x1111111111",
        ] {
            #expect(!PersonalDataDetector.luhnValid(Array(invalid.utf8)), "\(invalid)")
        }
    }

    @Test func cardNumbersAreFoundOnlyWithAValidCheckDigit() {
        #expect(self.found("card 4111111111111111 ok").map(\.0) == ["4111111111111111"])
        #expect(self.found("4111 1111 1111 1111").map(\.0) == ["4111 1111 1111 1111"])
        #expect(self.found("5500-0000-0000-0004,").map(\.0) == ["5500-0000-0000-0004"])
        #expect(self.kinds("card 4111111111111112 ok").isEmpty, "Luhn fails")
        #expect(self.kinds("4111 1111-1111 1111").isEmpty, "one kind of separator")
        #expect(self.kinds("x4111111111111111").isEmpty, "not standing alone")
    }

    @Test func ibanTellsValidFromInvalid() {
        for valid in [
            "DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300",
        ] {
            #expect(PersonalDataDetector.ibanValid(Array(valid.utf8)), "\(valid)")
        }
        for invalid in ["DE89370400440532013001", "GB82WEST12345698765433", "DE8937040044", "de89370400440532013000"] {
            #expect(!PersonalDataDetector.ibanValid(Array(invalid.utf8)), "\(invalid)")
        }
        #expect(self.found("pay to DE89 3704 0044 0532 0130 00 today").map(\.0) == ["DE89 3704 0044 0532 0130 00"])
        #expect(self.found("IBAN: GB82WEST12345698765432.").map(\.0) == ["GB82WEST12345698765432"])
        #expect(self.kinds("IBAN DE89370400440532013001").isEmpty)
        #expect(
            self.found("DE89 3704 0044 0532 0130 00 OK").map(\.0) == ["DE89 3704 0044 0532 0130 00"],
            "a word after it is not part of it")
    }

    @Test func emails() {
        #expect(
            self.found("write to ada.lovelace+crm@example.co.uk, thanks").map(\.0) == ["ada.lovelace+crm@example.co.uk"]
        )
        #expect(self.found("<Ada@Example.COM>").map(\.0) == ["Ada@Example.COM"])
        #expect(self.found("a@b.c d@e.fr").map(\.0) == ["d@e.fr"], "a top-level label of two letters or more")
        for text in ["user@localhost", "@example.com", "ada@", "x @ y.com", "ada@example.", "v1@2.3"] {
            #expect(self.kinds(text).isEmpty, "\(text)")
        }
    }

    @Test func phones() {
        #expect(self.found("call +1 555 0101 now").map(\.0) == ["+1 555 0101"])
        #expect(self.found("+44 20 7946 0958").map(\.0) == ["+44 20 7946 0958"])
        #expect(self.found("+1 (555) 010-0199").map(\.0) == ["+1 (555) 010-0199"])
        #expect(self.found("+4930123456").map(\.0) == ["+4930123456"])
        #expect(self.found("(555) 010-0199").map(\.0) == ["(555) 010-0199"])
        #expect(
            self.found("555-010-0199 or 555.010.0199 or 555 010 0199").map(\.0) == [
                "555-010-0199", "555.010.0199", "555 010 0199",
            ])
        #expect(self.kinds("+12345").isEmpty, "too short")
        #expect(self.kinds("555-010.0199").isEmpty, "one kind of separator")
    }

    @Test func jwtsAndBearerCredentials() {
        let jwt =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR"
            + "8U"
        #expect(self.found("token=\(jwt)&x=1").map(\.0) == [jwt])
        #expect(self.found("Bearer \(jwt)").map(\.1) == [.bearer], "the credential after Bearer, whatever it is")
        #expect(self.found("Authorization: bearer abc123def456ghi").map(\.0) == ["abc123def456ghi"])
        #expect(self.kinds("bearer short").isEmpty)
        #expect(self.kinds("eyJhbGciOi").isEmpty, "one segment is not a JWT")
        #expect(self.kinds("the bearer of bad news").isEmpty)
    }

    /// What an answer is full of: ids, times, UUIDs, versions, amounts, counts. None of it is personal.
    @Test func noFalsePositivesOnOrdinaryValues() {
        let ordinary = [
            "con_01HZY3K8Q9", "acc-0001", "12345678", "1764754800000", "1764754800123456789", "2026-11-27",
            "2026-11-27T09:35:31Z",
            "2026-11-27T09:35:31.123+01:00", "123e4567-e89b-12d3-a456-426614174000",
            "550e8400-e29b-41d4-a716-446655440000", "v1.2.3", "1.5",
            "1234567.89", "-42", "page 2 of 10", "order 5550101", "1234567812345670", "ORD-2026-000123", "ABCD1234EFGH",
            "HTTP/1.1 200 OK",
            "text/html; charset=utf-8", "W/\"5-abc\"", "/contacts/con_1?limit=20&after=abc",
            "Mozilla/5.0 (X11; Linux x86_64)", "10.0.0.1",
            "192.168.1.254", "3.14159265358979", "+5", "+1.5e10", "20261127093531", "00:1A:2B:3C:4D:5E",
        ]
        for text in ordinary {
            #expect(self.kinds(text).isEmpty, "\(text): \(self.found(text))")
        }
    }

    @Test func costIsLinearOnHostileText() {
        // Many near-candidates: each is read a bounded number of bytes.
        let hostile =
            String(repeating: "a@b.", count: 20_000) + String(repeating: "+1 ", count: 20_000)
            + String(repeating: "4111 ", count: 20_000)
            + String(repeating: "eyJ.", count: 20_000) + String(repeating: "DE89 ", count: 20_000)
        let clock = ContinuousClock()
        let elapsed = clock.measure { _ = PersonalDataDetector.matches(in: Array(hostile.utf8)) }
        // A bound far above linear time (well under a second) and far below quadratic time (minutes), loaded machine or
        // not.
        #expect(elapsed < .seconds(30), "\(elapsed)")
    }
}

@Suite("Personal data: redaction with keyed hashes")
struct RedactionTests {
    static let key = RedactionKey(bytes: Array("a test key, 32 bytes long.......".utf8))

    func redact(_ body: String, _ rules: RedactionRules = RedactionRules()) -> (String, Set<String>) {
        var redaction = Redaction(rules: rules, key: Self.key)
        let output = String(decoding: redaction.body(Array(body.utf8)), as: UTF8.self)
        return (output, redaction.hashes)
    }

    func token(_ value: String) -> String { Self.key.token(Array(value.utf8)) }

    @Test func tokensAreKeyedStableAndShort() {
        #expect(self.token("ada@example.com") == self.token("ada@example.com"))
        #expect(self.token("ada@example.com") != self.token("grace@example.com"))
        #expect(
            RedactionKey(bytes: Array("another key".utf8)).token(Array("ada@example.com".utf8))
                != self.token("ada@example.com"))
        let token = self.token("x")
        #expect(token.hasPrefix("[redacted:") && token.hasSuffix("]") && token.count == "[redacted:]".count + 16)
    }

    @Test func fieldNamesMatchAnywhereInANameIgnoringCase() {
        let rules = RedactionRules()
        for name in [
            "email", "customerEmail", "EMAIL_ADDRESS", "access_token", "X-Auth-Token", "apiKey", "password",
            "phoneNumber", "ssn",
        ] {
            #expect(rules.redactsField(Array(name.utf8)), "\(name)")
        }
        for name in ["id", "title", "name", "createdAt", "version", "items"] {
            #expect(!rules.redactsField(Array(name.utf8)), "\(name)")
        }
        #expect(!RedactionRules(defaults: false).redactsField(Array("email".utf8)))
        #expect(RedactionRules(defaults: false, fields: ["Nick"]).redactsField(Array("nickname".utf8)))
    }

    @Test func byDefaultPersonalFieldsAndDetectedValuesAreReplacedByTheirTokens() {
        let body =
            #"{"id":"con_1","customerEmail":"ada@example.com","title":"CEO","phone":5550101,"verified":true,"#
            + #""notes":"call +1 555 0101 or mail grace@example.org","card":{"number":"4111111111111111","#
            + #""exp":"12/29"},"n":4111111111111111,"createdAt":"2026-11-27T09:35:31Z"}"#
        let (output, hashes) = self.redact(body)
        let stored = try! JSONParser.parse(output)
        #expect(stored["id"] == .string("con_1"))
        #expect(stored["title"] == .string("CEO"))
        #expect(stored["createdAt"] == .string("2026-11-27T09:35:31Z"))
        #expect(stored["customerEmail"] == .string(self.token("ada@example.com")))
        #expect(stored["phone"]?.numberValue != nil && stored["phone"] != .number(5_550_101), "a number stays a number")
        #expect(stored["verified"] == .bool(true), "booleans say nothing about a person")
        #expect(
            stored["notes"] == .string("call \(self.token("+1 555 0101")) or mail \(self.token("grace@example.org"))"))
        #expect(
            stored["card"]?["number"] == .string(self.token("4111111111111111")),
            "an object matched by a field keeps its shape")
        #expect(stored["card"]?["exp"] == .string(self.token("12/29")))
        #expect(
            stored["n"]?.numberValue != nil && stored["n"] != .number(4_111_111_111_111_111),
            "a card number written as a number")
        for leak in ["ada@", "grace@", "555 0101", "4111111111111111", "12/29"] {
            #expect(!output.contains(leak), "\(leak) in \(output)")
        }
        #expect(hashes.contains(Self.key.hash(Array("ada@example.com".utf8))))
        #expect(hashes.contains(Self.key.hash(Array("grace@example.org".utf8))))
        #expect(body.count > 0 && output.hasPrefix(#"{"id":"con_1","customerEmail":"#), "every other byte is kept")
    }

    @Test func valuesWrittenWithEscapesGiveTheSameToken() throws {
        let (plain, _) = self.redact(#"{"email":"ada@example.com"}"#)
        let (escaped, _) = self.redact(#"{"\u0065mail":"ada\u0040example.com"}"#)
        #expect(try JSONParser.parse(plain)["email"] == (try JSONParser.parse(escaped))["email"])
        let (key, _) = self.redact(#"{"byEmail":{"ada@example.com":{"id":1}}}"#)
        #expect(!key.contains("ada@"), "keys pass the detectors too: \(key)")
    }

    @Test func pointersAndFieldsAddedToTheDefaultsAndDefaultsOff() {
        let body = #"{"nickname":"Ady","email":"ada@example.com","items":[{"note":"private"}]}"#
        let rules = RedactionRules(fields: ["nick"], pointers: ["/items/*/note"])
        let (output, _) = self.redact(body, rules)
        for leak in ["Ady", "ada@", "private"] { #expect(!output.contains(leak)) }
        let (off, hashes) = self.redact(body, RedactionRules(defaults: false))
        #expect(off == body, "defaults off and no rules: stored as is")
        #expect(hashes.isEmpty)
        let (onlyPointer, _) = self.redact(body, RedactionRules(defaults: false, pointers: ["/items"]))
        #expect(onlyPointer.contains("ada@example.com") && !onlyPointer.contains("private"))
    }

    @Test func freeTextInvalidJSONQueriesPathsAndHeaders() {
        #expect(self.redact("Dear ada@example.com,").0 == "Dear \(self.token("ada@example.com")),")
        #expect(
            self.redact(#"{"password":"hunter2""#).0 == "\"\(Self.key.token(Array(#"{"password":"hunter2""#.utf8)))\"",
            "broken JSON: whole")
        var redaction = Redaction(rules: RedactionRules(), key: Self.key)
        #expect(
            redaction.query("limit=20&access_token=abc123&q=ada%40example.com")
                == "limit=20&access_token=\(self.token("abc123"))&q=\(self.token("ada@example.com"))")
        #expect(
            redaction.query("ada%40example.com&x=1") == "\(self.token("ada@example.com"))&x=1",
            "a parameter without a value")
        #expect(
            redaction.path("/contacts/by-email/ada%40example.com")
                == "/contacts/by-email/\(self.token("ada@example.com"))")
        #expect(redaction.path("/contacts/con_1") == "/contacts/con_1")
        let headers = redaction.requestHeaders([
            ("Content-Type", "application/json"), ("X-Api-Key", "k-123"), ("Authorization", "Bearer x"),
            ("User-Agent", "bot ada@example.com"),
        ])
        #expect(
            headers.map(\.value) == [
                "application/json", self.token("k-123"), self.token("Bearer x"), "bot \(self.token("ada@example.com"))",
            ])
        let answer = redaction.responseHeaders([("Set-Cookie", "s=1"), ("ETag", "\"3\""), ("X-Trace", "t")])
        #expect(answer.map(\.value) == [self.token("s=1"), "\"3\"", self.token("t")])
        var off = Redaction(rules: RedactionRules(defaults: false), key: Self.key)
        #expect(
            off.requestHeaders([("X-Api-Key", "k"), ("Cookie", "c")]).map(\.value) == ["k", self.token("c")],
            "secret headers whatever the rules")
        #expect(off.query("access_token=abc") == "access_token=abc")
    }

    @Test func aValueRedactedWholeAlsoRecordsWhatTheDetectorsFindInIt() {
        let (output, hashes) = self.redact(#"{"customerEmail":"Ada <ada@example.com>"}"#)
        #expect(output == #"{"customerEmail":"\#(self.token("Ada <ada@example.com>"))"}"#)
        #expect(
            hashes.contains(Self.key.hash(Array("ada@example.com".utf8))), "an erasure of the address finds this sample"
        )
    }

    @Test func formsEncodedAndMultipartBodiesAreReadByTheirHeaders() {
        func body(_ text: String, _ headers: [(name: String, value: String)]) -> String {
            var redaction = Redaction(rules: RedactionRules(), key: Self.key)
            return String(decoding: redaction.body(Array(text.utf8), headers: headers), as: UTF8.self)
        }
        let form = "email=ada%40example.com&password=hunter2&remember=1"
        #expect(
            body(form, [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")])
                == "email=\(self.token("ada@example.com"))&password=\(self.token("hunter2"))&remember=1")
        // Compressed or multipart bytes cannot be searched: one token for the whole body.
        let gzip = "\u{1F}\u{8B}compressed ada@example.com"
        #expect(
            body(gzip, [("Content-Encoding", "gzip"), ("Content-Type", "application/json")])
                == "\"\(self.token(gzip))\"")
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n--b--"
        #expect(
            body(multipart, [("content-type", "multipart/form-data; boundary=b")]) == "\"\(self.token(multipart))\"")
        #expect(body("plain", [("Content-Encoding", " identity ")]) == "plain")
        var headers = Redaction(rules: RedactionRules(), key: Self.key)
        #expect(
            headers.responseHeaders([("Location", "/reset?token=abc123&step=2")]).map(\.value) == [
                "/reset?token=\(self.token("abc123"))&step=2"
            ])
        // With every rule off, nothing changes.
        var off = Redaction(rules: RedactionRules(defaults: false), key: Self.key)
        #expect(
            String(
                decoding: off.body(Array(form.utf8), headers: [("Content-Type", "application/x-www-form-urlencoded")]),
                as: UTF8.self) == form)
    }

    @Test func diffValuesAreRedactedAsInTheBody() {
        var redaction = Redaction(rules: RedactionRules(pointers: ["/items/*/note"]), key: Self.key)
        #expect(redaction.value(.string("ada@example.com"), at: "/email") == .string(self.token("ada@example.com")))
        #expect(redaction.value(.string("x"), at: "/owner/customerEmail") == .string(self.token("x")))
        #expect(redaction.value(.string("CEO"), at: "/title") == .string("CEO"))
        let item = JSONValue.object([("note", .string("private")), ("id", .number(3))])
        #expect(
            redaction.value(item, at: "/items/0")
                == .object([("note", .string(self.token("private"))), ("id", .number(3))]))
        var body = Redaction(rules: RedactionRules(), key: Self.key)
        let stored = try! JSONParser.parse(
            String(decoding: body.body(Array(#"{"phone":5550101}"#.utf8)), as: UTF8.self))
        #expect(
            redaction.value(.number(5_550_101), at: "/phone") == stored["phone"],
            "numbers: the same number in the diff and in the body")
    }

    @Test func linearOnLargeBodies() {
        let item = #"{"id":"con_1","email":"ada@example.com","title":"CEO","notes":"mail grace@example.org"}"#
        let body = "[" + Array(repeating: item, count: 20_000).joined(separator: ",") + "]"
        let clock = ContinuousClock()
        var output = ""
        let elapsed = clock.measure { output = self.redact(body).0 }
        #expect(!output.contains("@example"))
        #expect(elapsed < .seconds(30), "linear, not quadratic: \(elapsed)")
    }
}

@Suite("Personal data: replaying stored bodies")
struct RedactedPointersTests {
    @Test func theRedactedPlacesOfAStoredBodyAreFound() throws {
        let stored = try JSONParser.parse(
            #"{"id":"c1","email":"[redacted:0123456789abcdef]","notes":"mail [redacted:fedcba9876543210] now","#
                + #""old":"[redacted]","#
                + #""phone":481516,"items":[{"a/b":"[redacted:00]","title":"CEO"}],"title":"CTO"}"#)
        let pointers = Redaction.redactedPointers(in: stored, rules: RedactionRules())
        #expect(pointers == ["/email", "/items/0/a~1b", "/notes", "/old", "/phone"])
        #expect(
            Redaction.redactedPointers(in: stored, rules: RedactionRules(defaults: false)) == [
                "/email", "/items/0/a~1b", "/notes", "/old",
            ])
    }
}
