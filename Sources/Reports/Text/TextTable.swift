package import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Terminal styling: ANSI colours only when standard output is a terminal and `NO_COLOR` is not set.
package struct TerminalStyle: Sendable {
    package var colours: Bool

    /// Colours when stdout is a TTY and NO_COLOR is absent or empty (https://no-color.org).
    package static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalStyle {
        let noColour = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        return TerminalStyle(colours: !noColour && isatty(STDOUT_FILENO) == 1)
    }

    package static let plain = TerminalStyle(colours: false)

    package enum Colour: String {
        case red = "31"
        case green = "32"
        case yellow = "33"
        case blue = "34"
        case dim = "2"
        case bold = "1"
    }

    package func paint(_ text: String, _ colour: Colour) -> String {
        self.colours && !text.isEmpty ? "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m" : text
    }

    package func stage(_ stage: String) -> String {
        switch stage {
        case "coexist": self.paint(stage, .yellow)
        case "eliminate": self.paint(stage, .green)
        default: stage
        }
    }
}

/// An aligned text table: a header row, then rows; columns padded to their widest cell (ANSI colour codes do not
/// count), two spaces between columns, the last column not padded.
package struct TextTable {
    package var headers: [String]
    package var rows: [[String]] = []

    package init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    package func render(style: TerminalStyle) -> String {
        let all = [self.headers] + self.rows
        let count = self.headers.count
        var widths = Array(repeating: 0, count: count)
        for row in all {
            for (index, cell) in row.prefix(count).enumerated() {
                widths[index] = max(widths[index], Self.visibleWidth(cell))
            }
        }
        var lines: [String] = []
        for (rowIndex, row) in all.enumerated() {
            var line = ""
            for index in 0..<count {
                let cell = index < row.count ? row[index] : ""
                let text = rowIndex == 0 ? style.paint(cell, .bold) : cell
                if index == count - 1 {
                    line += text
                } else {
                    line += text + String(repeating: " ", count: widths[index] - Self.visibleWidth(cell) + 2)
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Characters shown, without ANSI escape sequences.
    package static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var escaping = false
        for character in text {
            if escaping {
                if character == "m" { escaping = false }
            } else if character == "\u{1B}" {
                escaping = true
            } else {
                width += 1
            }
        }
        return width
    }
}
