public import JSON

/// The evidence a route needs to change stage (routes.json: the top-level `"gates"` object). Every key is optional;
/// what is left out keeps its default.
///
/// ```json
/// "gates": {
///   "coexist":   { "health": true, "maxSyncLag": 99 },
///   "eliminate": { "minSamples": 1000, "minMatchRate": 0.999, "confidence": 0.95, "maxSyncLag": 0,
///                  "reconcile": true, "reconcileMaxAge": "24h", "triage": true, "dryRun": true, "reverseSync": true },
///   "rollback":  { "reverseSync": true }
/// }
/// ```
public struct GatePolicy: Sendable, Equatable {
    /// transform → coexist.
    public struct Coexist: Sendable, Equatable {
        /// The service must answer `GET /healthz` with a 2xx.
        public var health = true
        /// Largest sync lag (events the service has not applied yet) allowed; the default is "under 100". nil
        /// (`false` or `null` in routes.json): not a gate, for an application that cannot tell its lag.
        public var maxSyncLag: Int? = 99

        public init() {}
    }

    /// coexist → eliminate.
    public struct Eliminate: Sendable, Equatable {
        /// Compared samples needed since the route's last stage change.
        public var minSamples = 1000
        /// The lower bound of the match rate's Wilson score interval must reach this.
        public var minMatchRate = 0.999
        /// The interval's confidence level (two-sided).
        public var confidence = 0.95
        /// Largest sync lag allowed; nil (`false` or `null`): not a gate.
        public var maxSyncLag: Int? = 0
        /// The service's last `strangler reconcile` must have been clean.
        public var reconcile = true
        /// …and no older than this (nil: any age). A reconcile long past says little about the data now.
        public var reconcileMaxAge: Duration? = .seconds(24 * 3600)
        /// No mismatch signature seen since the last stage change may be left untriaged.
        public var triage = true
        /// Write routes need dry-run comparisons (shadow.writes "dry-run").
        public var dryRun = true
        /// Write routes need the service's reverse sync (service → monolith) running.
        public var reverseSync = true

        public init() {}
    }

    /// eliminate → coexist (and eliminate → transform).
    public struct Rollback: Sendable, Equatable {
        /// Write routes need the reverse sync running, so that the monolith has every write the service took.
        public var reverseSync = true

        public init() {}
    }

    public var coexist = Coexist()
    public var eliminate = Eliminate()
    public var rollback = Rollback()

    public init() {}

    /// The defaults: what a table without `"gates"` gets.
    public static let defaults = GatePolicy()

    static let keys: Set<String> = ["coexist", "eliminate", "rollback"]
    static let coexistKeys: Set<String> = ["health", "maxSyncLag"]
    static let eliminateKeys: Set<String> = [
        "minSamples", "minMatchRate", "confidence", "maxSyncLag", "reconcile", "reconcileMaxAge", "triage", "dryRun",
        "reverseSync",
    ]
    static let rollbackKeys: Set<String> = ["reverseSync"]

    /// Reads a `"gates"` object, reporting every problem with its JSON path. Every gate can be turned off with
    /// `false`: a check with `false`, a threshold with `false` (none needed: `minSamples` 0, `minMatchRate` 0, no
    /// `maxSyncLag`, any `reconcileMaxAge`). `confidence` is the interval's level, not a gate.
    static func parse(_ value: JSONValue, path base: String, problem: (String, String) -> Void) -> GatePolicy {
        var policy = GatePolicy()
        guard let members = value.objectValue else {
            problem(base, "must be an object (with coexist, eliminate, rollback), not \(value.typeName)")
            return policy
        }
        for member in members where !Self.keys.contains(member.key) {
            problem(
                "\(base).\(member.key)", "unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        func section(_ name: String, _ keys: Set<String>) -> JSONValue? {
            guard let item = value[name] else { return nil }
            guard let fields = item.objectValue else {
                problem("\(base).\(name)", "must be an object, not \(item.typeName)")
                return nil
            }
            for field in fields where !keys.contains(field.key) {
                problem(
                    "\(base).\(name).\(field.key)",
                    "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
            }
            return item
        }
        func bool(_ item: JSONValue, _ section: String, _ key: String, into target: inout Bool) {
            guard let field = item[key] else { return }
            guard let flag = field.boolValue else {
                problem("\(base).\(section).\(key)", "must be true or false, not \(field.typeName)")
                return
            }
            target = flag
        }
        /// A whole number; `false` gives `off`.
        func count(_ item: JSONValue, _ section: String, _ key: String, off: Int, into target: inout Int) {
            var value: Int? = target
            limit(item, section, key, offAlsoNull: false, into: &value)
            target = value ?? off
        }
        /// A whole number, or nil for `false` (and for `null` when `offAlsoNull`).
        func limit(_ item: JSONValue, _ section: String, _ key: String, offAlsoNull: Bool, into target: inout Int?) {
            guard let field = item[key] else { return }
            if field == .bool(false) || (offAlsoNull && field == .null) {
                target = nil
                return
            }
            guard let number = field.numberValue, number >= 0, number <= 1e12, number == number.rounded() else {
                problem(
                    "\(base).\(section).\(key)",
                    "must be a whole number (0 or more), or false\(offAlsoNull ? " or null" : "") to turn it off")
                return
            }
            target = Int(number)
        }
        func share(
            _ item: JSONValue, _ section: String, _ key: String, range: ClosedRange<Double>, off: Double?,
            into target: inout Double
        ) {
            guard let field = item[key] else { return }
            if let off, field == .bool(false) {
                target = off
                return
            }
            guard let number = field.numberValue, range.contains(number) else {
                let or = off == nil ? " (the interval's confidence level, not a gate)" : ", or false to turn it off"
                problem(
                    "\(base).\(section).\(key)", "must be a number from \(range.lowerBound) to \(range.upperBound)" + or
                )
                return
            }
            target = number
        }
        if let item = section("coexist", Self.coexistKeys) {
            bool(item, "coexist", "health", into: &policy.coexist.health)
            limit(item, "coexist", "maxSyncLag", offAlsoNull: true, into: &policy.coexist.maxSyncLag)
        }
        if let item = section("eliminate", Self.eliminateKeys) {
            count(item, "eliminate", "minSamples", off: 0, into: &policy.eliminate.minSamples)
            share(item, "eliminate", "minMatchRate", range: 0...1, off: 0, into: &policy.eliminate.minMatchRate)
            share(item, "eliminate", "confidence", range: 0.5...0.9999, off: nil, into: &policy.eliminate.confidence)
            limit(item, "eliminate", "maxSyncLag", offAlsoNull: true, into: &policy.eliminate.maxSyncLag)
            bool(item, "eliminate", "reconcile", into: &policy.eliminate.reconcile)
            if let field = item["reconcileMaxAge"] {
                if field == .null || field == .bool(false) {
                    policy.eliminate.reconcileMaxAge = nil
                } else if let text = field.stringValue, let age = DurationText.parse(text), age > .zero {
                    policy.eliminate.reconcileMaxAge = age
                } else {
                    problem(
                        "\(base).eliminate.reconcileMaxAge",
                        "must be a duration such as \"24h\" or \"90m\", or null or false for any age")
                }
            }
            bool(item, "eliminate", "triage", into: &policy.eliminate.triage)
            bool(item, "eliminate", "dryRun", into: &policy.eliminate.dryRun)
            bool(item, "eliminate", "reverseSync", into: &policy.eliminate.reverseSync)
        }
        if let item = section("rollback", Self.rollbackKeys) {
            bool(item, "rollback", "reverseSync", into: &policy.rollback.reverseSync)
        }
        return policy
    }
}
