public import ArgumentParser
import Diff
import Foundation
import JSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strangler diff`: compares two JSON documents structurally, as the proxy compares shadowed responses.
public struct DiffCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract:
            "Compare two JSON documents structurally: every difference with its RFC 6901 pointer, and the signature.",
        discussion: """
            Key order never matters, 1 and 1.0 are equal, "\\u00e9" and "é" are equal. Arrays compare by index, or as \
            sets of objects matched by a key field (--arrays /items=id). Pointers in --ignore and --arrays may use * \
            for one segment; an ignored pointer ignores its whole subtree.

            Exit status: 0 equal, 1 different, 2 error (unreadable file, invalid JSON, bad option value).

            Example:
              strangler diff monolith.json service.json --ignore /meta --ignore /items/*/updatedAt --arrays /items=id
            """
    )

    @Argument(help: "The left JSON document (the reference, e.g. the monolith's answer).")
    public var left: String

    @Argument(help: "The right JSON document.")
    public var right: String

    @Option(
        help: ArgumentHelp("Ignore the subtree at this pointer (* for one segment); repeatable.", valueName: "pointer"))
    public var ignore: [String] = []

    @Option(
        help: ArgumentHelp(
            "Compare the array at this pointer by the key field of its objects; repeatable.", valueName: "pointer=key"))
    public var arrays: [String] = []

    @Option(help: ArgumentHelp("Numbers are equal when they differ by at most this much.", valueName: "x"))
    public var tolerance: String = "0"

    @Option(help: ArgumentHelp("text (one line per difference, then a summary) or json.", valueName: "format"))
    public var output: String = "text"

    @Option(help: ArgumentHelp("Report at most this many differences (all are counted).", valueName: "n"))
    public var maxDifferences: String?

    @Option(help: ArgumentHelp("Deepest nesting accepted.", valueName: "n"))
    public var maxDepth: String = "512"

    public init() {}

    /// Bad option values exit with status 2 (not ArgumentParser's usage status), so the codes stay 0/1/2.
    struct Failure: Error {
        var message: String
    }

    /// What a run prints, and its exit status.
    struct Outcome {
        var output = ""
        var error = ""
        var status: Int32
    }

    public func run() async throws {
        let outcome = await self.outcome()
        if !outcome.output.isEmpty { FileHandle.standardOutput.write(Data(outcome.output.utf8)) }
        if !outcome.error.isEmpty { FileHandle.standardError.write(Data(outcome.error.utf8)) }
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }

    /// The comparison, its report and status: 0 equal, 1 different, 2 error.
    func outcome() async -> Outcome {
        do {
            let options = try self.options()
            let format = try self.format()
            // The two files are read and parsed at the same time.
            let (leftPath, rightPath) = (self.left, self.right)
            async let leftDocument = Self.load(leftPath, side: .left, options: options)
            async let rightDocument = Self.load(rightPath, side: .right, options: options)
            let (left, right) = try await (leftDocument, rightDocument)
            let result = JSONDiff.diff(left, right, options: options)
            let text = format == "json" ? Self.jsonReport(result) : Self.textReport(result)
            return Outcome(output: text, status: result.isEqual ? 0 : 1)
        } catch {
            let message = (error as? Failure)?.message ?? "\(error)"
            return Outcome(error: "strangler diff: \(message)\n", status: 2)
        }
    }

    func options() throws -> DiffOptions {
        var options = DiffOptions()
        for pointer in self.ignore {
            guard PointerPattern.isValid(pointer) else {
                throw Failure(
                    message:
                        "--ignore \(pointer): not a JSON pointer (it must be empty or start with /, and ~ must be ~0 "
                        + "or ~1)"
                )
            }
            options.ignore.append(pointer)
        }
        for rule in self.arrays {
            guard let equals = rule.lastIndex(of: "=") else {
                throw Failure(message: "--arrays \(rule): expected POINTER=KEY, e.g. /items=id")
            }
            let pointer = String(rule[..<equals])
            let key = String(rule[rule.index(after: equals)...])
            guard PointerPattern.isValid(pointer) else {
                throw Failure(
                    message:
                        "--arrays \(rule): "
                        + "\(pointer.isEmpty ? "the pointer is empty" : "\(pointer) is not a JSON pointer") "
                        + "(expected POINTER=KEY, e.g. /items=id)"
                )
            }
            guard !key.isEmpty else {
                throw Failure(
                    message: "--arrays \(rule): the key field is empty (expected POINTER=KEY, e.g. /items=id)")
            }
            if let previous = options.arrays[pointer], previous != key {
                throw Failure(message: "--arrays \(rule): \(pointer) already has the key field \(previous)")
            }
            options.arrays[pointer] = key
        }
        guard let tolerance = Double(self.tolerance), tolerance.isFinite, tolerance >= 0 else {
            throw Failure(message: "--tolerance \(self.tolerance): expected a number, 0 or more")
        }
        options.numericTolerance = tolerance
        guard let maxDepth = Int(self.maxDepth), maxDepth >= 1 else {
            throw Failure(message: "--max-depth \(self.maxDepth): expected a whole number, 1 or more")
        }
        options.maxDepth = maxDepth
        options.maxDifferences = .max
        if let text = self.maxDifferences {
            guard let limit = Int(text), limit >= 0 else {
                throw Failure(message: "--max-differences \(text): expected a whole number, 0 or more")
            }
            options.maxDifferences = limit
        }
        return options
    }

    func format() throws -> String {
        guard self.output == "text" || self.output == "json" else {
            throw Failure(message: "--output \(self.output): expected text or json")
        }
        return self.output
    }

    static func load(_ path: String, side: DiffError.Side, options: DiffOptions) async throws -> JSONDocument {
        let bytes = try Self.readFile(path)
        do {
            return try JSONDiff.parse(bytes, side: side, options: options)
        } catch {
            throw Failure(message: "\(path): line \(error.line), column \(error.column): \(error.reason)")
        }
    }

    /// The whole file, read straight into an array (no `Data` in between: a 10 MB document is read once).
    static func readFile(_ path: String) throws -> [UInt8] {
        func failure(_ code: Int32) -> Failure { Failure(message: "\(path): \(String(cString: strerror(code)))") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw Failure(message: "\(path): is a directory")
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw failure(errno) }
        defer { close(descriptor) }
        // The size, to read the whole file at once, plus one byte to see its end; more chunks if it grew or is not a
        // regular file.
        let size = lseek(descriptor, 0, SEEK_END)
        if size > 0, lseek(descriptor, 0, SEEK_SET) != 0 { throw failure(errno) }
        var bytes: [UInt8] = []
        var chunk = size > 0 && size < 1 << 40 ? Int(size) + 1 : 1 << 20
        while true {
            var code: Int32 = 0
            let part = [UInt8](unsafeUninitializedCapacity: chunk) { buffer, initialized in
                initialized = 0
                while initialized < chunk {
                    let count = read(descriptor, buffer.baseAddress! + initialized, chunk - initialized)
                    if count > 0 {
                        initialized += count
                    } else if count == 0 {
                        break
                    } else if errno != EINTR {
                        code = errno
                        break
                    }
                }
            }
            guard code == 0 else { throw failure(code) }
            if bytes.isEmpty { bytes = part } else { bytes.append(contentsOf: part) }
            if part.count < chunk { return bytes }
            chunk = 1 << 20
        }
    }

    /// One line per difference, then a summary with the signature.
    static func textReport(_ result: DiffResult) -> String {
        var text = ""
        for difference in result.differences {
            let pointer = difference.pointer.isEmpty ? "(root)" : difference.pointer
            switch difference.kind {
            case .added: text += "added \(pointer): \(Self.excerpt(difference.right))\n"
            case .removed: text += "removed \(pointer): \(Self.excerpt(difference.left))\n"
            case .changed, .typeChanged:
                text +=
                    "\(difference.kind.rawValue) \(pointer): \(Self.excerpt(difference.left)) → "
                    + "\(Self.excerpt(difference.right))\n"
            }
        }
        guard !result.isEqual else { return "equal\n" }
        if result.truncated { text += "… \(result.totalCount - result.differences.count) more not shown\n" }
        text +=
            "\(result.totalCount) difference\(result.totalCount == 1 ? "" : "s"); signature \(result.signature.id): "
            + "\(result.signature.text)\n"
        return text
    }

    private static func excerpt(_ value: JSONValue?) -> String {
        guard let value else { return "(none)" }
        let text = value.jsonText
        return text.count <= 120 ? text : text.prefix(119) + "…"
    }

    /// `{"equal", "count", "truncated", "differences": [{pointer, kind, left, right}], "signature", "signatureId"}`.
    static func jsonReport(_ result: DiffResult) -> String {
        let differences: [JSONValue] = result.differences.map { difference in
            var members: [(key: String, value: JSONValue)] = [
                ("pointer", .string(difference.pointer)), ("kind", .string(difference.kind.rawValue)),
            ]
            if let left = difference.left { members.append(("left", left)) }
            if let right = difference.right { members.append(("right", right)) }
            return .object(members)
        }
        let report: JSONValue = .object([
            ("equal", .bool(result.isEqual)),
            ("count", .number(Double(result.totalCount))),
            ("truncated", .bool(result.truncated)),
            ("differences", .array(differences)),
            ("signature", .string(result.signature.text)),
            ("signatureId", .string(result.signature.id)),
            (
                "signatureEntries",
                .array(
                    result.signature.entries.map {
                        .object([("pattern", .string($0.pattern)), ("kind", .string($0.kind))])
                    })
            ),
        ])
        return report.prettyJSONText
    }
}
