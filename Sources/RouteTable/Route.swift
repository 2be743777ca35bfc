/// One row of the route table: which requests it covers and where they go.
public struct Route: Sendable, Equatable, Identifiable {
    /// Unique in the table: `contacts.get`.
    public let id: String
    /// `GET`, `POST`, …
    public let method: String
    public let path: PathTemplate
    /// The extracted service that takes this route over; nil for routes that stay in the monolith.
    public let service: String?
    public var stage: Stage
    /// Upstream deadline (default 30 s): past it the client gets a 504.
    public let timeout: Duration
    /// How the route shadows in `coexist`; nil gives the defaults.
    public let shadow: ShadowPolicy?

    public init(id: String, method: String, path: PathTemplate, service: String?, stage: Stage, timeout: Duration = .seconds(30), shadow: ShadowPolicy? = nil) {
        self.id = id
        self.method = method
        self.path = path
        self.service = service
        self.stage = stage
        self.timeout = timeout
        self.shadow = shadow
    }

    public static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    public static let defaultTimeout: Duration = .seconds(30)
}
