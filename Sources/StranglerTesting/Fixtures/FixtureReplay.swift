public import Diff
import HTTP1
import JSON
import RouteTable

/// What replaying fixtures against targets showed: per fixture and target, whether the answer matches the monolith's
/// recorded answer under the route's rules.
public struct FixtureReport: Sendable, CustomStringConvertible {
    /// One target's answer to one fixture.
    public struct Outcome: Sendable {
        public var target: String
        public var answer: HTTPAnswer?
        /// Recorded monolith answer (left) against this answer (right); nil when the request failed.
        public var comparison: ResponseComparison?
        /// Why there is no answer (the target could not be reached).
        public var error: String?

        public var matches: Bool { self.comparison?.isMatch ?? false }
    }

    /// One fixture against every target.
    public struct Result: Sendable {
        public var file: String
        public var fixture: Fixture
        public var outcomes: [Outcome]

        public var matches: Bool { self.outcomes.allSatisfy(\.matches) }
    }

    public var results: [Result]

    /// Every fixture matched on every target.
    public var allMatch: Bool { self.results.allSatisfy(\.matches) }

    /// The files that differ on `target` (a target's name), or on any target when nil.
    public func differing(on target: String? = nil) -> [String] {
        self.results.filter { result in
            result.outcomes.contains { ($0.target == target || target == nil) && !$0.matches }
        }.map(\.file)
    }

    public var description: String {
        let differing = self.results.filter { !$0.matches }
        var lines = [
            "\(self.results.count) fixture\(self.results.count == 1 ? "" : "s"), \(differing.count) "
                + "differ\(differing.count == 1 ? "s" : "")"
        ]
        for result in self.results {
            let verdicts = result.outcomes.map {
                "\($0.target): \($0.matches ? "same" : $0.error != nil ? "failed" : "differs")"
            }
            lines.append(
                "  \(result.file) (\(result.fixture.route), \(result.fixture.request)): "
                    + "\(verdicts.joined(separator: ", "))"
            )
            for outcome in result.outcomes where !outcome.matches {
                if let error = outcome.error {
                    lines.append("    \(outcome.target): \(error)")
                } else if let comparison = outcome.comparison, let answer = outcome.answer {
                    lines.append(
                        "    \(outcome.target) answered \(answer.status) (recorded monolith answer: "
                            + "\(result.fixture.monolith.status))"
                    )
                    lines += DiffText.lines(comparison).map { "      " + $0 }
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension ParityHarness {
    /// Request headers that belong to one hop or that the proxy set; a replay leaves them out (and values the diff
    /// store redacted: `[redacted:…]` tokens, or `[redacted]` in older samples).
    static let unreplayedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-connection",
        "via", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "strangler-dry-run",
    ]

    /// Replays every fixture of `directory` (see ``Fixture``) against each target and compares each answer with the
    /// monolith's recorded answer as the proxy compares shadowed answers: status, `Content-Type` and the body under the
    /// fixture's route's rules; where the recorded answer holds redacted values (``redactedPointers(_:route:)``)
    /// nothing is compared. Writes go with `Strangler-Dry-Run: 1` unless `dryRunWrites` is false.
    ///
    /// ```swift
    /// let report = try await harness.replay(fixturesIn: "Tests/Fixtures", against: [monolith, service])
    /// #expect(report.allMatch, "\(report)")
    /// ```
    public func replay(
        fixturesIn directory: String, against targets: [Target], dryRunWrites: Bool = true
    ) async throws -> FixtureReport {
        try await self.replay(Fixture.load(directory: directory), against: targets, dryRunWrites: dryRunWrites)
    }

    /// Replays `fixtures` (file name and fixture) against each target.
    public func replay(
        _ fixtures: [(file: String, fixture: Fixture)], against targets: [Target], dryRunWrites: Bool = true
    ) async throws -> FixtureReport {
        var outcomes = Array(repeating: [FixtureReport.Outcome](), count: fixtures.count)
        for target in targets {
            if let prepare = target.prepare { try await prepare() }
            for (index, item) in fixtures.enumerated() {
                let fixture = item.fixture
                var request = fixture.request
                request.headers = request.headers.filter {
                    !Self.unreplayedHeaders.contains($0.name.lowercased()) && !$0.value.hasPrefix("[redacted")
                }
                if dryRunWrites, HTTPMethodRules.isWrite(request.method) {
                    request.headers.append(("Strangler-Dry-Run", "1"))
                }
                let route = self.route(
                    id: self.routes?.route(id: fixture.route) != nil ? fixture.route : nil, method: request.method,
                    path: request.path)
                do {
                    let answer = try await self.client.send(request, to: target.endpoint)
                    let options = self.options(
                        for: route, ignore: self.redactedPointers(fixture, route: route), headers: DiffOptions().headers
                    )
                    let comparison = ResponseDiffer.compare(
                        fixture.monolith.snapshot, answer.snapshot, options: options)
                    outcomes[index].append(
                        FixtureReport.Outcome(target: target.name, answer: answer, comparison: comparison, error: nil))
                } catch {
                    outcomes[index].append(
                        FixtureReport.Outcome(target: target.name, answer: nil, comparison: nil, error: "\(error)"))
                }
            }
        }
        return FixtureReport(
            results: fixtures.indices.map {
                FixtureReport.Result(file: fixtures[$0].file, fixture: fixtures[$0].fixture, outcomes: outcomes[$0])
            })
    }

    /// Where the recorded answer holds redacted values (the table's and the route's rules, and every stored token):
    /// a live answer holds the real ones there, so those places are not compared.
    func redactedPointers(_ fixture: Fixture, route: Route?) -> [String] {
        let privacy = self.routes?.privacy ?? .defaults
        let rules = RedactionRules(
            defaults: privacy.defaults, fields: privacy.fields + (route?.shadow?.redactFields ?? []),
            pointers: privacy.pointers + (route?.shadow?.redact ?? []))
        guard let recorded = try? JSONParser.parse(fixture.monolith.body) else { return rules.pointers }
        return rules.pointers + Redaction.redactedPointers(in: recorded, rules: rules)
    }
}
