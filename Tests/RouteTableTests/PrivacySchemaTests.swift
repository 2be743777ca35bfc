import JSON
import Testing

@testable import RouteTable

@Suite("routes.json: redact and retention")
struct PrivacySchemaTests {
    static func table(_ top: String, shadow: String = "{}") -> String {
        """
        { \(top.isEmpty ? "" : top + ", ")"monolith": "http://127.0.0.1:8081", "services": { "contacts": \
        "http://127.0.0.1:8082" },
          "routes": [ { "id": "contacts.get", "method": "GET", "path": "/contacts/{id}", "service": "contacts", \
        "stage": "coexist", "shadow": \(shadow) } ] }
        """
    }

    func problems(_ top: String, shadow: String = "{}") -> [String] {
        do {
            _ = try RouteTable.parse(Self.table(top, shadow: shadow))
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func withoutKeysTheDefaultsApply() throws {
        let table = try RouteTable.parse(Self.table(""))
        #expect(table.privacy == .defaults)
        #expect(
            table.privacy.defaults && table.privacy.fields.isEmpty && table.privacy.pointers.isEmpty
                && table.privacy.retention == nil)
    }

    @Test func givenKeysAreRead() throws {
        let table = try RouteTable.parse(
            Self.table(
                #""redact": { "defaults": false, "fields": ["nickname"], "pointers": ["/items/*/note"] }, "#
                    + #""retention": "30d""#
            ))
        #expect(!table.privacy.defaults)
        #expect(table.privacy.fields == ["nickname"] && table.privacy.pointers == ["/items/*/note"])
        #expect(table.privacy.retention == .seconds(30 * 86400) && table.privacy.retentionText == "30d")
        #expect(try RouteTable.parse(Self.table(#""retention": "12h""#)).privacy.retention == .seconds(12 * 3600))
    }

    @Test func aRouteRedactTakesPointersAndFieldNames() throws {
        let table = try RouteTable.parse(
            Self.table("", shadow: #"{ "redact": ["/email", "customerPhone", "", "/items/*/ssn"] }"#))
        let shadow = try #require(table.routes.first?.shadow)
        #expect(shadow.redact == ["/email", "", "/items/*/ssn"])
        #expect(shadow.redactFields == ["customerPhone"])
        #expect(
            self.problems("", shadow: #"{ "redact": "/email" }"#) == [
                #"$.routes[0].shadow.redact: must be an array of JSON pointers such as "/email" or field names such "#
                    + #"as "email""#
            ])
    }

    @Test func badValuesAreRefusedWithTheirPath() {
        #expect(self.problems(#""redact": true"#).first?.hasPrefix("$.redact: must be an object such as") == true)
        #expect(
            self.problems(#""redact": { "default": false }"#) == [
                "$.redact.default: unknown key (expected one of: defaults, fields, pointers)"
            ])
        #expect(
            self.problems(#""redact": { "defaults": "no" }"#) == [
                "$.redact.defaults: must be true or false, not string"
            ])
        #expect(
            self.problems(#""redact": { "fields": "email" }"#) == [
                "$.redact.fields: must be an array of strings, not string"
            ])
        #expect(
            self.problems(#""redact": { "fields": ["email", 3] }"#) == [
                "$.redact.fields[1]: must be a string, not number"
            ])
        #expect(
            self.problems(#""redact": { "fields": ["/email"] }"#) == [
                #"$.redact.fields[0]: "/email" is not a field name (pointers go in $.redact.pointers)"#
            ])
        #expect(
            self.problems(#""redact": { "pointers": ["email"] }"#) == [
                #"$.redact.pointers[0]: "email" is not a JSON pointer (it must start with '/')"#
            ])
        #expect(
            self.problems(#""retention": "a month""#) == [
                #"$.retention: must be a duration such as "30d", "12h" or "90m", not "a month""#
            ])
        #expect(
            self.problems(#""retention": 30"#) == [
                #"$.retention: must be a duration such as "30d", "12h" or "90m", not 30"#
            ])
        #expect(self.problems(#""retention": "0d""#).count == 1)
    }
}
