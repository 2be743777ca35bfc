import HTTP1

/// One request of a ``Scenario``, with what to take from its answer for later steps and how to compare it.
///
/// A step whose template names a variable that is not set is not sent to that target (a problem of the run); a
/// capture that finds nothing leaves its variable unset.
///
/// Paths, header values and bodies are templates: `{{name}}` is replaced by a variable (given to the scenario,
/// or captured from an earlier answer), and `{{unique}}` by a value unique to each target's run, so that runs
/// against several targets do not collide on unique fields such as e-mail addresses.
///
/// ```swift
/// let ada = #"{"accountId":"{{acme}}","firstName":"Ada","lastName":"L","email":"ada-{{unique}}@example.com"}"#
/// Step.post("/contacts", json: ada)
///     .expecting(201).capture("id", "/id").ignoring("/id", "/createdAt", "/updatedAt").ignoringHeaders("location")
/// Step.patch("/contacts/{{id}}", json: #"{"title":"CTO"}"#).ifMatch("1").ignoring("/updatedAt")
/// Step.get("/contacts?limit=2").capture("next", "/next")
/// ```
public struct Step: Sendable, CustomStringConvertible {
    /// What a capture reads.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A JSON pointer into the answer's body (`/id`, `/next`, `/items/0/id`).
        case body(String)
        /// A header of the answer (`Location`, `ETag`).
        case header(String)

        public var description: String {
            switch self {
            case .body(let pointer): pointer
            case .header(let name): "header:\(name)"
            }
        }
    }

    public var method: String
    /// Path and query, a template.
    public var path: String
    /// Header values are templates.
    public var headers: [(name: String, value: String)]
    /// A template; nil sends no body.
    public var body: String?
    /// Variable name → where its value comes from in this step's answer (on every target; each target keeps its own).
    public var captures: [(variable: String, source: Source)]
    /// Extra JSON pointers (with `*`) ignored for this step, on top of the route's own `shadow.ignore`.
    public var ignore: [String]
    /// Headers not compared for this step (`location` of a create).
    public var ignoredHeaders: [String]
    /// The status the reference target must answer (so that a scenario fails when it no longer tests what it means to,
    /// even if every target agrees).
    public var expectedStatus: Int?
    /// The route whose rules apply; nil finds it in the route table by method and path.
    public var route: String?
    /// A name for reports; nil uses the method and path.
    public var name: String?

    public init(
        _ method: String, _ path: String, headers: [(name: String, value: String)] = [], body: String? = nil,
        captures: [(variable: String, source: Source)] = [], ignore: [String] = [], ignoredHeaders: [String] = [],
        expectedStatus: Int? = nil,
        route: String? = nil, name: String? = nil
    ) {
        self.method = method.uppercased()
        self.path = path
        self.headers = headers
        self.body = body
        self.captures = captures
        self.ignore = ignore
        self.ignoredHeaders = ignoredHeaders
        self.expectedStatus = expectedStatus
        self.route = route
        self.name = name
    }

    public static func get(_ path: String) -> Step { Step("GET", path) }
    public static func delete(_ path: String) -> Step { Step("DELETE", path) }
    /// A POST with a JSON body (`Content-Type: application/json`); nil sends no body and no Content-Type.
    public static func post(_ path: String, json: String?) -> Step { Step("POST", path).json(json) }
    public static func patch(_ path: String, json: String?) -> Step { Step("PATCH", path).json(json) }
    public static func put(_ path: String, json: String?) -> Step { Step("PUT", path).json(json) }

    /// The body, with `Content-Type: application/json` unless a content type is set already.
    public func json(_ text: String?) -> Step {
        var step = self
        step.body = text
        if text != nil, !step.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            step.headers.append((name: "Content-Type", value: "application/json"))
        }
        return step
    }

    /// Adds a header (its value is a template).
    public func header(_ name: String, _ value: String) -> Step {
        var step = self
        step.headers.append((name: name, value: value))
        return step
    }

    /// Replaces a header (all fields of that name) by one field; nil removes it.
    public func setHeader(_ name: String, _ value: String?) -> Step {
        var step = self
        step.headers.removeAll { $0.name.lowercased() == name.lowercased() }
        if let value { step.headers.append((name: name, value: value)) }
        return step
    }

    /// `If-Match: <version>`.
    public func ifMatch(_ version: String) -> Step { self.header("If-Match", version) }

    /// `Strangler-Dry-Run: 1`: the side runs the write and rolls it back.
    public func dryRun() -> Step { self.header("Strangler-Dry-Run", "1") }

    /// Captures a value of the answer into `variable`: `source` is a JSON pointer (`/id`) or `header:Name`.
    public func capture(_ variable: String, _ source: String) -> Step {
        var step = self
        if source.lowercased().hasPrefix("header:") {
            step.captures.append((variable, .header(String(source.dropFirst("header:".count)))))
        } else {
            step.captures.append((variable, .body(source)))
        }
        return step
    }

    /// Ignores these pointers in this step's bodies.
    public func ignoring(_ pointers: String...) -> Step {
        var step = self
        step.ignore += pointers
        return step
    }

    /// Does not compare these headers in this step.
    public func ignoringHeaders(_ names: String...) -> Step {
        var step = self
        step.ignoredHeaders += names.map { $0.lowercased() }
        return step
    }

    /// The reference target must answer this status.
    public func expecting(_ status: Int) -> Step {
        var step = self
        step.expectedStatus = status
        return step
    }

    /// Compares with the rules of this route of the table.
    public func route(_ id: String) -> Step {
        var step = self
        step.route = id
        return step
    }

    public func named(_ name: String) -> Step {
        var step = self
        step.name = name
        return step
    }

    /// Whether the method changes state (the harness settles the sides after such a step).
    public var isWrite: Bool { HTTPMethodRules.isWrite(self.method) }

    public var description: String { self.name ?? "\(self.method) \(self.path)" }
}
