import AdminAPI
import Foundation
import Gateway
import JSON
import ProxyTestSupport
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

/// A validator of the part of JSON Schema (2020-12) that `docs/report.schema.json` uses: `type` (one or a list),
/// `const`, `enum`, `$ref` to `#/$defs/…`, `properties`, `required`, `additionalProperties: false`, `items`,
/// `minItems`, `maxItems`, `minimum`, `maximum`, `format: date-time`, `anyOf`, and `true`. A schema using any other
/// keyword is refused, so that nothing in the schema goes unchecked.
struct SchemaValidator {
    let root: JSONValue

    static let keywords: Set<String> = [
        "$schema", "$id", "$defs", "title", "description", "type", "const", "enum", "$ref", "properties", "required",
        "additionalProperties", "items",
        "minItems", "maxItems", "minimum", "maximum", "format", "anyOf",
    ]

    /// Keywords of the schema that this validator does not know, with their paths.
    func unknownKeywords() -> [String] {
        var found: [String] = []
        func walk(_ schema: JSONValue, _ path: String) {
            guard let members = schema.objectValue else { return }
            for (key, value) in members {
                if !Self.keywords.contains(key) { found.append("\(path)/\(key)") }
                switch key {
                case "properties", "$defs":
                    for (name, item) in value.objectValue ?? [] { walk(item, "\(path)/\(key)/\(name)") }
                case "items": walk(value, "\(path)/items")
                case "anyOf":
                    for (index, item) in (value.arrayValue ?? []).enumerated() { walk(item, "\(path)/anyOf/\(index)") }
                default: break
                }
            }
        }
        walk(self.root, "#")
        return found
    }

    /// Every violation of `value`, with its JSON path; empty when it conforms.
    func validate(_ value: JSONValue) -> [String] {
        var errors: [String] = []
        self.check(value, against: self.root, at: "$", errors: &errors)
        return errors
    }

    private func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var current = self.root
        for part in reference.dropFirst(2).split(separator: "/") {
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("number", .number):
            true
        case ("integer", .number(let number)): number == number.rounded()
        default: false
        }
    }

    private func check(_ value: JSONValue, against schema: JSONValue, at path: String, errors: inout [String]) {
        if schema == .bool(true) { return }
        if let reference = schema["$ref"]?.stringValue {
            guard let target = self.resolve(reference) else {
                errors.append("\(path): unresolvable $ref \(reference)")
                return
            }
            self.check(value, against: target, at: path, errors: &errors)
        }
        if let type = schema["type"] {
            let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? "?"]
            if !types.contains(where: { Self.matches(value, type: $0) }) {
                errors.append("\(path): \(value.typeName) is not \(types.joined(separator: " or "))")
                return
            }
        }
        if let constant = schema["const"], constant != value {
            errors.append("\(path): must be \(constant.jsonText), not \(value.jsonText)")
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            errors.append("\(path): \(value.jsonText) is not one of \(JSONValue.array(options).jsonText)")
        }
        if let alternatives = schema["anyOf"]?.arrayValue {
            let passing = alternatives.contains { alternative in
                var trial: [String] = []
                self.check(value, against: alternative, at: path, errors: &trial)
                return trial.isEmpty
            }
            if !passing { errors.append("\(path): matches no alternative of anyOf") }
        }
        if let number = value.numberValue {
            if let minimum = schema["minimum"]?.numberValue, number < minimum {
                errors.append("\(path): \(number) < \(minimum)")
            }
            if let maximum = schema["maximum"]?.numberValue, number > maximum {
                errors.append("\(path): \(number) > \(maximum)")
            }
        }
        if let text = value.stringValue, schema["format"]?.stringValue == "date-time", Report.date(text) == nil {
            errors.append("\(path): \"\(text)\" is not a date-time")
        }
        if let items = value.arrayValue {
            if let minimum = schema["minItems"]?.numberValue, Double(items.count) < minimum {
                errors.append("\(path): fewer than \(Int(minimum)) items")
            }
            if let maximum = schema["maxItems"]?.numberValue, Double(items.count) > maximum {
                errors.append("\(path): more than \(Int(maximum)) items")
            }
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() {
                    self.check(item, against: itemSchema, at: "\(path)[\(index)]", errors: &errors)
                }
            }
        }
        if let members = value.objectValue {
            for key in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where value[key] == nil {
                errors.append("\(path).\(key): required, missing")
            }
            let properties = schema["properties"]
            for (key, member) in members {
                if let propertySchema = properties?[key] {
                    self.check(member, against: propertySchema, at: "\(path).\(key)", errors: &errors)
                } else if schema["additionalProperties"] == .bool(false) {
                    errors.append("\(path).\(key): not in the schema")
                }
            }
        }
    }

    /// docs/report.schema.json of this checkout.
    static func reportSchema() throws -> SchemaValidator {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("docs/report.schema.json")
        return SchemaValidator(root: try JSONParser.parse(try String(contentsOf: url, encoding: .utf8)))
    }
}

@Suite("Report: the JSON schema")
struct ReportSchemaTests {
    @Test func theSchemaUsesOnlyWhatTheValidatorChecks() throws {
        let validator = try SchemaValidator.reportSchema()
        #expect(validator.unknownKeywords() == [])
    }

    @Test func theReportValidatesAgainstTheDocumentedSchema() async throws {
        let validator = try SchemaValidator.reportSchema()
        for report in [
            try await ReportFixture.report(), try await ReportFixture.report(window: "8m30s"),
            try await ReportFixture.report(window: "1m"),
        ] {
            #expect(validator.validate(report.json) == [])
            // What the CLI reads from the proxy is the same value.
            #expect(try Report(json: report.json) == report)
        }
    }

    @Test func theValidatorCatchesDrift() async throws {
        let validator = try SchemaValidator.reportSchema()
        let json = try await ReportFixture.report().json
        guard case .object(var members) = json else {
            Issue.record("not an object")
            return
        }
        // An undocumented key, a missing key, and a wrong type are each caught.
        members.append(("extra", .bool(true)))
        members.removeAll { $0.key == "tableHash" }
        if let index = members.firstIndex(where: { $0.key == "bucketSeconds" }) { members[index].value = .string("60") }
        let errors = validator.validate(.object(members))
        #expect(errors.contains("$.extra: not in the schema"))
        #expect(errors.contains("$.tableHash: required, missing"))
        #expect(errors.contains("$.bucketSeconds: string is not integer"))
        // Deep inside: a sample's servedBy outside its enum.
        let text = json.jsonText.replacingOccurrences(of: #""servedBy":"monolith""#, with: #""servedBy":"proxy""#)
        #expect(
            validator.validate(try JSONParser.parse(text)).contains {
                $0.hasSuffix(".servedBy: \"proxy\" is not one of [\"monolith\",\"service\"]")
            })
    }

    @Test func theJSONCarriesTheFixturesCounts() async throws {
        let json = try await ReportFixture.report().json
        #expect(json["schema"]?.stringValue == "strangler-report/1")
        #expect(json["generatedAt"]?.stringValue == "2026-11-27T09:10:00Z")
        #expect(json["summary"]?.jsonText == #"{"routes":4,"ready":1,"blocked":1,"eliminated":1,"noService":1}"#)
        let route = try #require(json["routes"]?.at(0))
        #expect(route["id"]?.stringValue == "contacts.get")
        #expect(
            route["gate"]?.jsonText
                == #"{"compared":30,"matched":28,"mismatched":2,"explained":1,"matchRate":0.933333,"confidence":0.95,"#
                + #""interval":{"lower":0.786765,"upper":0.981523},"gateLowerBound":0.833296,"minSamples":100,"#
                + #""minMatchRate":0.9}"#
        )
        #expect(
            route["traffic"]?.jsonText
                == #"{"compared":30,"matched":28,"mismatched":2,"matchRate":0.933333,"shadowErrors":2,"timeouts":1,"#
                + #""dropped":1,"skipped":3,"stale":1,"noiseChecks":0,"tooLarge":0,"upgrades":0,"unanswered":0,"#
                + #""earlyAnswers":0,"inFlight":0,"overflow":0,"unhealthy":0,"firstSeen":"2026-11-27T09:00:10Z","#
                + #""lastSeen":"2026-11-27T09:02:10Z"}"#
        )
        #expect(route["verdict"]?["status"]?.stringValue == "blocked")
        #expect(route["verdict"]?["reasons"]?.arrayValue?.count == 3)
        #expect(
            route["buckets"]?.jsonText
                == #"[{"start":"2026-11-27T09:00:00Z","compared":10,"matched":10,"mismatched":0,"matchRate":1},"#
                + #"{"start":"2026-11-27T09:01:00Z","compared":10,"matched":9,"mismatched":1,"matchRate":0.9},"#
                + #"{"start":"2026-11-27T09:02:00Z","compared":10,"matched":9,"mismatched":1,"matchRate":0.9}]"#
        )
        let signatures = route["signatures"]?.arrayValue ?? []
        #expect(signatures.map { $0["id"]?.stringValue } == ["e1", "s2"])
        #expect(signatures[0]["triage"] == .null)
        #expect(
            signatures[1]["triage"]?.jsonText
                == #"{"decision":"accepted","reason":"404 right after a delete: sync lag","actor":"alice","#
                + #""at":"2026-11-27T09:03:20Z"}"#
        )
        let sample = try #require(signatures[0]["samples"]?.at(0))
        #expect(sample["request"]?["query"]?.stringValue == "expand=<tags>")
        #expect(sample["monolith"]?["body"]?.stringValue == ReportFixture.monolithBody)
        #expect(
            sample["differences"]?.jsonText
                == #"[{"at":"/email","kind":"changed","monolith":"a@example.com","service":"b@example.com"}]"#)
        #expect(
            json["routes"]?.at(1)?["verdict"]?.jsonText
                == #"{"status":"ready","next":"eliminate","text":"ready to eliminate","reasons":[],"notMeasured":[]}"#)
        #expect(json["routes"]?.at(3)?["verdict"]?["status"]?.stringValue == "no-service")
    }
}
