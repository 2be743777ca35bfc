public import ArgumentParser
import ControlPlane
import DiffStore
import Foundation
import JSON
import Reports

/// `strangler triage ROUTE SIGNATURE --accept|--ignore|--reset --reason TEXT`.
public struct TriageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "triage",
        abstract:
            "Decide on a mismatch signature of a route: an accepted difference, or ignore rules. Untriaged signatures "
            + "block eliminate.",
        discussion: """
            SIGNATURE is the 16-digit id that `strangler routes --output json` and GET /admin/diffs show. --accept \
            records the difference as known and accepted. --ignore also turns the signature's pointers into the \
            route's shadow.ignore rules (a table change, through the same If-Match and audit as every change); a \
            signature with status, header or non-JSON body differences cannot be ignored, only accepted. Either way \
            the signature no longer blocks eliminate, and its mismatches count as explained in the match rate. A \
            signature that differs at several pointers is ignored only with --paths (the pointers to ignore: the \
            signature stays untriaged while its other differences remain) or --all-paths. New ignore rules compare \
            the route's kept samples again: signatures they now explain become "explained", and the match rate \
            before and after is printed. --reset takes a decision back: the signature is untriaged again and blocks \
            eliminate again (ignore rules an earlier --ignore added stay in routes.json: `strangler undo` right after \
            the --ignore takes both back, or remove them with an edit of the table).

            Exit status: 0 recorded, 2 usage error (unknown route or signature, not ignorable), 3 proxy unreachable, 4 \
            the table changed meanwhile.

            Examples:
              strangler triage contacts.get 8c0f2a9e5d3b1c47 --accept --reason "service rounds amounts to cents, \
            agreed with finance"
              strangler triage contacts.get 1f2e3d4c5b6a7988 --ignore --reason "updatedAt differs by clock skew"
              strangler triage orders.get 5a6b7c8d9e0f1a2b --ignore --paths /updatedAt --reason "clock skew"
              strangler triage contacts.get 8c0f2a9e5d3b1c47 --reset --reason "finance did not agree after all"
            """
    )

    @Argument(help: "The route id.")
    public var route: String

    @Argument(help: "The mismatch signature's id.")
    public var signature: String

    @Flag(help: "Record the difference as known and accepted.")
    public var accept: Bool = false

    @Flag(help: "Turn the signature's pointers into the route's shadow.ignore rules.")
    public var ignore: Bool = false

    @Flag(help: "Take the decision back: the signature is untriaged again.")
    public var reset: Bool = false

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "With --ignore: the signature's pointers to ignore, when it differs at several.", valueName: "pointer"))
    public var paths: [String] = []

    @Flag(help: "With --ignore: ignore every pointer of a signature that differs at several.")
    public var allPaths: Bool = false

    @Option(help: "Why (required; recorded with the decision).")
    public var reason: String

    @OptionGroup public var control: ControlOptions

    public init() {}

    public func validate() throws {
        guard [self.accept, self.ignore, self.reset].filter({ $0 }).count == 1 else {
            throw ValidationError("pass exactly one of --accept, --ignore and --reset")
        }
        guard !self.reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError("--reason must not be empty")
        }
        if !self.ignore, !self.paths.isEmpty || self.allPaths {
            throw ValidationError("--paths and --all-paths go with --ignore")
        }
        guard self.paths.isEmpty || !self.allPaths else {
            throw ValidationError("pass --paths or --all-paths, not both")
        }
        for path in self.paths where !path.hasPrefix("/") {
            throw ValidationError("--paths \(path): not a JSON pointer (it starts with /)")
        }
    }

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(self.control)
            var etag: String?
            if self.ignore {
                etag = try await session.table().contentHash
            }
            let decision: TriageDecision.Decision = self.accept ? .accepted : self.ignore ? .ignored : .reset
            let outcome = try await session.triage(
                route: self.route, signature: self.signature, decision: decision, expectedHash: etag,
                reason: self.reason, paths: self.paths.isEmpty ? nil : self.paths, allPaths: self.allPaths)
            let said =
                decision == .reset
                ? "untriaged again (blocks eliminate)"
                : outcome.recorded ? decision.rawValue : "partly ignored: its other differences leave it untriaged"
            var text = "\(self.route) \(self.signature) (\(outcome.text)): \(said)\n"
            if let rules = outcome.ignoreAdded {
                text +=
                    rules.isEmpty
                    ? "its pointers were ignored already\n"
                    : "shadow.ignore += \(rules.joined(separator: ", ")) (\(session.target))\n"
            }
            for review in outcome.reviews { text += review.text + "\n" }
            return CommandOutcome(output: text)
        } catch {
            return CommandOutcome(error: "strangler triage: \(error.message)\n", status: error.status)
        }
    }
}
