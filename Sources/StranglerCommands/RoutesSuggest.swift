import Foundation
import JSON
import NIOHTTP1
import Reports
import RouteTable

/// `strangler routes suggest [--apply]`: routes for the traffic the running proxy saw and no route matched.
struct RoutesSuggest {
    var endpoint: AdminOptions
    var apply: Bool
    var minCount: Int
    var reason: String?
    var output: OutputFormat

    struct Suggestion {
        var id: String
        var method: String
        var template: String
        var count: Int
        var example: String
        /// Why it is not added, if it is not.
        var skipped: String?
    }

    func outcome() async -> CommandOutcome {
        do {
            let client = try self.endpoint.client()
            let unmatched = try await client.send(.GET, "/admin/unmatched")
            guard unmatched.status == 200, let body = unmatched.json else {
                return CommandOutcome(
                    error: "strangler routes suggest: GET /admin/unmatched answered \(unmatched.status): "
                        + "\(unmatched.errorMessage)\n", status: 2)
            }
            let current = try await client.send(.GET, "/admin/routes")
            guard current.status == 200, let document = current.json?["table"],
                let etag = current.headers.first(name: "ETag")
            else {
                return CommandOutcome(
                    error: "strangler routes suggest: GET /admin/routes answered \(current.status)\n", status: 2)
            }
            let table = try? RouteTable.validate(document)
            let suggestions = Self.suggestions(body, table: table, minCount: self.minCount)
            let adding = suggestions.filter { $0.skipped == nil }
            var text = Self.render(suggestions, overflow: Int(body["overflow"]?.numberValue ?? 0))
            if self.apply {
                guard !adding.isEmpty else { return CommandOutcome(output: text + "nothing to add\n") }
                var members = document.objectValue ?? []
                let index = members.firstIndex { $0.key == "routes" }!
                var routes = members[index].value.arrayValue ?? []
                routes += adding.map {
                    .object([
                        ("id", .string($0.id)), ("method", .string($0.method)), ("path", .string($0.template)),
                        ("stage", .string("transform")),
                    ])
                }
                members[index].value = .array(routes)
                let reason = self.reason ?? "\(adding.count) routes suggested from unmatched traffic"
                let answer = try await client.send(
                    .PUT, "/admin/routes", headers: [("If-Match", etag), ("X-Strangler-Reason", reason)],
                    body: JSONValue.object(members).prettyJSONText)
                guard answer.status == 200 else {
                    return CommandOutcome(
                        error: text + "strangler routes suggest: PUT /admin/routes answered \(answer.status): "
                            + "\(answer.errorMessage)\n", status: answer.status == 412 ? 4 : 2)
                }
                text +=
                    "added \(adding.count) route\(adding.count == 1 ? "" : "s") in transform (audited; undo with: "
                    + "strangler undo\(self.endpoint.placeFlags))\n"
            } else if !adding.isEmpty {
                text += "add them with: strangler routes suggest --apply\(self.endpoint.placeFlags)\n"
            }
            if self.output == .json {
                return CommandOutcome(
                    output: JSONValue.array(
                        suggestions.map {
                            .object([
                                ("id", .string($0.id)), ("method", .string($0.method)), ("path", .string($0.template)),
                                ("count", .number(Double($0.count))), ("example", .string($0.example)),
                                ("skipped", $0.skipped.map(JSONValue.string) ?? .null),
                            ])
                        }
                    ).prettyJSONText + "\n")
            }
            return CommandOutcome(output: text)
        } catch {
            return CommandOutcome(
                error: "strangler routes suggest: \(error.description)\n", status: error.refused ? 3 : 2)
        }
    }

    /// Each group the proxy counted as a route to add, or why not (below `minCount`, not a template routes.json
    /// takes, routed by now).
    static func suggestions(_ body: JSONValue, table: RouteTable?, minCount: Int) -> [Suggestion] {
        var ids = Set(table?.routes.map(\.id) ?? [])
        return (body["groups"]?.arrayValue ?? []).compactMap { group in
            guard let method = group["method"]?.stringValue, let template = group["template"]?.stringValue else {
                return nil
            }
            let count = Int(group["count"]?.numberValue ?? 0)
            let example = group["example"]?.stringValue ?? template
            var id = RouteTableNames.identifier(method: method, path: template)
            var suffix = 2
            while ids.contains(id) {
                id = RouteTableNames.identifier(method: method, path: template) + "-\(suffix)"
                suffix += 1
            }
            var skipped: String?
            if count < minCount {
                skipped = "seen \(count)×, under --min-count \(minCount)"
            } else if !Route.methods.contains(method) {
                skipped = "\(method) is not a method routes.json routes"
            } else if case .failure(let error) = PathTemplate.parse(template) {
                skipped = "\"\(template)\" \(error.reason)"
            } else if let route = table?.match(method: method, path: example) {
                skipped = "routed by now (\(route.id))"
            } else {
                ids.insert(id)
            }
            return Suggestion(
                id: id, method: method, template: template, count: count, example: example, skipped: skipped)
        }
    }

    static func render(_ suggestions: [Suggestion], overflow: Int) -> String {
        guard !suggestions.isEmpty else { return "no unmatched traffic seen since the proxy started\n" }
        var table = TextTable(headers: ["SUGGESTED ID", "METHOD", "PATH", "SEEN", "EXAMPLE", "NOTE"])
        for suggestion in suggestions {
            table.rows.append([
                suggestion.id, suggestion.method, suggestion.template, String(suggestion.count), suggestion.example,
                suggestion.skipped ?? "",
            ])
        }
        var text = table.render(style: .plain)
        if overflow > 0 { text += "\(overflow) more requests in groups beyond the 1000 kept\n" }
        return text
    }
}
