/// One row of the route table: which requests it covers and where they go.
///
/// A value type whose fields live in one shared, immutable box (the stage aside): copying a route, which the
/// proxy does for every request it matches, costs one reference count instead of one per field.
public struct Route: Sendable, Equatable, Identifiable {
    private struct Fields: Sendable, Equatable {
        let id: String
        let method: String
        let path: PathTemplate
        let service: String?
        let timeout: Duration
        /// `timeout` in nanoseconds, worked out once (splitting a `Duration` costs a 128-bit division).
        let timeoutNanoseconds: Int64
        let shadow: ShadowPolicy?
        let limits: LimitPolicy?
        let access: AccessRule?
    }

    private let box: SharedBox<Fields>
    /// Unique in the table: `contacts.get`.
    public var id: String { self.box.value.id }
    /// `GET`, `POST`, …
    public var method: String { self.box.value.method }
    public var path: PathTemplate { self.box.value.path }
    /// The extracted service that takes this route over; nil for routes that stay in the monolith.
    public var service: String? { self.box.value.service }
    public var stage: Stage
    /// Upstream deadline (default 30 s): past it the client gets a 504.
    public var timeout: Duration { self.box.value.timeout }
    /// The same deadline in nanoseconds (saturating), for the data plane's timers.
    public var timeoutNanoseconds: Int64 { self.box.value.timeoutNanoseconds }
    /// How the route shadows in `coexist`; nil gives the defaults.
    public var shadow: ShadowPolicy? { self.box.value.shadow }
    /// The route's own `"limits"` (and throttle keys); nil: none.
    public var limits: LimitPolicy? { self.box.value.limits }
    /// Who may call it (`"allow"`, `"deny"`, `"enforce"`); nil: anyone.
    public var access: AccessRule? { self.box.value.access }

    public init(
        id: String, method: String, path: PathTemplate, service: String?, stage: Stage,
        timeout: Duration = .seconds(30), shadow: ShadowPolicy? = nil, limits: LimitPolicy? = nil,
        access: AccessRule? = nil
    ) {
        self.box = SharedBox(
            Fields(
                id: id, method: method, path: path, service: service, timeout: timeout,
                timeoutNanoseconds: Self.nanoseconds(timeout), shadow: shadow, limits: limits, access: access))
        self.stage = stage
    }

    /// Whether the route's template matches a path's bytes (read through the box: the template is not copied).
    func matches(bytes path: UnsafeBufferPointer<UInt8>) -> Bool {
        self.box.value.path.matches(bytes: path)
    }

    /// The template ends with a slash (`/orders/`), read through the box.
    var endsWithSlash: Bool { self.box.value.path.hasTrailingSlash }

    /// The template ends with `*`, read through the box.
    var endsWithWildcard: Bool { self.box.value.path.hasTrailingWildcard }

    public static func == (lhs: Route, rhs: Route) -> Bool {
        lhs.stage == rhs.stage && (lhs.box === rhs.box || lhs.box.value == rhs.box.value)
    }

    /// A duration in nanoseconds, saturating at `Int64.max`.
    public static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (total, overflowAdding) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAdding ? .max : total
    }

    public static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    public static let defaultTimeout: Duration = .seconds(30)
}
