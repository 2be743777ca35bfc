public import ArgumentParser
import DiffStore
import Foundation

/// `strangler purge`: deletes stored diff samples (requests and answers kept as evidence), all of them or
/// one route's, or those recorded before a date. Counters and signature counts stay: they hold no request data.
public struct PurgeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete stored diff samples (all, one route's, or those older than a date).",
        discussion: """
            Works on <data>/diffs.sqlite directly; the proxy may keep running.

            Examples:
              strangler purge                                  # every sample
              strangler purge --route contacts.get
              strangler purge --before 2026-11-01              # recorded before that day (UTC)
              strangler purge --before 2026-11-01T12:00:00Z --route deals.list
            """
    )

    @Option(help: "Only this route's samples.")
    public var route: String?

    @Option(help: ArgumentHelp("Only samples recorded before this time: YYYY-MM-DD (UTC) or an ISO 8601 timestamp.", valueName: "date"))
    public var before: String?

    @Option(help: "The proxy's data directory (holds diffs.sqlite).")
    public var data: String = ".strangler"

    public init() {}

    public func validate() throws {
        if let before, Self.parseDate(before) == nil {
            throw ValidationError("--before must be a date (2026-11-01) or an ISO 8601 timestamp (2026-11-01T12:00:00Z), not \"\(before)\"")
        }
        if let route, route.isEmpty { throw ValidationError("--route must not be empty") }
    }

    public func run() throws {
        let path = URL(fileURLWithPath: self.data).appendingPathComponent("diffs.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            FileHandle.standardError.write(Data("strangler purge: no diff store at \(path) (is --data the proxy's data directory?)\n".utf8))
            throw ExitCode(2)
        }
        let store = try DiffStore.open(path: path)
        let deleted = try store.purge(route: self.route, before: self.before.flatMap(Self.parseDate))
        print("deleted \(deleted) sample\(deleted == 1 ? "" : "s")")
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
