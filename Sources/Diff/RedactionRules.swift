/// What is redacted before a sample is stored: field names (matched case-insensitively anywhere in a member's name,
/// at any depth, and in query parameter names), JSON pointers, the value detectors (``PersonalDataDetector``) and the
/// headers kept as they are (an allow-list; every other header's value is redacted).
///
/// ```swift
/// let rules = RedactionRules()                                     // the defaults
/// let route = rules.adding(fields: ["nickname"], pointers: ["/items/*/note"])
/// RedactionRules(defaults: false).detectors                        // false
/// ```
public struct RedactionRules: Sendable, Equatable {
    /// Field names that are personal or secret by default: `access_token`, `X-Auth-Token`, `customerEmail` and
    /// `apiKey` all contain one.
    public static let defaultFields = [
        "email", "phone", "mobile", "password", "passwd", "token", "secret", "key", "ssn", "iban", "card", "cvv",
        "authorization", "cookie",
    ]

    /// Request headers stored as they are by default (values still pass the detectors), lowercase.
    public static let defaultRequestHeaders: Set<String> = [
        "accept", "accept-encoding", "accept-language", "cache-control", "connection", "content-encoding",
        "content-language", "content-length",
        "content-type", "expect", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
        "if-unmodified-since", "pragma", "range",
        "strangler-dry-run", "transfer-encoding", "user-agent",
    ]

    /// Answer headers stored as they are by default (values still pass the detectors), lowercase.
    public static let defaultResponseHeaders: Set<String> = [
        "age", "allow", "cache-control", "connection", "content-encoding", "content-language", "content-length",
        "content-type", "date", "etag",
        "expires", "last-modified", "location", "retry-after", "server", "transfer-encoding", "vary",
    ]

    /// Headers whose values are never stored, whatever the rules (also with `defaults` off).
    public static let secretHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    /// The default fields, the detectors and the header allow-lists are on.
    public var defaults: Bool
    /// Every field name in force (lowercase): the defaults' (when on) and those added.
    public private(set) var fields: [String]
    /// RFC 6901 pointers (`*` for one segment) whose values are redacted.
    public private(set) var pointers: [String]
    /// `fields` as bytes, for matching member names without making strings.
    private var fieldBytes: [[UInt8]] = []

    /// The value detectors run on strings, free-text bodies, query values, paths and kept headers.
    public var detectors: Bool { self.defaults }

    /// `defaults` on: the default field names, detectors and header allow-lists, plus `fields` and `pointers`.
    public init(defaults: Bool = true, fields: [String] = [], pointers: [String] = []) {
        self.defaults = defaults
        self.fields = []
        self.pointers = []
        self = self.adding(fields: defaults ? Self.defaultFields : [], pointers: [])
        self = self.adding(fields: fields, pointers: pointers)
    }

    /// These rules and more (a route's own on top of the table's).
    public func adding(fields: [String], pointers: [String]) -> RedactionRules {
        var rules = self
        for field in fields.map({ $0.lowercased() }) where !field.isEmpty && !rules.fields.contains(field) {
            rules.fields.append(field)
            rules.fieldBytes.append(Array(field.utf8))
        }
        for pointer in pointers where !rules.pointers.contains(pointer) { rules.pointers.append(pointer) }
        return rules
    }

    /// Nothing at all is redacted (only the secret headers).
    public var isEmpty: Bool { !self.defaults && self.fields.isEmpty && self.pointers.isEmpty }

    /// Whether a member or parameter named `name` is redacted: it contains one of `fields`, ignoring ASCII case.
    public func redactsField(_ name: some Collection<UInt8>) -> Bool {
        guard !self.fieldBytes.isEmpty, !name.isEmpty else { return false }
        if let found = name.withContiguousStorageIfAvailable({ self.redactsField(buffer: $0) }) { return found }
        return Array(name).withUnsafeBufferPointer { self.redactsField(buffer: $0) }
    }

    private func redactsField(buffer name: UnsafeBufferPointer<UInt8>) -> Bool {
        @inline(__always) func lower(_ byte: UInt8) -> UInt8 { byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte }
        for field in self.fieldBytes where field.count <= name.count {
            search: for start in 0...(name.count - field.count) {
                for offset in 0..<field.count where lower(name[start + offset]) != field[offset] { continue search }
                return true
            }
        }
        return false
    }

    /// Whether a request header's value is stored as it is.
    public func keepsRequestHeader(_ name: String) -> Bool {
        let lowered = name.lowercased()
        if Self.secretHeaders.contains(lowered) { return false }
        return !self.defaults || Self.defaultRequestHeaders.contains(lowered)
    }

    /// Whether an answer header's value is stored as it is.
    public func keepsResponseHeader(_ name: String) -> Bool {
        let lowered = name.lowercased()
        if Self.secretHeaders.contains(lowered) { return false }
        return !self.defaults || Self.defaultResponseHeaders.contains(lowered)
    }
}
