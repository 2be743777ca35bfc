/// One row of the route table: which requests it covers and where they go.
///
/// A value type whose fields live in one shared, immutable box (the stage aside): copying a route, which the
/// proxy does for every request it matches, costs one reference count instead of one per field.
public struct Route: Sendable, Equatable, Identifiable {
    private final class Fields: Sendable {
        let id: String
        let method: String
        let path: PathTemplate
        let service: String?
        let timeout: Duration
        let shadow: ShadowPolicy?

        init(id: String, method: String, path: PathTemplate, service: String?, timeout: Duration, shadow: ShadowPolicy?)
        {
            self.id = id
            self.method = method
            self.path = path
            self.service = service
            self.timeout = timeout
            self.shadow = shadow
        }
    }

    private let fields: Fields
    /// Unique in the table: `contacts.get`.
    public var id: String { self.fields.id }
    /// `GET`, `POST`, …
    public var method: String { self.fields.method }
    public var path: PathTemplate { self.fields.path }
    /// The extracted service that takes this route over; nil for routes that stay in the monolith.
    public var service: String? { self.fields.service }
    public var stage: Stage
    /// Upstream deadline (default 30 s): past it the client gets a 504.
    public var timeout: Duration { self.fields.timeout }
    /// How the route shadows in `coexist`; nil gives the defaults.
    public var shadow: ShadowPolicy? { self.fields.shadow }

    public init(
        id: String, method: String, path: PathTemplate, service: String?, stage: Stage,
        timeout: Duration = .seconds(30), shadow: ShadowPolicy? = nil
    ) {
        self.fields = Fields(id: id, method: method, path: path, service: service, timeout: timeout, shadow: shadow)
        self.stage = stage
    }

    /// Whether the route's template matches a path's bytes (read through the box: the template is not copied).
    func matches(bytes path: UnsafeBufferPointer<UInt8>) -> Bool {
        self.fields.path.matches(bytes: path)
    }

    /// The template ends with a slash (`/orders/`), read through the box.
    var endsWithSlash: Bool { self.fields.path.hasTrailingSlash }

    /// The template ends with `*`, read through the box.
    var endsWithWildcard: Bool { self.fields.path.hasTrailingWildcard }

    public static func == (lhs: Route, rhs: Route) -> Bool {
        guard lhs.stage == rhs.stage else { return false }
        if lhs.fields === rhs.fields { return true }
        return lhs.id == rhs.id && lhs.method == rhs.method && lhs.path == rhs.path && lhs.service == rhs.service
            && lhs.timeout == rhs.timeout
            && lhs.shadow == rhs.shadow
    }

    public static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    public static let defaultTimeout: Duration = .seconds(30)
}
