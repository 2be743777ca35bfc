import JSON

/// What the diff store keeps of personal data (routes.json: the table-wide `"redact"` object and `"retention"`).
///
/// ```json
/// "redact": { "defaults": true, "fields": ["nickname"], "pointers": ["/items/*/note"] },
/// "retention": "30d"
/// ```
///
/// Every key is optional: without a `"redact"` object the default field names, value detectors and header allow-lists
/// apply (`docs/shadow.md`); `"defaults": false` turns them off (the report says so). A route's `shadow.redact` adds to
/// these. Without `"retention"`, samples are kept until purged.
public struct PrivacyPolicy: Sendable, Equatable {
    /// The default field names, value detectors and header allow-lists apply.
    public var defaults = true
    /// Field names redacted on top of the defaults (matched case-insensitively anywhere in a member's name).
    public var fields: [String] = []
    /// RFC 6901 pointers (`*` for one segment) redacted in every route's bodies.
    public var pointers: [String] = []
    /// Samples older than this are deleted; nil keeps them until purged.
    public var retention: Duration?
    /// `retention` as written (`"30d"`).
    public var retentionText: String?

    /// The defaults: everything personal redacted, samples kept until purged.
    public static let defaults = PrivacyPolicy()

    static let keys: Set<String> = ["defaults", "fields", "pointers"]

    /// Reads `"redact"` (nil when absent) and `"retention"` (nil when absent) of a table, reporting problems by path.
    static func parse(redact: JSONValue?, retention: JSONValue?, problem: (String, String) -> Void) -> PrivacyPolicy {
        var policy = PrivacyPolicy()
        if let redact {
            if let members = redact.objectValue {
                for member in members where !Self.keys.contains(member.key) {
                    problem(
                        "$.redact.\(member.key)",
                        "unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
                }
                switch redact["defaults"] {
                case .none: break
                case .some(.bool(let value)): policy.defaults = value
                case .some(let other): problem("$.redact.defaults", "must be true or false, not \(other.typeName)")
                }
                policy.fields = Self.strings(redact["fields"], path: "$.redact.fields", problem: problem) { text in
                    text.isEmpty || text.hasPrefix("/")
                        ? "\"\(text)\" is not a field name (pointers go in $.redact.pointers)" : nil
                }
                policy.pointers = Self.strings(redact["pointers"], path: "$.redact.pointers", problem: problem) {
                    text in
                    text.isEmpty || text.hasPrefix("/")
                        ? nil : "\"\(text)\" is not a JSON pointer (it must start with '/')"
                }
            } else {
                problem(
                    "$.redact",
                    "must be an object such as { \"defaults\": true, \"fields\": [\"nickname\"], \"pointers\": "
                        + "[\"/notes\"] }, not \(redact.typeName)"
                )
            }
        }
        if let retention {
            if let text = retention.stringValue, let duration = DurationText.parse(text), duration > .zero {
                policy.retention = duration
                policy.retentionText = text
            } else {
                problem(
                    "$.retention", "must be a duration such as \"30d\", \"12h\" or \"90m\", not \(retention.jsonText)")
            }
        }
        return policy
    }

    /// An array of strings, each checked by `check` (a reason to refuse it, or nil).
    private static func strings(
        _ value: JSONValue?, path: String, problem: (String, String) -> Void, check: (String) -> String?
    ) -> [String] {
        guard let value else { return [] }
        guard let items = value.arrayValue else {
            problem(path, "must be an array of strings, not \(value.typeName)")
            return []
        }
        if let index = items.firstIndex(where: { $0.stringValue == nil }) {
            problem("\(path)[\(index)]", "must be a string, not \(items[index].typeName)")
            return []
        }
        var texts: [String] = []
        for (index, text) in items.compactMap(\.stringValue).enumerated() {
            if let reason = check(text) {
                problem("\(path)[\(index)]", reason)
            } else {
                texts.append(text)
            }
        }
        return texts
    }
}
