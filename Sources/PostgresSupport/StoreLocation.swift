public import Foundation

/// Where the shared store is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`
/// (`postgresql://` too), as libpq writes it. The password may also come from `PGPASSWORD`.
///
/// ```swift
/// let location = try StoreLocation.parse("postgres://strangler@127.0.0.1:5432/routes?sslmode=disable")
/// print(location)   // postgres://strangler@127.0.0.1:5432/routes (the password never printed)
/// ```
public struct StoreLocation: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it (libpq's default).
        case prefer
        /// TLS or no connection, the server's certificate verified.
        case require
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLSMode

    /// The location refused, with what is wrong and where.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(user: String, password: String?, host: String, port: Int, database: String, tls: TLSMode) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.tls = tls
    }

    /// Reads a location; `environment`'s `PGPASSWORD` is the password when the URL has none.
    public static func parse(
        _ text: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(Invalid) -> StoreLocation {
        func refuse(_ why: String) -> Invalid {
            Invalid(
                description:
                    "store \(Self.redacted(text)): \(why) (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw refuse("not a URL")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw refuse("the scheme is \(scheme)://; only postgres:// (PostgreSQL) is a shared store")
        }
        guard let user = components.user, !user.isEmpty else { throw refuse("no user before @") }
        guard let host = components.host, !host.isEmpty else { throw refuse("no host") }
        let port: Int
        if let given = components.port {
            guard (1...65535).contains(given) else { throw refuse("port \(given) is not between 1 and 65535") }
            port = given
        } else {
            port = 5432
        }
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.isEmpty else { throw refuse("no database after the host (/DATABASE)") }
        guard !path.contains("/") else { throw refuse("the database name \"\(path)\" holds a /") }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else {
                    throw refuse(
                        "sslmode=\(item.value ?? "") is not one of "
                            + TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
                }
                tls = mode
            default:
                throw refuse("unknown parameter \(item.name) (known: sslmode)")
            }
        }
        let password = components.password ?? environment["PGPASSWORD"]
        return StoreLocation(
            user: user, password: password, host: host, port: port, database: path, tls: tls)
    }

    /// The URL without its password.
    public var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        let query = self.tls == .prefer ? "" : "?sslmode=\(self.tls.rawValue)"
        return "postgres://\(self.user)@\(host):\(self.port)/\(self.database)\(query)"
    }

    /// `text` with any password replaced by `***`, for messages about a location that did not parse.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at else {
            return text
        }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
