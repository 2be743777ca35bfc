public import ArgumentParser
import DiffStore
import Foundation
import JSON
import RouteTable
import SharedStore
import StranglerTesting

/// `strangler fixtures`: mismatches found by shadow traffic, as regression tests.
public struct FixturesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fixtures",
        abstract:
            "Turn stored shadow mismatches into test fixtures, and replay them against the monolith and the services.",
        discussion: """
            Each mismatch sample the proxy kept in <data>/diffs.sqlite (the request, the monolith's answer, the \
            service's answer, the diff) becomes one JSON file (format: docs/testing.md). Replaying a folder sends \
            every request to each target and compares its answer with the monolith's recorded one under the route's \
            rules.

            Examples:
              strangler fixtures export --route contacts.get --out fixtures
              strangler fixtures replay fixtures --target service=http://127.0.0.1:8082
            """,
        subcommands: [FixturesExportCommand.self, FixturesReplayCommand.self]
    )

    public init() {}
}

/// `strangler fixtures export`: writes stored mismatch samples as fixture files.
public struct FixturesExportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write stored mismatch samples (request plus the monolith's answer) as fixture files.",
        discussion: """
            Reads <data>/diffs.sqlite (the proxy may keep running), or with --store (or STRANGLER_STORE) the shared \
            store every proxy keeps its samples in, and writes one file per sample into --out, named \
            <route>-<signature>-<sample id>.json; an existing file of that name is replaced. Samples hold what the \
            proxy kept: personal data and secrets redacted as keyed tokens ("[redacted:<hash>]", docs/shadow.md), \
            which `strangler purge --subject VALUE --fixtures DIR` finds again.

            Exit status: 0 done (also when there was nothing to export), 2 error (no --out, unknown route or \
            signature, unreadable diff store, unwritable folder).

            Examples:
              strangler fixtures export --out fixtures
              strangler fixtures export --route contacts.get --signature 8fc54d0f1848785b \\
                --out fixtures
            """
    )

    @Option(help: "Only this route's samples (a route id, as in routes.json).")
    public var route: String?

    @Option(
        help: ArgumentHelp(
            "Only samples of this mismatch signature (its 16-hex-digit id; needs --route).", valueName: "id"))
    public var signature: String?

    @Option(help: ArgumentHelp("The folder to write the fixtures to (created if missing).", valueName: "dir"))
    public var out: String?

    @Option(help: "The proxy's data directory (holds diffs.sqlite).")
    public var data: String = ".strangler"

    @Option(
        help: ArgumentHelp(
            "Read the shared store's samples instead (default STRANGLER_STORE); the password in PGPASSWORD.",
            valueName: "postgres://USER@HOST:PORT/DB"))
    public var store: String?

    @Option(help: ArgumentHelp("At most this many samples per route (newest first).", valueName: "n"))
    public var limit: Int = 1000

    public init() {}

    public func validate() throws {
        guard let out, !out.isEmpty else {
            throw ValidationError(
                "--out DIR is required: the folder to write the fixture files to (created if missing)")
        }
        if let route, route.isEmpty { throw ValidationError("--route must not be empty") }
        if let signature {
            guard self.route != nil else {
                throw ValidationError("--signature needs --route (a signature belongs to one route)")
            }
            guard signature.count == 16, signature.allSatisfy(\.isHexDigit) else {
                throw ValidationError(
                    "--signature must be a signature id (16 hex digits, as `strangler routes` and GET /admin/diffs "
                        + "show), not \"\(signature)\""
                )
            }
        }
        guard self.limit >= 1 else { throw ValidationError("--limit must be 1 or more, not \(self.limit)") }
        _ = try StoreFlag.optionalLocation(self.store)
    }

    /// What a run prints, and its exit status.
    struct Outcome {
        var output = ""
        var error = ""
        var status: Int32 = 0
        /// The files written.
        var files: [String] = []
    }

    struct Failure: Error {
        var message: String
    }

    public func run() async throws {
        let outcome = await self.outcome()
        if !outcome.output.isEmpty { FileHandle.standardOutput.write(Data(outcome.output.utf8)) }
        if !outcome.error.isEmpty { FileHandle.standardError.write(Data(outcome.error.utf8)) }
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }

    func outcome() async -> Outcome {
        do {
            return try await self.export()
        } catch {
            return Outcome(
                error: "strangler fixtures export: \((error as? Failure)?.message ?? "\(error)")\n", status: 2)
        }
    }

    func export() async throws -> Outcome {
        let shared: SharedStore?
        do {
            shared = try await StoreFlag.connect(self.store)
        } catch {
            throw Failure(message: "\(error)")
        }
        defer { shared?.close() }
        return try await self.export(from: shared)
    }

    func export(from shared: SharedStore?) async throws -> Outcome {
        let out = self.out ?? ""
        let path =
            shared?.storeDescription ?? URL(fileURLWithPath: self.data).appendingPathComponent("diffs.sqlite").path
        if shared == nil, !FileManager.default.fileExists(atPath: path) {
            throw Failure(message: "no diff store at \(path) (is --data the proxy's data directory?)")
        }
        let store: any DiffReading
        let routes: [String]
        var signatureTexts: [String: String] = [:]
        do {
            store = try shared ?? DiffStore.open(path: path)
            // Every route the store counted: the recorder writes a sample's counts in the same batch as the sample.
            let summary = try await store.summary(route: nil, pointerLimit: 0)["routes"]?.arrayValue ?? []
            routes = summary.compactMap { $0["route"]?.stringValue }.sorted()
            for item in summary {
                for signature in item["signatures"]?.arrayValue ?? [] {
                    if let route = item["route"]?.stringValue, let id = signature["id"]?.stringValue {
                        signatureTexts["\(route) \(id)"] = signature["signature"]?.stringValue
                    }
                }
            }
        } catch {
            throw Failure(message: "cannot read the diff store at \(path): \(error)")
        }
        var selected = routes
        if let route = self.route {
            guard routes.contains(route) else {
                throw Failure(
                    message:
                        "the diff store has no route \"\(route)\" (routes it knows: "
                        + "\(routes.isEmpty ? "none yet" : routes.joined(separator: ", ")))"
                )
            }
            selected = [route]
            if let signature, signatureTexts["\(route) \(signature)"] == nil {
                let known = signatureTexts.keys.filter { $0.hasPrefix(route + " ") }.map {
                    String($0.dropFirst(route.count + 1))
                }.sorted()
                throw Failure(
                    message:
                        "route \(route) has no mismatch signature \"\(signature)\" (its signatures: "
                        + "\(known.isEmpty ? "none" : known.joined(separator: ", ")))"
                )
            }
        }

        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw Failure(message: "cannot create \(out): \(error.localizedDescription)")
        }
        var outcome = Outcome()
        var perRoute: [(String, Int)] = []
        for route in selected {
            let samples: [JSONValue]
            do {
                samples =
                    try await store.samples(route: route, signature: self.signature, limit: self.limit).arrayValue ?? []
            } catch {
                throw Failure(message: "cannot read the samples of \(route) from \(path): \(error)")
            }
            for sample in samples {
                let fixture = try Self.fixture(
                    from: sample, signatureText: signatureTexts["\(route) \(sample["signature"]?.stringValue ?? "")"])
                let id = Int(sample["id"]?.numberValue ?? 0)
                let name = Self.fileName("\(route)-\(fixture.signature)-\(id)") + ".json"
                let file = URL(fileURLWithPath: out).appendingPathComponent(name).path
                do {
                    try Data((fixture.json.prettyJSONText + "\n").utf8).write(
                        to: URL(fileURLWithPath: file), options: .atomic)
                } catch {
                    throw Failure(message: "cannot write \(file): \(error.localizedDescription)")
                }
                outcome.files.append(file)
            }
            if !samples.isEmpty { perRoute.append((route, samples.count)) }
        }
        if outcome.files.isEmpty {
            outcome.output =
                "nothing to export: no mismatch sample\(self.route.map { " for \($0)" } ?? "")"
                + "\(self.signature.map { " with signature \($0)" } ?? "") in \(path)\n"
        } else {
            let routesText = perRoute.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            outcome.output =
                "wrote \(outcome.files.count) fixture\(outcome.files.count == 1 ? "" : "s") to \(out) (\(routesText))\n"
        }
        return outcome
    }

    /// A sample as `DiffStore.samples` gives it, as a fixture.
    static func fixture(from sample: JSONValue, signatureText: String?) throws -> Fixture {
        var members = (sample.objectValue ?? []).filter { !["id", "format"].contains($0.key) }
        members.insert(("format", .string(Fixture.format)), at: 0)
        if let signatureText { members.append(("signatureText", .string(signatureText))) }
        do {
            return try Fixture(json: .object(members), source: "sample \(sample["id"]?.jsonText ?? "?")")
        } catch {
            throw Failure(message: error.description)
        }
    }

    /// Letters, digits, `.`, `-` and `_`; anything else becomes `_`.
    static func fileName(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }
}

/// `strangler fixtures replay`: sends every fixture of a folder to each target and compares with the monolith's
/// recorded answer.
public struct FixturesReplayCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a folder of fixtures against targets; compare each answer with the monolith's recorded one.",
        discussion: """
            Each fixture's request goes to every --target (writes with Strangler-Dry-Run: 1 unless --real-writes); the \
            answer is compared with the monolith's recorded answer as the proxy compares shadows: status, Content-Type \
            and the body under the route's rules from --routes (ignore, arrays, redact). The records the requests name \
            must exist on the targets (replay against the environment the samples came from, or one restored from it).

            Exit status: 0 every fixture matches on every target, 1 some differ, 2 error.

            Example:
              strangler fixtures replay fixtures --target monolith=http://127.0.0.1:8081 \\
                --target contacts=http://127.0.0.1:8082
            """
    )

    @Argument(help: "The folder of fixture files (*.json).")
    public var folder: String

    @Option(
        help: ArgumentHelp(
            "A target to replay against, NAME=URL (http://host:port); repeatable.", valueName: "name=url"))
    public var target: [String] = []

    @Option(help: "The route table whose rules apply.")
    public var routes: String = "routes.json"

    @Flag(help: "Send writes for real (by default they carry Strangler-Dry-Run: 1).")
    public var realWrites: Bool = false

    public init() {}

    public func validate() throws {
        guard !self.target.isEmpty else {
            throw ValidationError("give at least one --target NAME=URL, e.g. --target service=http://127.0.0.1:8082")
        }
        for item in self.target {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex,
                (try? HTTPEndpoint(url: String(item[item.index(after: equals)...]))) != nil
            else {
                throw ValidationError(
                    "--target must be NAME=URL such as service=http://127.0.0.1:8082, not \"\(item)\"")
            }
        }
    }

    public func run() async throws {
        let outcome = await self.outcome()
        if !outcome.output.isEmpty { FileHandle.standardOutput.write(Data(outcome.output.utf8)) }
        if !outcome.error.isEmpty { FileHandle.standardError.write(Data(outcome.error.utf8)) }
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }

    func outcome() async -> FixturesExportCommand.Outcome {
        do {
            let targets = try self.target.map { item in
                let equals = item.firstIndex(of: "=")!
                return try Target(String(item[..<equals]), url: String(item[item.index(after: equals)...]))
            }
            let harness = try ParityHarness(routesFile: self.routes)
            let report = try await harness.replay(
                fixturesIn: self.folder, against: targets, dryRunWrites: !self.realWrites)
            return FixturesExportCommand.Outcome(output: report.description + "\n", status: report.allMatch ? 0 : 1)
        } catch {
            return FixturesExportCommand.Outcome(error: "strangler fixtures replay: \(error)\n", status: 2)
        }
    }
}
