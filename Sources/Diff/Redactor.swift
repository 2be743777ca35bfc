public import JSON

/// Masks personal data in JSON bodies before they are stored.
///
/// ```swift
/// let stored = Redactor.redact(body, pointers: ["/email", "/items/*/phone"])
/// // {"email": "[redacted]", "items": [{"phone": "[redacted]", "id": 7}]}
/// ```
public enum Redactor {
    /// The replacement of every redacted value, as a JSON string.
    public static let mask = "[redacted]"

    /// Masks the values at the given pointers (`*` stands for one segment; a matched container is masked whole)
    /// with the JSON string `"[redacted]"`, keeping the rest of the body byte for byte.
    ///
    /// - A body that does not start with `{` or `[` (after whitespace) is returned unchanged: it has no pointers.
    /// - A body that does but is not valid JSON (truncated, say) cannot be searched safely, and is replaced whole by
    ///   `"[redacted]"`. So redact before truncating a body, never after.
    /// - Invalid pointers match nothing.
    public static func redact(_ body: [UInt8], pointers: [String]) -> [UInt8] {
        guard !pointers.isEmpty, ResponseDiffer.looksLikeJSON(body) else { return body }
        let rules = CompiledRules(DiffOptions(ignore: pointers))
        guard !rules.ignore.isEmpty else { return body }
        guard let document = try? JSONDocument(parsing: body, maxDepth: JSONDiff.depthLimit) else {
            return Array("\"\(Self.mask)\"".utf8)
        }
        var ranges: [Range<Int>] = []
        document.withTape { tape in Self.collect(tape, rules: rules, into: &ranges) }
        guard !ranges.isEmpty else { return body }
        var output: [UInt8] = []
        output.reserveCapacity(body.count)
        var copied = 0
        for range in ranges {
            output.append(contentsOf: body[copied..<range.lowerBound])
            output.append(contentsOf: "\"\(Self.mask)\"".utf8)
            copied = range.upperBound
        }
        output.append(contentsOf: body[copied...])
        return output
    }

    /// The value with what the pointers name replaced by the string `"[redacted]"` (the same rules as for bodies).
    public static func redact(_ value: JSONValue, pointers: [String]) -> JSONValue {
        let rules = CompiledRules(DiffOptions(ignore: pointers))
        return Self.redact(value, rules: rules, state: rules.rootState)
    }

    private static func redact(_ value: JSONValue, rules: CompiledRules, state: RuleState?) -> JSONValue {
        guard state != nil else { return value }
        if rules.isIgnored(state) { return .string(Self.mask) }
        switch value {
        case .array(let items):
            return .array(
                items.enumerated().map { Self.redact($1, rules: rules, state: rules.descend(state, index: $0)) })
        case .object(let members):
            return .object(
                members.map {
                    ($0.key, Self.redact($0.value, rules: rules, state: rules.descend(state, key: $0.key.utf8)))
                })
        default:
            return value
        }
    }

    /// The byte ranges of the values to mask, in document order, none inside another. Without recursion: the
    /// subtrees still to visit are on a stack, pushed in reverse.
    private static func collect(_ tape: Tape, rules: CompiledRules, into ranges: inout [Range<Int>]) {
        var pending: [(index: Int, state: RuleState?)] = [(0, rules.rootState)]
        while let (index, state) = pending.popLast() {
            guard state != nil else { continue }
            let node = tape.nodes[index]
            if rules.isIgnored(state) {
                // A string's node starts after its opening quote and ends at its closing one.
                let isString = node.kind == TapeNode.string
                ranges.append((Int(node.start) - (isString ? 1 : 0))..<(Int(node.end) + (isString ? 1 : 0)))
                continue
            }
            let start = pending.count
            var child = index + 1
            switch node.kind {
            case TapeNode.array:
                for position in 0..<node.count {
                    pending.append((child, rules.descend(state, index: position)))
                    child = Int(tape.nodes[child].next)
                }
            case TapeNode.object:
                for _ in 0..<node.count {
                    let key = tape.nodes[child]
                    let below =
                        key.isEscaped
                        ? rules.descend(state, key: tape.stringBytes(key))
                        : rules.descend(state, key: tape.rawBytes(key))
                    pending.append((child + 1, below))
                    child = Int(tape.nodes[child + 1].next)
                }
            default:
                break
            }
            pending[start...].reverse()
        }
    }
}
