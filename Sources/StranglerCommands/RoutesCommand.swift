public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import Reports
import RouteTable

/// `strangler routes`: every route with its stage and evidence, and whether it may move to its next stage (and if not,
/// why).
public struct RoutesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "List routes with their stage, evidence, and whether each may move forward (and if not, why).",
        discussion: """
            Per route: id, method, path, service, stage, compared samples and match rate since its last stage change, \
            the lower bound of the match rate's 95% Wilson interval, the most frequent mismatch signature, the \
            service's sync lag, and the verdict of the gates for its next stage. Asks the proxy's admin API; with no \
            proxy running, reads routes.json and <data>/diffs.sqlite itself.

            `strangler routes suggest` lists the requests the running proxy saw that no route matched (they went to \
            the monolith), grouped by method and path template (numeric, UUID and other id-like segments as {id}), \
            with counts and a suggested id; --apply adds them to the table in transform (If-Match, audited), \
            --min-count leaves out the rarely seen.

            Exit status: 0 listed, 2 usage error (unknown route, bad token), 3 proxy unreachable, 4 the table \
            changed meanwhile (suggest --apply).

            Examples:
              strangler routes
              strangler routes 'contacts.*'
              strangler routes contacts.get --output json
              strangler routes suggest
              strangler routes suggest --apply --min-count 10
            """
    )

    @Argument(
        help: ArgumentHelp(
            "Only this route, or the routes a pattern names (`*` any characters, `?` one): 'contacts.*'.",
            valueName: "route-or-pattern"))
    public var route: String?

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @OptionGroup public var control: ReadingOptions

    @Flag(help: "With suggest: add the suggested routes to the table, in transform.")
    public var apply: Bool = false

    @Option(help: "With suggest: groups seen fewer times are left out.")
    public var minCount: Int = 1

    @Option(help: "With suggest --apply: why, for the audit log.")
    public var reason: String?

    public init() {}

    public func validate() throws {
        if self.route != "suggest", self.apply || self.reason != nil || self.minCount != 1 {
            throw ValidationError("--apply, --min-count and --reason go with `strangler routes suggest`")
        }
        guard self.minCount >= 1 else { throw ValidationError("--min-count must be 1 or more") }
    }

    public func run() async throws {
        try await self.outcome(style: .detect()).finish()
    }

    func outcome(style: TerminalStyle = .plain) async -> CommandOutcome {
        if self.route == "suggest" {
            return await RoutesSuggest(
                endpoint: self.control.endpoint, apply: self.apply, minCount: self.minCount, reason: self.reason,
                output: self.output
            ).outcome()
        }
        do {
            let session = try await ControlSession.open(self.control.control)
            let evidence = try await session.evidence(route: self.route)
            if self.output == .json { return CommandOutcome(output: evidence.prettyJSONText + "\n") }
            return CommandOutcome(output: Self.render(evidence, style: style, target: session.target))
        } catch {
            return CommandOutcome(error: "strangler routes: \(error.message)\n", status: error.status)
        }
    }

    static func render(_ body: JSONValue, style: TerminalStyle, target: String) -> String {
        var table = TextTable(headers: [
            "ROUTE", "METHOD", "PATH", "SERVICE", "STAGE", "COMPARED", "MATCH", "LOWER", "TOP MISMATCH", "LAG", "NEXT",
        ])
        let routes = body["routes"]?.arrayValue ?? []
        var stages: [String: Int] = [:]
        for route in routes {
            let stage = route["stage"]?.stringValue ?? "?"
            stages[stage, default: 0] += 1
            let compared = Int(route["compared"]?.numberValue ?? 0)
            let match = route["matchRate"]?.numberValue.map { Gates.percent($0) } ?? "—"
            let lower = route["matchRateLowerBound"]?.numberValue.map { Gates.percent($0) } ?? "—"
            var top = "—"
            if let signature = route["signatures"]?.arrayValue?.first {
                let text = signature["signature"]?.stringValue ?? ""
                let triage = signature["triage"]?.stringValue ?? "untriaged"
                let short = text.count > 40 ? String(text.prefix(39)) + "…" : text
                let note = "\(short) (\(Int(signature["count"]?.numberValue ?? 0))×, \(triage))"
                top = triage == "untriaged" ? style.paint(note, .red) : note
            }
            let lag: String =
                if route["service"]?.stringValue == nil {
                    "—"
                } else if route["undeclared"]?.arrayValue?.contains(.string("syncLag")) == true {
                    "none"
                } else {
                    route["syncLag"]?.numberValue.map { String(Int($0)) } ?? "?"
                }
            var next = "—"
            if let verdict = route["next"], let to = verdict["stage"]?.stringValue {
                if verdict["allowed"]?.boolValue == true {
                    next = style.paint("→ \(to): ok", .green)
                } else {
                    let reasons = (verdict["reasons"]?.arrayValue ?? []).compactMap(\.stringValue)
                    next = style.paint("→ \(to): blocked", .red) + ": " + reasons.joined(separator: "; ")
                }
                let notes = (verdict["notMeasured"]?.arrayValue ?? []).compactMap(\.stringValue)
                if !notes.isEmpty { next += "; not measured: " + notes.joined(separator: "; ") }
            }
            table.rows.append([
                route["id"]?.stringValue ?? "?", route["method"]?.stringValue ?? "", route["path"]?.stringValue ?? "",
                route["service"]?.stringValue ?? "—", style.stage(stage), String(compared), match, lower, top, lag,
                next,
            ])
        }
        let counts = Stage.allCases.compactMap { stage in stages[stage.rawValue].map { "\($0) \(stage.rawValue)" } }
            .joined(separator: ", ")
        // A selection says how much of the table it is: "6 of 27 routes".
        let total = body["tableRoutes"]?.numberValue.map { Int($0) } ?? routes.count
        let of = total == routes.count ? "" : "of \(total) "
        return table.render(style: style)
            + "\(routes.count) \(of)route\(total == 1 ? "" : "s") (\(counts)); table "
            + "\(body["hash"]?.stringValue ?? "?"), from \(target)\n"
            + Self.renderUpstreams(body["upstreams"]?.arrayValue ?? [], style: style)
    }

    /// The groups with more than one instance, active health checks, or an instance that is not serving (unhealthy or
    /// ejected), one line per instance; then a warning for every instance whose TLS is not verified.
    static func renderUpstreams(_ groups: [JSONValue], style: TerminalStyle) -> String {
        var lines: [String] = []
        var warnings: [String] = []
        for group in groups {
            let name = group["name"]?.stringValue ?? "?"
            let instances = group["instances"]?.arrayValue ?? []
            for instance in instances where instance["insecure"]?.boolValue == true {
                warnings.append(
                    style.paint("warning:", .red) + " \(name): TLS to \(instance["url"]?.stringValue ?? "?") is not "
                        + "verified (\"tls\": {\"insecure\": true})")
            }
            let notServing = instances.contains {
                $0["healthy"]?.boolValue == false || ($0["ejected"].map { $0 != .null } ?? false)
            }
            guard instances.count > 1 || group["health"]?.stringValue != nil || notServing else { continue }
            var heading =
                "\(name): \(instances.count) instance\(instances.count == 1 ? "" : "s"), "
                + (group["balance"]?.stringValue ?? "?")
            if let health = group["health"]?.stringValue { heading += ", health \(health)" }
            lines.append(heading)
            for instance in instances {
                let url = instance["url"]?.stringValue ?? "?"
                guard let healthy = instance["healthy"]?.boolValue else {
                    lines.append("  \(url)")
                    continue
                }
                var state: String
                if let ejected = instance["ejected"], ejected != .null {
                    state = style.paint("ejected", .red) + " until \(ejected["until"]?.stringValue ?? "?")"
                    if let why = ejected["why"]?.stringValue { state += " (\(why))" }
                } else if !healthy {
                    state = style.paint("unhealthy", .red)
                    if let why = instance["unhealthyWhy"]?.stringValue { state += " (\(why))" }
                } else {
                    state = style.paint("healthy", .green)
                }
                func count(_ key: String) -> Int { Int(instance[key]?.numberValue ?? 0) }
                lines.append(
                    "  \(url)  \(state); \(count("inFlight")) in flight, \(count("openConnections")) open "
                        + "connection\(count("openConnections") == 1 ? "" : "s"), \(count("errors")) errors, "
                        + "\(count("ejections")) ejections")
            }
        }
        let all = lines + warnings
        return all.isEmpty ? "" : "\n" + all.joined(separator: "\n") + "\n"
    }
}

/// `--output table|json`.
public enum OutputFormat: String, ExpressibleByArgument, Sendable, CaseIterable {
    case table
    case json
}
