import ArgumentParser
import Foundation
import JSON
import ProxyTestSupport
import Testing

@testable import StranglerCommands

/// The README and docs/ kept honest: every `strangler …` command line they show parses with the CLI's own parser (so
/// a removed or misspelled option fails here), and the route counts they quote for the demo table are those of the
/// repository's routes.json.
@Suite("Docs: command lines and counts")
struct DocsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var documents: [URL] {
        let docs = Self.repository.appendingPathComponent("docs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: docs.path)) ?? []
        return [Self.repository.appendingPathComponent("README.md")]
            + names.filter { $0.hasSuffix(".md") }.sorted().map { docs.appendingPathComponent($0) }
    }

    /// A command line found in a document: where, and its words after `strangler`.
    struct CommandLine: CustomStringConvertible {
        var file: String
        var line: Int
        var words: [String]
        var description: String { "\(self.file):\(self.line): strangler \(self.words.joined(separator: " "))" }
    }

    /// Every `strangler SUBCOMMAND …` in a fenced block: typed (`$ strangler …`, `swift run strangler …`) or
    /// printed by the CLI as a suggestion (`undo with: strangler undo`, `(run: strangler reconcile contacts)`).
    /// Synopses (with `[--option]` or `A|B` placeholders) and the CLI's own messages (`strangler stage: 1 of 1 …`)
    /// are not commands.
    static func commandLines() throws -> [CommandLine] {
        var found: [CommandLine] = []
        for document in Self.documents {
            let name = document.lastPathComponent
            let lines = try String(contentsOf: document, encoding: .utf8).components(separatedBy: "\n")
            var fenced = false
            var index = 0
            while index < lines.count {
                var line = lines[index]
                index += 1
                if line.hasPrefix("```") {
                    fenced.toggle()
                    continue
                }
                guard fenced,
                    let range = line.range(of: #"(?<![\w./-])strangler (?=[a-z])"#, options: .regularExpression)
                else { continue }
                let number = index
                // A trailing backslash continues the command on the next line.
                while line.hasSuffix("\\"), index < lines.count {
                    line = String(line.dropLast()) + " " + lines[index].trimmingCharacters(in: .whitespaces)
                    index += 1
                }
                var text = String(line[range.upperBound...])
                for end in [" #", " | ", "; ", "   "] {
                    if let cut = text.range(of: end) { text = String(text[..<cut.lowerBound]) }
                }
                if text.hasSuffix(")") { text.removeLast() }
                let words = Self.shellWords(text)
                guard let first = words.first, !first.hasSuffix(":"), !text.contains("[--"), !text.contains("...")
                else { continue }
                found.append(CommandLine(file: name, line: number, words: words))
            }
        }
        return found
    }

    /// Words as a POSIX shell splits them: single and double quotes, backslash escapes outside single quotes.
    static func shellWords(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
            } else if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\", open == "\"" {
                    escaped = true
                } else {
                    current.append(character)
                }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    @Test func theScannerFindsCommandsAndLeavesSynopsesAndMessages() {
        #expect(
            Self.shellWords(#"stage 'contacts.*' coexist --reason "a b" x\ y"#) == [
                "stage", "contacts.*", "coexist", "--reason", "a b", "x y",
            ])
    }

    @Test func everyCommandLineInTheDocsParses() throws {
        let lines = try Self.commandLines()
        // The README's quick start and the runbook alone show dozens; far fewer means the scanner broke.
        #expect(lines.count > 60, "\(lines.count) command lines found")
        for line in lines {
            do {
                _ = try Strangler.parseAsRoot(line.words)
            } catch {
                Issue.record("\(line) does not parse: \(Strangler.message(for: error))")
            }
        }
    }

    @Test func theRouteCountsTheDocsQuoteAreTheRepositorysTable() throws {
        let table = try JSONParser.parse(
            try String(contentsOf: Self.repository.appendingPathComponent("routes.json"), encoding: .utf8))
        let routes = table["routes"]?.arrayValue ?? []
        let withoutService = routes.filter { $0["service"] == nil }.count
        #expect(routes.count > 0)
        #expect(
            routes.allSatisfy { $0["stage"]?.stringValue == "transform" },
            "the repository's table starts with every route in transform")
        var checked = 0
        for document in Self.documents
        where ["README.md", "up.md", "runbook.md", "gates.md"].contains(document.lastPathComponent) {
            let text = try String(contentsOf: document, encoding: .utf8)
            let name = document.lastPathComponent
            // The up banner on a fresh table: "(27 routes: 27 transform)".
            for match in text.matches(of: #/\((\d+) routes: (\d+) transform\)/#) {
                #expect(Int(match.1) == routes.count && Int(match.2) == routes.count, "\(name): \(match.0)")
                checked += 1
            }
            // strangler routes' last line: "27 routes (21 transform, 6 coexist)", or for a selection "6 of 27 routes (6
            // coexist)".
            for match in text.matches(
                of: #/(\d+) (?:of (\d+) )?routes? \(((?:\d+ (?:transform|coexist|eliminate)(?:, )?)+)\)/#)
            {
                let stages = match.3.split(separator: ", ").compactMap { Int($0.split(separator: " ")[0]) }
                #expect(
                    Int(match.2 ?? match.1) == routes.count && stages.reduce(0, +) == Int(match.1),
                    "\(name): \(match.0)")
                checked += 1
            }
            // The report's summary: "27 routes: 12 ready to move, 5 blocked, 1 in eliminate, 9 without a service".
            for match in text.matches(of: #/(\d+) routes: ((?:\d+ [a-z ]+(?:, )?)+)/#)
            where match.2.contains("without a service") {
                let parts = match.2.split(separator: ", ")
                let counts = parts.compactMap { Int($0.split(separator: " ")[0]) }
                #expect(Int(match.1) == routes.count && counts.reduce(0, +) == routes.count, "\(name): \(match.0)")
                let without = parts.first { $0.hasSuffix("without a service") }.flatMap {
                    Int($0.split(separator: " ")[0])
                }
                #expect(
                    without == withoutService,
                    "\(name): \(match.0): the table has \(withoutService) routes without a service")
                checked += 1
            }
        }
        #expect(checked >= 4, "\(checked) counts checked")
    }
}
