import ArgumentParser
import Foundation
import PostgresSupport

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
}
