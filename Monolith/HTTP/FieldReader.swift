/// A field of a request body: missing, explicitly `null`, or a value.
enum FieldValue<Value> {
    case absent
    case null
    case value(Value)

    var value: Value? {
        if case .value(let value) = self { return value }
        return nil
    }

    /// Sets a nullable property: a value sets it (as `transform` makes it), `null` clears it, absence leaves it.
    func assign(to property: inout Value?, _ transform: (Value) -> Value = { $0 }) {
        switch self {
        case .value(let value): property = transform(value)
        case .null: property = nil
        case .absent: break
        }
    }
}

/// Reads and validates the fields of a JSON object, collecting every problem so that one 422 names them all.
///
/// In ``Mode/create`` a required field must be present and not null; in ``Mode/patch`` every field may be
/// absent, and only nullable fields may be set to null.
struct FieldReader {
    enum Mode {
        case create
        case patch
    }

    /// Fields that answers carry but clients may not write.
    static let readOnlyFields: Set<String> = [
        "id", "version", "createdAt", "updatedAt", "convertedAccountId", "convertedContactId", "convertedDealId",
        "convertedAt",
    ]

    let object: [String: JSONValue]
    let mode: Mode
    /// Prefix for nested objects' field names in errors (`createDeal.amount`).
    let prefix: String
    private(set) var errors: [String: String] = [:]

    init(
        _ object: [String: JSONValue], mode: Mode, prefix: String = "", allowed: Set<String>,
        readOnly: Set<String> = Self.readOnlyFields
    ) {
        self.object = object
        self.mode = mode
        self.prefix = prefix
        for key in object.keys where !allowed.contains(key) {
            self.errors[prefix + key] = readOnly.contains(key) ? "is read-only" : "is not a known field"
        }
    }

    mutating func fail(_ key: String, _ message: String) {
        if self.errors[self.prefix + key] == nil { self.errors[self.prefix + key] = message }
    }

    /// Merges a nested reader's errors into this one.
    mutating func absorb(_ other: FieldReader) {
        self.errors.merge(other.errors) { first, _ in first }
    }

    var isValid: Bool { self.errors.isEmpty }

    /// Throws `validation_failed` (422) naming every invalid field, if any.
    func validate() throws(APIError) {
        if !self.errors.isEmpty { throw APIError.validation(self.errors) }
    }

    private mutating func raw(_ key: String, required: Bool, nullable: Bool) -> FieldValue<JSONValue> {
        switch self.object[key] {
        case .none:
            if required && self.mode == .create { self.fail(key, "is required") }
            return .absent
        case .some(.null):
            if !nullable {
                self.fail(key, "must not be null")
                return .absent
            }
            return .null
        case .some(let value):
            return .value(value)
        }
    }

    /// A string, trimmed of nothing, between `minLength` and `maxLength` characters, optionally checked by
    /// `check`, which returns a message when the value is invalid.
    mutating func string(
        _ key: String,
        required: Bool = false,
        nullable: Bool = false,
        minLength: Int = 0,
        maxLength: Int = 200,
        check: ((String) -> String?)? = nil
    ) -> FieldValue<String> {
        switch self.raw(key, required: required, nullable: nullable) {
        case .absent: return .absent
        case .null: return .null
        case .value(.string(let text)):
            let length = text.count
            if length < minLength {
                self.fail(key, minLength == 1 ? "must not be empty" : "must be at least \(minLength) characters")
            } else if length > maxLength {
                self.fail(key, "must be at most \(maxLength) characters")
            } else if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                self.fail(key, "must not contain control characters")
            } else if let message = check?(text) {
                self.fail(key, message)
            } else {
                return .value(text)
            }
            return .absent
        case .value(let other):
            self.fail(key, "must be a string, not \(other.typeName)")
            return .absent
        }
    }

    /// An integer within `range`; a number with a fraction, or a boolean, is refused.
    mutating func integer(
        _ key: String, required: Bool = false, nullable: Bool = false, range: ClosedRange<Int64>
    )
        -> FieldValue<Int64>
    {
        switch self.raw(key, required: required, nullable: nullable) {
        case .absent: return .absent
        case .null: return .null
        case .value(let value):
            let integer: Int64?
            switch value {
            case .integer(let number): integer = number
            case .number(let number) where number.rounded() == number && abs(number) < 9.0e15: integer = Int64(number)
            case .number:
                self.fail(key, "must be a whole number")
                return .absent
            default:
                self.fail(key, "must be a number, not \(value.typeName)")
                return .absent
            }
            guard let integer, range.contains(integer) else {
                self.fail(key, "must be from \(range.lowerBound) to \(range.upperBound)")
                return .absent
            }
            return .value(integer)
        }
    }

    /// One of `allowed`.
    mutating func choice(
        _ key: String, required: Bool = false, nullable: Bool = false, allowed: [String]
    )
        -> FieldValue<String>
    {
        self.string(key, required: required, nullable: nullable, maxLength: 100) { value in
            allowed.contains(value) ? nil : "must be one of: \(allowed.joined(separator: ", "))"
        }
    }

    /// An array of distinct strings.
    mutating func strings(_ key: String, maxCount: Int, maxLength: Int) -> FieldValue<[String]> {
        switch self.raw(key, required: false, nullable: false) {
        case .absent, .null: return .absent
        case .value(.array(let items)):
            if items.count > maxCount {
                self.fail(key, "must have at most \(maxCount) items")
                return .absent
            }
            var result: [String] = []
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    self.fail(key, "item \(index) must be a string, not \(item.typeName)")
                    return .absent
                }
                guard (1...maxLength).contains(text.count),
                    !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
                else {
                    self.fail(key, "item \(index) must be 1 to \(maxLength) characters, without control characters")
                    return .absent
                }
                if !result.contains(text) { result.append(text) }
            }
            return .value(result)
        case .value(let other):
            self.fail(key, "must be an array of strings, not \(other.typeName)")
            return .absent
        }
    }

    /// A nested object, read by its own reader.
    mutating func object(_ key: String) -> [String: JSONValue]? {
        switch self.raw(key, required: false, nullable: true) {
        case .absent, .null: return nil
        case .value(.object(let nested)): return nested
        case .value(let other):
            self.fail(key, "must be an object, not \(other.typeName)")
            return nil
        }
    }
}

/// Checks shared by several entities.
enum FieldChecks {
    /// A plausible e-mail address: one `@`, a local part, a domain with a dot, no spaces.
    static func email(_ text: String) -> String? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard text.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, !text.contains(" "),
            self.domain(String(parts[1])) == nil
        else { return "must be a valid address" }
        return nil
    }

    /// A DNS name: dot-separated labels of letters, digits and hyphens, with at least one dot.
    static func domain(_ text: String) -> String? {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            labels.count >= 2 && text.utf8.count <= 253
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.unicodeScalars.allSatisfy {
                        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
                    }
            }
        return valid ? nil : "must be a valid domain name"
    }

    /// An ISO 4217 code's shape: three capital letters.
    static func currency(_ text: String) -> String? {
        text.utf8.count == 3 && text.utf8.allSatisfy({ (0x41...0x5A).contains($0) })
            ? nil : "must be an ISO 4217 code such as EUR"
    }

    static func date(_ text: String) -> String? {
        Timestamp.isValidDate(text) ? nil : "must be a date as YYYY-MM-DD"
    }
}
