import ArgumentParser
import Foundation
import Logging
import PostgresSupport
import SharedStore

/// A PostgreSQL location given on the command line (`--store`, `--postgres`), read the one way every command reads it.
enum StoreFlag {
    /// `store` (the `--store` flag's value), else `STRANGLER_STORE`; nil when neither names one.
    static func url(_ store: String?) -> String? {
        if let store { return store }
        let environment = ProcessInfo.processInfo.environment["STRANGLER_STORE"] ?? ""
        return environment.isEmpty ? nil : environment
    }

    /// `text`, given as `flag`, read: a refusal is a usage error that names the flag (and never the password).
    static func location(_ text: String, flag: String) throws(ValidationError) -> StoreLocation {
        do {
            return try StoreLocation.parse(text)
        } catch {
            throw ValidationError("\(flag): \(error.description)")
        }
    }

    /// `--store` (else STRANGLER_STORE) read, or nil when neither names a store: for a command that reads the data
    /// directory without one.
    static func optionalLocation(_ store: String?) throws(ValidationError) -> StoreLocation? {
        guard let text = Self.url(store) else { return nil }
        return try Self.location(text, flag: store == nil ? "STRANGLER_STORE" : "--store")
    }

    /// The shared store `--store` (else STRANGLER_STORE) names, connected; nil when neither names one.
    static func connect(_ store: String?) async throws -> SharedStore? {
        guard let location = try Self.optionalLocation(store) else { return nil }
        var logger = Logger(label: "strangler.store")
        logger.logLevel = .warning
        // A command waits longer than a proxy (3 s): nothing waits on it but its user.
        return try await SharedStore.connect(location, logger: logger, timeout: .seconds(30))
    }
}
