import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `up` writes: its own lines and its children's, each whole and prefixed with who wrote it
/// (`[monolith] …`), the prefix coloured on a terminal unless `NO_COLOR` is set.
final class UpConsole: Sendable {
    private let lock = Mutex(())
    private let width: Int
    private let colourOutput: Bool
    private let colourError: Bool

    init(names: [String] = ["monolith", "contacts", "leads", "deals", "proxy", "up"]) {
        self.width = names.map(\.count).max() ?? 0
        let colour = ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
        self.colourOutput = colour && isatty(STDOUT_FILENO) == 1
        self.colourError = colour && isatty(STDERR_FILENO) == 1
    }

    /// One of `up`'s own lines, on standard output.
    func say(_ text: String) {
        self.line(from: "up", text, error: false)
    }

    /// A line from `name` (without its newline), on standard output or standard error.
    func line(from name: String, _ text: some StringProtocol, error: Bool) {
        let padding = String(repeating: " ", count: max(0, self.width - name.count))
        let prefix =
            (error ? self.colourError : self.colourOutput)
            ? "\u{1B}[\(Self.colour(name))m[\(name)]\u{1B}[0m" : "[\(name)]"
        self.write("\(prefix)\(padding) \(text)\n", error: error)
    }

    /// Text as is (a block such as the summary), on standard output.
    func write(_ text: String, error: Bool = false) {
        let bytes = Data(text.utf8)
        self.lock.withLock { _ in
            // A closed terminal or pipe must not bring `up` down before it has stopped its children.
            try? (error ? FileHandle.standardError : FileHandle.standardOutput).write(contentsOf: bytes)
        }
    }

    private static func colour(_ name: String) -> Int {
        switch name {
        case "monolith": 33  // yellow
        case "contacts": 36  // cyan
        case "leads": 32  // green
        case "deals": 35  // magenta
        case "proxy": 34  // blue
        default: 1  // bold
        }
    }
}

/// Cuts a byte stream into lines for the console; a last line without a newline comes out at the end.
struct UpLineSplitter {
    private var pending: [UInt8] = []

    /// The complete lines in `bytes` (after what came before), without their line ends.
    mutating func lines(in bytes: some Sequence<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if self.pending.last == UInt8(ascii: "\r") { self.pending.removeLast() }
                lines.append(String(decoding: self.pending, as: UTF8.self))
                self.pending.removeAll(keepingCapacity: true)
            } else {
                self.pending.append(byte)
            }
        }
        return lines
    }

    /// What is left once the stream has ended.
    mutating func finish() -> String? {
        defer { self.pending = [] }
        return self.pending.isEmpty ? nil : String(decoding: self.pending, as: UTF8.self)
    }
}
