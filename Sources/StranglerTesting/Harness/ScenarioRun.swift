public import Diff
import Foundation
import JSON

/// A request as one target got it, and its answer.
public struct Exchange: Sendable {
    public var request: HTTPRequestData
    public var answer: HTTPAnswer
}

/// Where a target's answer to a step differs from the reference's.
public struct StepDifference: Sendable {
    public var reference: String
    public var target: String
    public var referenceExchange: Exchange
    public var targetExchange: Exchange
    public var comparison: ResponseComparison
}

/// One step of a run: what each target was asked and answered (nil where a target had stopped), and the differences.
public struct StepRun: Sendable {
    /// From 0.
    public var index: Int
    public var step: Step
    /// The route whose rules applied, if any.
    public var route: String?
    /// In the order of the targets.
    public var exchanges: [Exchange?]
    public var differences: [StepDifference]

    /// The answer of the target at `index` (0 is the reference).
    public func answer(_ target: Int) -> HTTPAnswer? { self.exchanges[target]?.answer }
}

/// The outcome of a scenario against its targets.
public struct ScenarioRun: Sendable, CustomStringConvertible {
    public var scenario: String
    public var targets: [String]
    public var steps: [StepRun]
    /// What went wrong apart from differences: the reference answering another status than a step expects, a value
    /// that could not be captured, a variable never set.
    public var problems: [String]

    /// No step differs and nothing went wrong.
    public var agrees: Bool { self.problems.isEmpty && self.steps.allSatisfy { $0.differences.isEmpty } }

    /// Every difference of every step.
    public var differences: [StepDifference] { self.steps.flatMap(\.differences) }

    /// How many requests were sent.
    public var requests: Int { self.steps.reduce(0) { $0 + $1.exchanges.compactMap { $0 }.count } }

    public var description: String {
        let differing = self.steps.filter { !$0.differences.isEmpty }
        var lines = [
            "scenario \"\(self.scenario)\" against \(self.targets.joined(separator: ", ")): \(self.steps.count) steps, "
                + "\(self.requests) requests, "
                + (self.agrees
                    ? "all agree"
                    : "\(differing.count) step\(differing.count == 1 ? "" : "s") differ, \(self.problems.count) "
                        + "problem\(self.problems.count == 1 ? "" : "s")")
        ]
        for problem in self.problems { lines.append("  problem: \(problem)") }
        for step in differing {
            lines.append("step \(step.index + 1): \(step.step)\(step.route.map { " (route \($0))" } ?? "")")
            for difference in step.differences {
                lines += DiffText.lines(difference).map { "  " + $0 }
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The scenario's targets did not agree: the description names each differing step, both answers' statuses, and
/// the diff (differences under the route's rules, then both bodies).
public struct ParityFailure: Error, Sendable, CustomStringConvertible {
    public var run: ScenarioRun

    public init(run: ScenarioRun) {
        self.run = run
    }

    public var description: String { self.run.description }
}

/// Human-readable diffs.
enum DiffText {
    static func lines(_ difference: StepDifference) -> [String] {
        let left = difference.referenceExchange
        let right = difference.targetExchange
        var lines = [
            "\(difference.reference): \(left.request) → \(left.answer.status)",
            "\(difference.target): \(right.request) → \(right.answer.status)",
        ]
        lines += Self.lines(difference.comparison).map { "  " + $0 }
        lines.append("  \(difference.reference) body: \(Self.excerpt(left.answer.text))")
        lines.append("  \(difference.target) body: \(Self.excerpt(right.answer.text))")
        return lines
    }

    /// One line per difference: status, headers, body.
    static func lines(_ comparison: ResponseComparison) -> [String] {
        var lines: [String] = []
        if let status = comparison.status { lines.append("status changed: \(status.left) → \(status.right)") }
        if let mediaType = comparison.mediaType {
            lines.append("media type changed: \(mediaType.left) → \(mediaType.right) (bodies not compared)")
        }
        for header in comparison.headers {
            lines.append(
                "header \(header.name) \(header.kind.rawValue): \(header.left ?? "(none)") → "
                    + "\(header.right ?? "(none)")"
            )
        }
        switch comparison.body {
        case .equal:
            break
        case .bytes(let offset, let line):
            lines.append("body changed (compared as bytes) at byte \(offset)\(line.map { ", line \($0)" } ?? "")")
        case .json(let result):
            for item in result.differences {
                let pointer = item.pointer.isEmpty ? "(root)" : item.pointer
                switch item.kind {
                case .added: lines.append("added \(pointer): \(Self.excerpt(item.right?.jsonText ?? ""))")
                case .removed: lines.append("removed \(pointer): \(Self.excerpt(item.left?.jsonText ?? ""))")
                default:
                    lines.append(
                        "\(item.kind.rawValue) \(pointer): \(Self.excerpt(item.left?.jsonText ?? "")) → "
                            + "\(Self.excerpt(item.right?.jsonText ?? ""))"
                    )
                }
            }
            if result.truncated { lines.append("… \(result.totalCount - result.differences.count) more") }
        }
        return lines
    }

    static func excerpt(_ text: String, limit: Int = 800) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: "\\n")
        return flat.count > limit ? String(flat.prefix(limit)) + "…" : flat
    }
}
