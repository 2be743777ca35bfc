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

    /// Share of requests shadowed, 0–1.
    public var sample: Double = 1.0
    public var sampleBy: SampleKey = .random
    public var writes: Writes = .skip
    /// Deadline for the shadow's answer.
    public var timeout: Duration = .seconds(2)
    /// JSON pointers (with `*` for one segment) whose differences are ignored.
    public var ignore: [String] = []
    /// Arrays compared as sets keyed by a field: pointer → key field.
    public var arrays: [String: String] = [:]
    /// Pointers masked before samples are stored.
    public var redact: [String] = []
    /// Canary share answered by the service (the monolith is then the shadow), 0–1.
    public var serve: Double = 0.0
    /// Pointers (with `*` for one segment) of the records' versions: a pair whose only disagreement includes a
    /// version there is **stale** (one side has not applied the latest change yet: sync lag), counted apart from
    /// matches and mismatches. `[]` turns this off.
    public var version: [String] = ShadowPolicy.defaultVersionPointers

    public static let defaultVersionPointers = ["/version", "/items/*/version"]

    public init() {}

    static let keys: Set<String> = ["sample", "sampleBy", "writes", "timeout", "ignore", "arrays", "redact", "serve", "version"]
}
