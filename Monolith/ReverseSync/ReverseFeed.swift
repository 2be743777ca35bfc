/// An extracted service whose own event feed the monolith follows (reverse sync): once a write route is
/// eliminated the service owns the entity, and the monolith keeps its tables current from the service's changes.
///
/// Given as `NAME=URL` on the command line: `contacts=http://127.0.0.1:8082`.
public struct ReverseFeed: Sendable, Equatable {
    /// The entity each service owns, as its events' `aggregatetype`.
    static let aggregates: [String: String] = ["contacts": "contact", "leads": "lead", "deals": "deal"]

    /// `contacts`, `leads` or `deals`.
    public let service: String
    /// The service's base URL, `http://host:port`.
    public let url: String
    let client: FeedClient

    /// A problem with a `NAME=URL` argument, saying which part is wrong.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public init(service: String, url: String) throws(Invalid) {
        guard Self.aggregates[service] != nil else {
            throw Invalid(
                description:
                    "unknown service \"\(service)\": reverse sync follows one of "
                    + "\(Self.aggregates.keys.sorted().joined(separator: ", "))"
            )
        }
        guard let client = FeedClient(url: url) else {
            throw Invalid(description: "\"\(url)\" is not a service URL of the form http://host:port")
        }
        self.service = service
        self.url = url
        self.client = client
    }

    /// Reads `NAME=URL`.
    public init(argument: String) throws(Invalid) {
        guard let equals = argument.firstIndex(of: "=") else {
            throw Invalid(description: "\"\(argument)\" is not NAME=URL (for example contacts=http://127.0.0.1:8082)")
        }
        try self.init(service: String(argument[..<equals]), url: String(argument[argument.index(after: equals)...]))
    }

    /// The aggregate type this service may change.
    var aggregateType: String { Self.aggregates[self.service]! }

    public static func == (lhs: ReverseFeed, rhs: ReverseFeed) -> Bool {
        lhs.service == rhs.service && lhs.url == rhs.url
    }
}
