import ArgumentParser
import Foundation
import Testing

@testable import StranglerCommands

@Suite("strangler diff")
struct DiffCommandTests {
    /// Two files in a fresh temporary directory, removed after `body`.
    func withFiles<Result>(
        _ left: String, _ right: String, _ body: (String, String, String) async throws -> Result
    ) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-diff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let leftPath = directory.appendingPathComponent("a.json").path
        let rightPath = directory.appendingPathComponent("b.json").path
        try Data(left.utf8).write(to: URL(fileURLWithPath: leftPath))
        try Data(right.utf8).write(to: URL(fileURLWithPath: rightPath))
        return try await body(leftPath, rightPath, directory.path)
    }

    func outcome(_ arguments: [String]) async throws -> DiffCommand.Outcome {
        try await DiffCommand.parse(arguments).outcome()
    }

    /// The exit code that running `strangler <arguments>` ends with.
    func exitCode(_ arguments: [String]) async throws -> Int32 {
        var command = try Strangler.parseAsRoot(arguments)
        do {
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        }
    }

    @Test func exitsZeroWhenEqualOneWhenDifferentTwoOnError() async throws {
        try await self.withFiles(#"{"a": 1, "b": [1, 2]}"#, #"{"b": [1, 2], "a": 1.0}"#) { left, right, _ in
            let code = try await self.exitCode(["diff", left, right])
            #expect(code == 0)
        }
        try await self.withFiles(#"{"a": 1}"#, #"{"a": 2}"#) { left, right, directory in
            let different = try await self.exitCode(["diff", left, right, "--output", "json"])
            let missing = try await self.exitCode(["diff", left, directory + "/missing.json"])
            let badFlag = try await self.exitCode(["diff", left, right, "--arrays", "foo"])
            #expect(different == 1)
            #expect(missing == 2)
            #expect(badFlag == 2)
        }
    }

    @Test func textOutputHasOneLinePerDifferenceAndASummary() async throws {
        let left = #"{"items": [{"id": 1, "title": "CEO"}, {"id": 2, "title": "CTO", "phone": "555"}]}"#
        let right = #"{"items": [{"id": 1, "title": "Changed"}, {"id": 2, "title": "CTO"}]}"#
        try await self.withFiles(left, right) { leftPath, rightPath, _ in
            let outcome = try await self.outcome([leftPath, rightPath])
            #expect(outcome.status == 1)
            let lines = outcome.output.split(separator: "\n").map(String.init)
            #expect(lines[0] == #"changed /items/0/title: "CEO" → "Changed""#)
            #expect(lines[1] == #"removed /items/1/phone: "555""#)
            #expect(lines[2].hasPrefix("2 differences; signature "))
            #expect(lines[2].hasSuffix(": /items/*/phone removed, /items/*/title changed"))
        }
    }

    @Test func jsonOutputHasEqualDifferencesAndSignature() async throws {
        try await self.withFiles(
            #"{"list": [{"id": "x", "n": 1}, {"id": "y", "n": 2}]}"#,
            #"{"list": [{"id": "y", "n": 3}, {"id": "x", "n": 1}]}"#
        ) {
            left, right, _ in
            let outcome = try await self.outcome([left, right, "--arrays", "/list=id", "--output", "json"])
            #expect(outcome.status == 1)
            let report = try JSONSerialization.jsonObject(with: Data(outcome.output.utf8)) as? [String: Any]
            #expect(report?["equal"] as? Bool == false)
            let differences = report?["differences"] as? [[String: Any]]
            #expect(differences?.count == 1)
            #expect(differences?.first?["pointer"] as? String == "/list/1/n")
            #expect(differences?.first?["kind"] as? String == "changed")
            #expect(differences?.first?["left"] as? Int == 2)
            #expect(differences?.first?["right"] as? Int == 3)
            #expect(report?["signature"] as? String == "/list/*/n changed")
        }
    }

    @Test func ignoreAndToleranceApply() async throws {
        try await self.withFiles(
            #"{"meta": {"at": 1}, "items": [{"u": 1, "x": 1.0}]}"#,
            #"{"meta": {"at": 2}, "items": [{"u": 2, "x": 1.004}]}"#
        ) {
            left, right, _ in
            let tolerated = try await self.outcome([
                left, right, "--ignore", "/meta", "--ignore", "/items/*/u", "--tolerance", "0.01",
            ])
            let exact = try await self.outcome([left, right, "--ignore", "/meta", "--ignore", "/items/*/u"])
            #expect(tolerated.status == 0)
            #expect(exact.status == 1)
        }
    }

    @Test func errorsNameTheFileLineAndColumnOrTheFlag() async throws {
        try await self.withFiles("{\n  \"a\": 1,\n  \"b\" 2\n}", "{}") { left, right, directory in
            let invalid = try await self.outcome([left, right])
            #expect(invalid.status == 2)
            #expect(invalid.output.isEmpty)
            #expect(invalid.error.contains("\(left): line 3, column 7: expected ':' after a key"))

            let missing = try await self.outcome([right, directory + "/nope.json"])
            #expect(missing.status == 2)
            #expect(missing.error.contains("nope.json: No such file or directory"))

            let cases: [([String], String)] = [
                (["--arrays", "foo"], "--arrays foo: expected POINTER=KEY"),
                (["--arrays", "items=id"], "--arrays items=id: items is not a JSON pointer"),
                (["--arrays", "/items="], "the key field is empty"),
                (["--ignore", "meta"], "--ignore meta: not a JSON pointer"),
                (["--tolerance", "abc"], "--tolerance abc: expected a number"),
                (["--tolerance=-1"], "--tolerance -1: expected a number, 0 or more"),
                (["--output", "yaml"], "--output yaml: expected text or json"),
                (["--max-differences", "x"], "--max-differences x"),
            ]
            for (flags, message) in cases {
                let outcome = try await self.outcome([right, right] + flags)
                #expect(outcome.status == 2, "\(flags)")
                #expect(outcome.error.contains(message), "\(flags): \(outcome.error)")
            }
            let directoryOutcome = try await self.outcome([directory, right])
            #expect(directoryOutcome.status == 2)
            #expect(directoryOutcome.error.contains(directory))
        }
    }

    @Test func reportedDifferencesCanBeCappedButAreAllCounted() async throws {
        try await self.withFiles("[1, 2, 3, 4]", "[5, 6, 7, 8]") { left, right, _ in
            let outcome = try await self.outcome([left, right, "--max-differences", "2"])
            #expect(outcome.status == 1)
            #expect(outcome.output.contains("… 2 more not shown"))
            #expect(outcome.output.contains("4 differences; signature"))
        }
    }
}
