import JSON

/// Reads the fields of a request body with the monolith's rules and messages, collecting every problem so
/// that one 422 names them all.
///
/// When creating, a required field must be present; when patching, every field may be absent. `null` is
/// accepted only by nullable fields. The first problem found for a field is the one reported.
///
/// ```swift
/// var fields = BodyFields(body, creating: true, allowed: ["email"])
/// let email = fields.string("email", required: true, maxLength: 254, check: FieldRules.email)
/// try fields.validate()
/// ```
public struct BodyFields {
    /// A field as read: absent (or invalid), explicitly `null`, or a valid value.
    public enum Field<Value> {
        case absent
        case null
        case value(Value)
    }

    /// Fields that answers carry but clients may not write (the monolith's one list for every entity).
    public static let readOnly: Set<String> = [
        "id", "version", "createdAt", "updatedAt", "convertedAccountId", "convertedContactId", "convertedDealId",
        "convertedAt",
    ]

    private let members: [String: JSONValue]
    private let creating: Bool
    public private(set) var problems: [String: String] = [:]

    public init(_ body: JSONObject, creating: Bool, allowed: Set<String>) {
        self.members = body.members
        self.creating = creating
        for name in body.members.keys where !allowed.contains(name) {
            self.problems[name] = Self.readOnly.contains(name) ? "is read-only" : "is not a known field"
        }
    }

    /// Whether the body is a create's (required fields must be present).
    public var isCreating: Bool { self.creating }

    /// Whether the body has a member `name` (even `null`).
    public func contains(_ name: String) -> Bool { self.members[name] != nil }

    /// Records a problem with `name`, unless one is already recorded.
    public mutating func fail(_ name: String, _ problem: String) {
        if self.problems[name] == nil { self.problems[name] = problem }
    }

    /// Throws `validation_failed` (422) naming every field with a problem.
    public func validate() throws(ServiceError) {
        guard self.problems.isEmpty else { throw .validation(self.problems) }
    }

    /// The member `name`, after the presence and null rules.
    private mutating func member(_ name: String, required: Bool, nullable: Bool) -> Field<JSONValue> {
        guard let value = self.members[name] else {
            if required, self.creating { self.fail(name, "is required") }
            return .absent
        }
        if value == .null {
            if nullable { return .null }
            self.fail(name, "must not be null")
            return .absent
        }
        return .value(value)
    }

    private static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// A string of `minLength`…`maxLength` characters without control characters, which `check` (returning
    /// a problem or nil) accepts.
    public mutating func string(
        _ name: String, required: Bool = false, nullable: Bool = false, minLength: Int = 0, maxLength: Int = 200,
        check: ((String) -> String?)? = nil
    ) -> Field<String> {
        let text: String
        switch self.member(name, required: required, nullable: nullable) {
        case .absent: return .absent
        case .null: return .null
        case .value(.string(let value)): text = value
        case .value(let other):
            self.fail(name, "must be a string, not \(other.typeName)")
            return .absent
        }
        let problem: String? =
            if text.count < minLength {
                minLength == 1 ? "must not be empty" : "must be at least \(minLength) characters"
            } else if text.count > maxLength {
                "must be at most \(maxLength) characters"
            } else if Self.hasControlCharacters(text) { "must not contain control characters" } else { check?(text) }
        if let problem {
            self.fail(name, problem)
            return .absent
        }
        return .value(text)
    }

    /// One of `allowed`.
    public mutating func choice(
        _ name: String, required: Bool = false, nullable: Bool = false, allowed: [String]
    ) -> Field<String> {
        self.string(name, required: required, nullable: nullable, maxLength: 100) {
            allowed.contains($0) ? nil : "must be one of: \(allowed.joined(separator: ", "))"
        }
    }

    /// A whole number in `range` (`2.0` counts; `2.5`, booleans and strings do not).
    public mutating func integer(
        _ name: String, required: Bool = false, nullable: Bool = false, range: ClosedRange<Int64>
    ) -> Field<Int64> {
        switch self.member(name, required: required, nullable: nullable) {
        case .absent: return .absent
        case .null: return .null
        case .value(.number(let number)):
            guard number.rounded() == number, abs(number) < 9.0e15 else {
                self.fail(name, "must be a whole number")
                return .absent
            }
            guard range.contains(Int64(number)) else {
                self.fail(name, "must be from \(range.lowerBound) to \(range.upperBound)")
                return .absent
            }
            return .value(Int64(number))
        case .value(let other):
            self.fail(name, "must be a number, not \(other.typeName)")
            return .absent
        }
    }

    /// An array of strings, each 1…`maxLength` characters without control characters; repeats are dropped.
    public mutating func strings(_ name: String, maxCount: Int, maxLength: Int) -> Field<[String]> {
        switch self.member(name, required: false, nullable: false) {
        case .absent, .null: return .absent
        case .value(.array(let items)):
            guard items.count <= maxCount else {
                self.fail(name, "must have at most \(maxCount) items")
                return .absent
            }
            var distinct: [String] = []
            for (index, item) in items.enumerated() {
                guard let text = item.stringValue else {
                    self.fail(name, "item \(index) must be a string, not \(item.typeName)")
                    return .absent
                }
                guard (1...maxLength).contains(text.count), !Self.hasControlCharacters(text) else {
                    self.fail(name, "item \(index) must be 1 to \(maxLength) characters, without control characters")
                    return .absent
                }
                if !distinct.contains(text) { distinct.append(text) }
            }
            return .value(distinct)
        case .value(let other):
            self.fail(name, "must be an array of strings, not \(other.typeName)")
            return .absent
        }
    }
}

/// Checks on field values shared by the services; each returns the monolith's problem text, or nil.
public enum FieldRules {
    /// One `@`, a non-empty local part, a valid domain, no spaces.
    public static func email(_ text: String) -> String? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        let valid =
            text.utf8.count <= 254 && parts.count == 2 && !parts[0].isEmpty && !text.contains(" ")
            && self.domain(String(parts[1])) == nil
        return valid ? nil : "must be a valid address"
    }

    /// Two or more dot-separated labels of 1–63 ASCII letters, digits and inner hyphens.
    public static func domain(_ text: String) -> String? {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, text.utf8.count <= 253 else { return "must be a valid domain name" }
        for label in labels {
            let valid =
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy {
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
                }
            if !valid { return "must be a valid domain name" }
        }
        return nil
    }

    /// Three capital letters (ISO 4217's shape).
    public static func currency(_ text: String) -> String? {
        text.utf8.count == 3 && text.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
            ? nil : "must be an ISO 4217 code such as EUR"
    }
}

extension BodyFields.Field where Value == String {
    /// Sets a nullable property: a value sets it, `null` clears it, absence leaves it.
    public func assign(to property: inout String?) {
        switch self {
        case .value(let value): property = value
        case .null: property = nil
        case .absent: break
        }
    }
}
