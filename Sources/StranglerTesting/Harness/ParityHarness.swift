public import Diff
import Foundation
import HTTP1
import JSON
public import RouteTable

/// Runs a ``Scenario`` against several ``Target``s and checks that they answer alike, step by step, under each route's
/// own diff rules from routes.json (`shadow.ignore` and `shadow.arrays`, the route found by method and path), plus
/// each step's extra ignores. The first target is the reference (the monolith, usually); every other target is
/// compared with it.
///
/// ```swift
/// let harness = try ParityHarness(routesFile: "routes.json") { try await consumer.catchUp() }
/// try await harness.run(scenario, against: [
///     Target("monolith", HTTPEndpoint(port: 8081)),
///     Target("contacts service", HTTPEndpoint(port: 8082)),
/// ])   // throws a ParityFailure that prints each differing step, both statuses and the diff
/// ```
public struct ParityHarness: Sendable {
    /// How the targets take turns.
    public enum Mode: Sendable {
        /// Each step goes to every target in turn before the next step (then the sides are settled): every target
        /// sees what all of them wrote, so lists agree.
        case lockstep
        /// Each target runs the whole scenario (after its `prepare`), one target after the other.
        case sequential
    }

    /// The route table whose rules apply; nil compares with no rules.
    public var routes: RouteTable?
    /// Makes every side see every write (a service's feed consumer catching up, reverse sync): called once before a
    /// scenario and after each step that writes.
    public var settle: (@Sendable () async throws -> Void)?
    public var mode: Mode
    /// The headers compared (case-insensitively); `Date` and `Server` differ by nature.
    public var comparedHeaders: [String]
    public var numericTolerance: Double
    public var client: HTTPTestClient

    public init(
        routes: RouteTable? = nil, mode: Mode = .lockstep,
        comparedHeaders: [String] = ["content-type", "etag", "location"], numericTolerance: Double = 0,
        client: HTTPTestClient = HTTPTestClient(), settle: (@Sendable () async throws -> Void)? = nil
    ) {
        self.routes = routes
        self.mode = mode
        self.comparedHeaders = comparedHeaders
        self.numericTolerance = numericTolerance
        self.client = client
        self.settle = settle
    }

    /// With the rules of the routes.json at `routesFile`.
    public init(
        routesFile: String, mode: Mode = .lockstep, comparedHeaders: [String] = ["content-type", "etag", "location"],
        settle: (@Sendable () async throws -> Void)? = nil
    ) throws {
        let text: String
        do {
            text = try String(contentsOfFile: routesFile, encoding: .utf8)
        } catch {
            throw HarnessError("cannot read \(routesFile): \(error.localizedDescription)")
        }
        self.init(routes: try RouteTable.parse(text), mode: mode, comparedHeaders: comparedHeaders, settle: settle)
    }

    // MARK: Rules

    /// The route a request falls under: `id` when given, else the table's match by method and path.
    public func route(id: String? = nil, method: String, path: String) -> Route? {
        guard let routes else { return nil }
        if let id { return routes.route(id: id) }
        return routes.match(method: method, path: String(path.prefix { $0 != "?" }))
    }

    /// The diff options for a request of `route`: its ignore and array rules, plus `ignore`, minus `ignoredHeaders`.
    /// `headers` replaces ``comparedHeaders``.
    public func options(
        for route: Route?, ignore: [String] = [], ignoredHeaders: [String] = [], headers: [String]? = nil
    ) -> DiffOptions {
        let skipped = Set(ignoredHeaders.map { $0.lowercased() })
        return DiffOptions(
            ignore: (route?.shadow?.ignore ?? []) + ignore, arrays: route?.shadow?.arrays ?? [:],
            numericTolerance: self.numericTolerance,
            headers: (headers ?? self.comparedHeaders).filter { !skipped.contains($0.lowercased()) })
    }

    // MARK: Running

    /// Runs `scenario` against `targets` and throws a ``ParityFailure`` when any step's answers differ (or the
    /// reference did not answer a step's expected status); returns the run when all agree.
    @discardableResult
    public func run(_ scenario: Scenario, against targets: [Target]) async throws -> ScenarioRun {
        let run = try await self.compare(scenario, against: targets)
        if !run.agrees { throw ParityFailure(run: run) }
        return run
    }

    /// Runs `scenario` against `targets` and returns what each answered and where they differ, without throwing
    /// for differences (it throws a ``HarnessError`` when a target cannot be reached or a variable is missing).
    public func compare(_ scenario: Scenario, against targets: [Target]) async throws -> ScenarioRun {
        guard targets.count >= 1 else { throw HarnessError("a scenario needs at least one target") }
        let token = Self.uniqueToken()
        var variables = targets.indices.map { index in
            scenario.variables.merging(["unique": "\(token)t\(index)"]) { _, new in new }
        }
        var exchanges = Array(repeating: [Exchange?](repeating: nil, count: targets.count), count: scenario.steps.count)
        var problems: [String] = []
        var lastPrepared: Int?

        func perform(step index: Int, target: Int, connections: [HTTPConnection]) async throws {
            let step = scenario.steps[index]
            if !targets[target].takesDryRuns,
                step.headers.contains(where: { $0.name.lowercased() == "strangler-dry-run" })
            {
                return
            }
            let request: HTTPRequestData
            do {
                request = try Self.render(step, variables[target])
            } catch {
                problems.append("step \(index + 1) (\(step)) on \(targets[target].name): \(error)")
                return
            }
            let answer: HTTPAnswer
            do {
                answer = try await Self.send(request, on: connections[target], client: self.client)
            } catch {
                throw HarnessError(
                    "scenario \"\(scenario.name)\", step \(index + 1) (\(request)) on \(targets[target]): \(error)")
            }
            exchanges[index][target] = Exchange(request: request, answer: answer)
            for capture in step.captures {
                if let value = Self.value(of: capture.source, in: answer) {
                    variables[target][capture.variable] = value
                } else {
                    problems.append(
                        "step \(index + 1) (\(request)) on \(targets[target].name): nothing to capture as "
                            + "{{\(capture.variable)}} at \(capture.source) in \(answer)"
                    )
                }
            }
        }

        func prepare(_ target: Int) async throws {
            guard let prepare = targets[target].prepare, lastPrepared != target else { return }
            do {
                try await prepare()
            } catch {
                throw HarnessError("preparing \(targets[target]): \(error)")
            }
            lastPrepared = target
        }

        try await self.settle?()
        // One kept-alive connection per target for the whole scenario.
        try await Self.withConnections(to: targets.map(\.endpoint), client: self.client) { connections in
            switch self.mode {
            case .lockstep:
                for index in scenario.steps.indices {
                    for target in targets.indices {
                        try await prepare(target)
                        try await perform(step: index, target: target, connections: connections)
                    }
                    if scenario.steps[index].isWrite { try await self.settle?() }
                }
            case .sequential:
                for target in targets.indices {
                    try await prepare(target)
                    for index in scenario.steps.indices {
                        try await perform(step: index, target: target, connections: connections)
                        if scenario.steps[index].isWrite { try await self.settle?() }
                    }
                }
            }
        }

        // The values that differ between targets (each one's {{unique}}, the ids each captured) are written back as
        // their names in every answer before comparing: an answer naming the record its target made compares equal to
        // the reference's, and so does a list holding the records of all targets.
        let substitutions = Self.substitutions(variables)
        var steps: [StepRun] = []
        for (index, step) in scenario.steps.enumerated() {
            let route = self.route(
                id: step.route, method: step.method,
                path: exchanges[index].compactMap { $0 }.first?.request.path ?? step.path)
            let options = self.options(for: route, ignore: step.ignore, ignoredHeaders: step.ignoredHeaders)
            var run = StepRun(index: index, step: step, route: route?.id, exchanges: exchanges[index], differences: [])
            if let expected = step.expectedStatus, let reference = exchanges[index][0],
                reference.answer.status != expected
            {
                problems.append(
                    "step \(index + 1) (\(reference.request)): \(targets[0].name) answered "
                        + "\(reference.answer.status), the step expects \(expected): \(reference.answer)"
                )
            }
            if let reference = exchanges[index][0] {
                for target in targets.indices.dropFirst() {
                    guard let other = exchanges[index][target] else { continue }
                    let comparison = ResponseDiffer.compare(
                        Self.substituting(substitutions, in: reference.answer).snapshot,
                        Self.substituting(substitutions, in: other.answer).snapshot,
                        options: options)
                    if !comparison.isMatch {
                        run.differences.append(
                            StepDifference(
                                reference: targets[0].name, target: targets[target].name, referenceExchange: reference,
                                targetExchange: other,
                                comparison: comparison))
                    }
                }
            }
            steps.append(run)
        }
        return ScenarioRun(scenario: scenario.name, targets: targets.map(\.name), steps: steps, problems: problems)
    }

    // MARK: Helpers

    /// Opens a connection to each endpoint, runs `body` with them, closes them.
    static func withConnections<T>(
        to endpoints: [HTTPEndpoint], client: HTTPTestClient, opened: [HTTPConnection] = [],
        _ body: ([HTTPConnection]) async throws -> T
    ) async throws -> T {
        guard opened.count < endpoints.count else { return try await body(opened) }
        return try await client.withConnection(to: endpoints[opened.count]) { connection in
            try await Self.withConnections(to: endpoints, client: client, opened: opened + [connection], body)
        }
    }

    /// Sends on `connection` while it is open, else on a new one. A read that fails on a kept-alive connection (the
    /// server may have closed it meanwhile) is sent once more on a new connection; a write never is.
    static func send(
        _ request: HTTPRequestData, on connection: HTTPConnection, client: HTTPTestClient
    ) async throws -> HTTPAnswer {
        guard !connection.isClosed else { return try await client.send(request, to: connection.endpoint) }
        do {
            return try await connection.send(request)
        } catch {
            guard HTTPMethodRules.isSafe(request.method) else { throw error }
            return try await client.send(request, to: connection.endpoint)
        }
    }

    static func render(_ step: Step, _ variables: [String: String]) throws(HarnessError) -> HTTPRequestData {
        var headers: [(name: String, value: String)] = []
        for header in step.headers { headers.append((header.name, try Template.render(header.value, variables))) }
        let body =
            try step.body.map { text throws(HarnessError) in Array(try Template.render(text, variables).utf8) } ?? []
        return HTTPRequestData(
            method: step.method, target: try Template.render(step.path, variables), headers: headers, body: body)
    }

    /// Every value of a variable that not all targets share (captured ids, `{{unique}}`), with its `{{name}}`, longest
    /// first.
    static func substitutions(_ variables: [[String: String]]) -> [(value: String, name: String)] {
        var pairs: [(value: String, name: String)] = []
        for name in Set(variables.flatMap(\.keys)) {
            let values = Set(variables.compactMap { $0[name] })
            guard values.count > 1 || variables.contains(where: { $0[name] == nil }) else { continue }
            for value in values where value.count >= 4 { pairs.append((value, "{{\(name)}}")) }
        }
        return pairs.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.value < $1.value }
    }

    /// `answer` with each substitution's value replaced by its name, in the body and the header values.
    static func substituting(_ pairs: [(value: String, name: String)], in answer: HTTPAnswer) -> HTTPAnswer {
        guard !pairs.isEmpty else { return answer }
        var copy = answer
        copy.body = Array(Self.replace(pairs, in: String(decoding: answer.body, as: UTF8.self)).utf8)
        if String(validating: answer.body, as: UTF8.self) == nil { copy.body = answer.body }
        copy.headers = answer.headers.map { (name: $0.name, value: Self.replace(pairs, in: $0.value)) }
        return copy
    }

    static func replace(_ pairs: [(value: String, name: String)], in text: String) -> String {
        var text = text
        for pair in pairs where text.contains(pair.value) {
            text = text.replacingOccurrences(of: pair.value, with: pair.name)
        }
        return text
    }

    /// A captured value: strings as they are, numbers without a needless `.0`, booleans; nil for null, objects,
    /// arrays and missing values.
    static func value(of source: Step.Source, in answer: HTTPAnswer) -> String? {
        switch source {
        case .header(let name):
            return answer.header(name)
        case .body(let pointer):
            guard let json = answer.json, let segments = PointerPattern.segments(pointer) else { return nil }
            var node = json
            for segment in segments {
                if let members = node.objectValue, let member = members.first(where: { $0.key == segment }) {
                    node = member.value
                } else if let items = node.arrayValue, let index = Int(segment), items.indices.contains(index) {
                    node = items[index]
                } else {
                    return nil
                }
            }
            switch node {
            case .string(let text): return text
            case .number(let number):
                return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .bool(let flag): return String(flag)
            default: return nil
            }
        }
    }

    /// Letters and digits, different on every call: `{{unique}}` is this plus the target's index.
    static func uniqueToken() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        return String((0..<10).map { _ in alphabet.randomElement()! })
    }
}
