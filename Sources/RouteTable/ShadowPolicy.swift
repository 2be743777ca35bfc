/// How a route in `coexist` shadows and compares (routes.json: a route's `"shadow"` object).
///
/// ```json
/// "shadow": { "sample": 0.1, "sampleBy": "{id}", "writes": "dry-run", "timeout": "2s",
///             "ignore": ["/updatedAt", "/items/*/version"], "arrays": { "/items": "id" },
///             "redact": ["/email"], "serve": 0.05 }
/// ```
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

    /// The fields, in one box shared by copies (copy on write): the proxy copies a route's policy on every
    /// shadowed request, and a copy then costs one reference count instead of one per array and string.
    private final class Storage: @unchecked Sendable {
        // Mutated only through `ShadowPolicy`'s setters, on a box no other copy holds.
        var sample = 1.0
        var sampleBy = SampleKey.random
        var writes = Writes.skip
        var timeout: Duration = .seconds(2)
        var ignore: [String] = []
        var arrays: [String: String] = [:]
        var redact: [String] = []
        var redactFields: [String] = []
        var serve = 0.0
        var version = ShadowPolicy.defaultVersionPointers

        init() {}

        init(copying other: Storage) {
            self.sample = other.sample
            self.sampleBy = other.sampleBy
            self.writes = other.writes
            self.timeout = other.timeout
            self.ignore = other.ignore
            self.arrays = other.arrays
            self.redact = other.redact
            self.redactFields = other.redactFields
            self.serve = other.serve
            self.version = other.version
        }
    }

    private var storage = Storage()

    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&self.storage) { self.storage = Storage(copying: self.storage) }
        return self.storage
    }

    /// Share of requests shadowed, 0–1.
    public var sample: Double {
        get { self.storage.sample }
        set { self.unique().sample = newValue }
    }
    public var sampleBy: SampleKey {
        get { self.storage.sampleBy }
        set { self.unique().sampleBy = newValue }
    }
    public var writes: Writes {
        get { self.storage.writes }
        set { self.unique().writes = newValue }
    }
    /// Deadline for the shadow's answer.
    public var timeout: Duration {
        get { self.storage.timeout }
        set { self.unique().timeout = newValue }
    }
    /// JSON pointers (with `*` for one segment) whose differences are ignored.
    public var ignore: [String] {
        get { self.storage.ignore }
        set { self.unique().ignore = newValue }
    }
    /// Arrays compared as sets keyed by a field: pointer → key field.
    public var arrays: [String: String] {
        get { self.storage.arrays }
        set { self.unique().arrays = newValue }
    }
    /// Pointers redacted before samples are stored (on top of the table's `"redact"` rules).
    public var redact: [String] {
        get { self.storage.redact }
        set { self.unique().redact = newValue }
    }
    /// Field names redacted before samples are stored (the entries of `"redact"` that are not pointers).
    public var redactFields: [String] {
        get { self.storage.redactFields }
        set { self.unique().redactFields = newValue }
    }
    /// Canary share answered by the service (the monolith is then the shadow), 0–1.
    public var serve: Double {
        get { self.storage.serve }
        set { self.unique().serve = newValue }
    }
    /// Pointers (with `*` for one segment) of the records' versions: a pair whose only disagreement includes a
    /// version there is **stale** (one side has not applied the latest change yet: sync lag), counted apart from
    /// matches and mismatches. `[]` turns this off.
    public var version: [String] {
        get { self.storage.version }
        set { self.unique().version = newValue }
    }

    public static func == (lhs: ShadowPolicy, rhs: ShadowPolicy) -> Bool {
        if lhs.storage === rhs.storage { return true }
        return lhs.sample == rhs.sample && lhs.sampleBy == rhs.sampleBy && lhs.writes == rhs.writes
            && lhs.timeout == rhs.timeout
            && lhs.ignore == rhs.ignore && lhs.arrays == rhs.arrays && lhs.redact == rhs.redact
            && lhs.redactFields == rhs.redactFields && lhs.serve == rhs.serve
            && lhs.version == rhs.version
    }

    public static let defaultVersionPointers = ["/version", "/items/*/version"]

    public init() {}

    /// The policy of a coexist route without a `"shadow"` object (one shared box, not one per request).
    public static let defaults = ShadowPolicy()

    static let keys: Set<String> = [
        "sample", "sampleBy", "writes", "timeout", "ignore", "arrays", "redact", "serve", "version",
    ]
}
