import NIOSSL
public import PostgresNIO

extension StoreLocation {
    /// A pool configuration for this location: its address, credentials and TLS mode, with `connectTimeout` and at
    /// most `maximumConnections` connections. `startupParameters` are sent as each connection opens (`search_path`).
    public func clientConfiguration(
        connectTimeout: Duration, maximumConnections: Int, startupParameters: [(String, String)] = []
    ) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: self.host, port: self.port, username: self.user, password: self.password, database: self.database,
            tls: Self.tls(self.tls))
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = startupParameters
        // PostgreSQL closes idle connections of its own accord on some managed services; 30 s keeps them fresh.
        configuration.options.connectionIdleTimeout = .seconds(30)
        return configuration
    }

    private static func tls(_ mode: TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }
}

/// What went wrong with a PostgreSQL operation, in words: the server's message and SQLSTATE, or the connection's
/// failure (a transaction's failure is described by the error inside it).
public func describePostgresError(_ error: any Error) -> String {
    if let error = error as? PostgresTransactionError {
        if let closureError = error.closureError { return describePostgresError(closureError) }
        if let beginError = error.beginError { return describePostgresError(beginError) }
        if let commitError = error.commitError { return describePostgresError(commitError) }
    }
    guard let error = error as? PSQLError else { return "\(error)" }
    if let message = error.serverInfo?[.message] {
        let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
        return "the server said: \(message)\(state)"
    }
    if let underlying = error.underlying { return "\(error.code): \(underlying)" }
    return "\(error.code)"
}
