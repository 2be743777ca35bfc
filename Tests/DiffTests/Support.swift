import Diff
import JSON
import Testing

/// Compares two JSON texts with the byte engine, and checks that the value engine (over `JSONParser` trees) agrees.
func diff(
    _ left: String, _ right: String, _ options: DiffOptions = DiffOptions(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws
    -> DiffResult
{
    let result = try JSONDiff.diff(Array(left.utf8), Array(right.utf8), options: options)
    let values = JSONDiff.diff(try JSONParser.parse(left), try JSONParser.parse(right), options: options)
    #expect(summary(result) == summary(values), "the byte and value engines disagree", sourceLocation: sourceLocation)
    return result
}

/// `kind pointer` per difference, in order.
func summary(_ result: DiffResult) -> [String] {
    result.differences.map { "\($0.kind.rawValue) \($0.pointer)" }
}

func json(_ text: String) -> JSONValue { try! JSONParser.parse(text) }

/// A small deterministic generator (SplitMix64), so property tests are reproducible from their seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
