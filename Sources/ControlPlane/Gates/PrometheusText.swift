/// Reads one metric out of the Prometheus text exposition format (version 0.0.4): `name value` or
/// `name{label="…"} value [timestamp]` lines, `#` comments.
enum PrometheusText {
    /// The sum of every series of metric `name`, as a whole number of events; why not, in words.
    static func sum(of name: String, in text: String) -> Result<Int, Failure> {
        var total = 0.0
        var found = false
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(name), !trimmed.hasPrefix("#") else { continue }
            var rest = trimmed.dropFirst(name.count)
            if rest.first == "{" {
                guard let close = Self.labelsEnd(rest) else { return .failure(.init("a malformed \(name) line")) }
                rest = rest[rest.index(after: close)...]
            } else if rest.first != " " && rest.first != "\t" {
                continue  // another metric whose name starts with this one
            }
            guard let field = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).first,
                let value = Double(field)
            else { return .failure(.init("\(name) has no number value")) }
            guard value.isFinite else { return .failure(.init("\(name) is \(field), not a count of events")) }
            total += value
            found = true
        }
        guard found else { return .failure(.init("no metric \(name) in the answer")) }
        guard total >= 0, total < Double(Int.max) else { return .failure(.init("\(name) is \(total), not a count")) }
        return .success(Int(total.rounded(.up)))
    }

    /// The index of the `}` that closes the labels, skipping quoted values (which may hold `}` and `\"`).
    static func labelsEnd(_ text: Substring) -> Substring.Index? {
        var quoted = false
        var escaped = false
        for index in text.indices {
            let character = text[index]
            if escaped {
                escaped = false
            } else if character == "\\" && quoted {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if character == "}" && !quoted {
                return index
            }
        }
        return nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
