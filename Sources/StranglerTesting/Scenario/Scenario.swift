import Foundation

/// A sequence of requests, run the same way against several targets and compared step by step.
///
/// ```swift
/// let scenario = Scenario("a contact's life", variables: ["acme": crm.acme], steps: [
///     .post(
///         "/contacts",
///         json: #"{"accountId":"{{acme}}","firstName":"A","lastName":"B","email":"a-{{unique}}@example.com"}"#
///     )
///         .expecting(201).capture("id", "/id").ignoring("/id", "/createdAt", "/updatedAt")
///         .ignoringHeaders("location"),
///     .get("/contacts/{{id}}").ignoring("/id", "/createdAt", "/updatedAt"),
///     .delete("/contacts/{{id}}").expecting(204),
/// ])
/// ```
public struct Scenario: Sendable, CustomStringConvertible {
    public var name: String
    /// Values the steps may use from the start (ids of records made before the scenario).
    public var variables: [String: String]
    public var steps: [Step]

    public init(_ name: String, variables: [String: String] = [:], steps: [Step]) {
        self.name = name
        self.variables = variables
        self.steps = steps
    }

    public var description: String { self.name }
}

/// `{{name}}` substitution.
enum Template {
    /// `text` with each `{{name}}` replaced by its variable; throws naming the first unknown variable.
    static func render(_ text: String, _ variables: [String: String]) throws(HarnessError) -> String {
        guard text.contains("{{") else { return text }
        var output = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            output += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                output += rest[open.lowerBound...]
                return output
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharactersInSet()
            guard let value = variables[name] else {
                let known = variables.keys.sorted().joined(separator: ", ")
                throw HarnessError(
                    "{{\(name)}} is not set (no earlier step captured it; variables: \(known.isEmpty ? "none" : known))"
                )
            }
            output += value
            rest = rest[close.upperBound...]
        }
        output += rest
        return output
    }
}

extension Substring {
    fileprivate func trimmingCharactersInSet() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
