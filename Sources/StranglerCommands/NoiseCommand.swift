import AdminAPI
public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import NIOHTTP1
import Reports
import RouteTable

/// `strangler noise ROUTE`: the ignore rules that noise learning proposes for a route, and `--apply` to add
/// them to the route's `shadow.ignore` through the admin API (so the change is checked, written back to
/// routes.json atomically, and audited). Nothing is ever applied without `--apply`.
public struct NoiseCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "noise",
        abstract: "Propose ignore rules learned from shadow traffic for a route; --apply writes them to routes.json.",
        discussion: """
            For a small share of shadowed GETs (--noise-share of `strangler proxy`, 1% by default) the proxy asks the \
            answering side twice; pointers whose values differ between those two answers are noise (timestamps, \
            generated ids). This command lists them with how often they differed, and proposes those not ignored yet. \
            Review them; `--apply` adds them to the route's "shadow.ignore" through the admin API (If-Match, audited \
            as actor strangler-cli).

            Exit status: 0 done (or nothing to propose), 2 error (admin API unreachable, unknown route, …).

            Example:
              strangler noise contacts.get
              strangler noise contacts.get --apply --reason "timestamps differ on every read"
              strangler noise contacts.get --output json
            """
    )

    @Argument(help: "The route id (as in routes.json).")
    public var route: String

    @OptionGroup public var endpoint: AdminOptions

    @Option(help: "Propose only pointers that differed at least this many times.")
    public var minCount: Int = 1

    @Flag(help: "Add the proposed rules to the route's shadow.ignore in routes.json (through the admin API).")
    public var apply: Bool = false

    @Option(
        help: ArgumentHelp(
            "table or json (the checks, every pointer with its count, the proposed rules, and what --apply did).",
            valueName: "format"))
    public var output: OutputFormat = .table

    @Option(help: "Why, for the audit log (with --apply).")
    public var reason: String?

    public init() {}

    public func validate() throws {
        guard self.minCount >= 1 else { throw ValidationError("--min-count must be 1 or more, not \(self.minCount)") }
        guard !self.route.isEmpty else { throw ValidationError("ROUTE must be a route id such as contacts.get") }
    }

    public func run() async throws {
        do {
            try await self.execute()
        } catch {
            FileHandle.standardError.write(Data("strangler noise: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }

    private func execute() async throws(AdminClient.Failure) {
        let client = try self.endpoint.client()
        let encoded = self.route.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? self.route
        let answer = try await client.send(.GET, "/admin/noise?route=\(encoded)")
        guard answer.status == 200, let noise = answer.json else {
            throw AdminClient.Failure(description: "GET /admin/noise answered \(answer.status): \(answer.errorMessage)")
        }
        let checks = Int(noise["checks"]?.numberValue ?? 0)
        let pointers = (noise["pointers"]?.arrayValue ?? []).compactMap { item -> (String, Int)? in
            guard let pointer = item["pointer"]?.stringValue, let count = item["count"]?.numberValue else { return nil }
            return (pointer, Int(count))
        }
        let counts = Dictionary(pointers, uniquingKeysWith: +)
        let proposed = (noise["proposed"]?.arrayValue ?? []).compactMap(\.stringValue).filter {
            (counts[$0] ?? 0) >= self.minCount
        }
        if self.output == .json {
            var members: [(key: String, value: JSONValue)] = [
                ("route", .string(self.route)), ("checks", .number(Double(checks))),
                (
                    "pointers",
                    .array(pointers.map { .object([("pointer", .string($0.0)), ("count", .number(Double($0.1)))]) })
                ),
                ("proposed", .array(proposed.map(JSONValue.string))),
            ]
            if self.apply, !proposed.isEmpty {
                let version = try await self.applyRules(proposed, client: client, checks: checks, quiet: true)
                members.append(
                    (
                        "applied",
                        .object([
                            ("rules", .array(proposed.map(JSONValue.string))), ("version", .number(Double(version))),
                        ])
                    ))
            }
            print(JSONValue.object(members).prettyJSONText)
            return
        }
        var lines = ["\(self.route): \(checks) noise check\(checks == 1 ? "" : "s") (the answering side asked twice)"]
        if pointers.isEmpty {
            lines.append(
                checks == 0
                    ? "  no check yet: the route needs shadowed GET traffic"
                    : "  no pointer differed between two answers")
        }
        let width = pointers.map(\.0.count).max() ?? 0
        for (pointer, count) in pointers {
            let share = checks > 0 ? " (\(Int((Double(count) / Double(checks) * 100).rounded()))%)" : ""
            let note =
                proposed.contains(pointer)
                ? "" : (counts[pointer] ?? 0) < self.minCount ? "  below --min-count" : "  already ignored"
            lines.append(
                "  \(pointer.padding(toLength: width, withPad: " ", startingAt: 0))  "
                    + "\(count)×\(share)\(note)")
        }
        if proposed.isEmpty {
            lines.append("nothing to propose")
            print(lines.joined(separator: "\n"))
            return
        }
        lines.append("proposed ignore rules:")
        lines += proposed.map { "  \($0)" }
        guard self.apply else {
            lines.append(
                "review them, then: strangler noise \(ShellWord.quote(self.route)) --apply\(self.endpoint.placeFlags)")
            print(lines.joined(separator: "\n"))
            return
        }
        print(lines.joined(separator: "\n"))
        try await self.applyRules(proposed, client: client, checks: checks)
    }

    /// Adds `rules` through the admin API; returns the new table version.
    @discardableResult
    private func applyRules(
        _ rules: [String], client: AdminClient, checks: Int, quiet: Bool = false
    ) async throws(AdminClient.Failure) -> Int {
        let current = try await client.send(.GET, "/admin/routes")
        guard current.status == 200, let table = current.json?["table"], let etag = current.headers.first(name: "ETag")
        else {
            throw AdminClient.Failure(
                description: "GET /admin/routes answered \(current.status): \(current.errorMessage)")
        }
        guard let updated = Self.adding(ignore: rules, toRoute: self.route, in: table) else {
            throw AdminClient.Failure(description: "routes.json has no route \"\(self.route)\"")
        }
        let reason = self.reason ?? "noise rules learned from \(checks) checks: \(rules.joined(separator: ", "))"
        let answer = try await client.send(
            .PUT, "/admin/routes", headers: [("If-Match", etag), ("X-Strangler-Reason", reason)],
            body: updated.prettyJSONText)
        guard answer.status == 200 else {
            throw AdminClient.Failure(
                description: "PUT /admin/routes answered \(answer.status): \(answer.errorMessage)")
        }
        let version = Int(answer.json?["version"]?.numberValue ?? 0)
        if !quiet {
            print(
                "applied: \(rules.count) ignore rule\(rules.count == 1 ? "" : "s") added to \(self.route) (table "
                    + "version \(version))"
            )
            for review in SignatureReview.reviews(answer.json?["reviews"]) { print(review.text) }
        }
        return version
    }

    /// The table with `rules` appended to a route's `shadow.ignore` (created if missing), or nil without that route.
    static func adding(ignore rules: [String], toRoute id: String, in table: JSONValue) -> JSONValue? {
        RouteOperations.addingIgnore(rules, toRoute: id, in: table)
    }
}
