/// How a route in `coexist` shadows and compares (routes.json: a route's `"shadow"` object).
///
/// ```json
/// "shadow": { "sample": 0.1, "sampleBy": "{id}", "writes": "dry-run", "timeout": "2s",
///             "ignore": ["/updatedAt", "/items/*/version"], "arrays": { "/items": "id" },
///             "redact": ["/email"], "serve": 0.05 }
/// ```
@dynamicMemberLookup
public struct ShadowPolicy: Sendable, Equatable {
    public enum SampleKey: Sendable, Equatable {
        /// Random per request.
        case random
        /// A path parameter of the route (`{id}`): an entity's whole flow is shadowed or not.
        case pathParameter(String)
        /// A request header (`header:X-Account-Id`).
        case header(String)
    }

    public enum Writes: String, Sendable, Equatable {
        /// Non-idempotent requests are not shadowed.
        case skip
        /// They are shadowed with `Strangler-Dry-Run: 1`, and the shadow rolls its transaction back.
        case dryRun = "dry-run"
    }

    /// What a policy holds; read and set as the policy's own properties (`policy.timeout`).
    public struct Fields: Sendable, Equatable {
        /// Share of requests shadowed, 0–1.
        public var sample = 1.0
        public var sampleBy = SampleKey.random
        public var writes = Writes.skip
        /// Deadline for the shadow's answer.
        public var timeout: Duration = .seconds(2)
        /// JSON pointers (with `*` for one segment) whose differences are ignored.
        public var ignore: [String] = []
        /// Arrays compared as sets keyed by a field: pointer → key field.
        public var arrays: [String: String] = [:]
        /// Pointers redacted before samples are stored (on top of the table's `"redact"` rules).
        public var redact: [String] = []
        /// Field names redacted before samples are stored (the entries of `"redact"` that are not pointers).
        public var redactFields: [String] = []
        /// Canary share answered by the service (the monolith is then the shadow), 0–1.
        public var serve = 0.0
        /// Pointers (with `*` for one segment) of the records' versions: a pair whose only disagreement includes a
        /// version there is **stale** (one side has not applied the latest change yet: sync lag), counted apart from
        /// matches and mismatches. `[]` turns this off.
        public var version = ShadowPolicy.defaultVersionPointers
    }

    /// The fields, in one box shared by copies (copy on write): the proxy copies a route's policy on every
    /// shadowed request, and a copy then costs one reference count instead of one per array and string.
    @usableFromInline
    final class Storage: @unchecked Sendable {
        // Mutated only through the setter below, on a box no other copy holds.
        @usableFromInline var fields: Fields

        init(_ fields: Fields) {
            self.fields = fields
        }
    }

    @usableFromInline var storage = Storage(Fields())

    @usableFromInline
    mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&self.storage) { self.storage = Storage(self.storage.fields) }
        return self.storage
    }

    @inlinable
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<Fields, Value>) -> Value {
        get { self.storage.fields[keyPath: keyPath] }
        set { self.unique().fields[keyPath: keyPath] = newValue }
    }

    public static func == (lhs: ShadowPolicy, rhs: ShadowPolicy) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields
    }

    public static let defaultVersionPointers = ["/version", "/items/*/version"]

    public init() {}

    /// The policy of a coexist route without a `"shadow"` object (one shared box, not one per request).
    public static let defaults = ShadowPolicy()

    static let keys: Set<String> = [
        "sample", "sampleBy", "writes", "timeout", "ignore", "arrays", "redact", "serve", "version",
    ]
}
