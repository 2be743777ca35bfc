public import JSON

/// Structural comparison of two JSON documents.
///
/// Key order never matters; `1` and `1.0` are equal (numbers compare as exact decimals, or within
/// ``DiffOptions/numericTolerance``); `"\u00e9"` and `"é"` are equal (strings compare unescaped, byte for byte: no
/// Unicode normalization). Arrays compare by index, or as sets of objects matched by a key field
/// (``DiffOptions/arrays``). Every difference has an RFC 6901 pointer, a kind and both values.
///
/// ```swift
/// let result = try JSONDiff.diff(Array(#"{"a": [1, 2]}"#.utf8), Array(#"{"a": [1, 3]}"#.utf8), options: DiffOptions())
/// result.differences[0].pointer  // "/a/1"
/// result.differences[0].kind     // .changed
/// result.signature.text          // "/a/* changed"
/// ```
public enum JSONDiff {
    /// The deepest nesting accepted, whatever ``DiffOptions/maxDepth`` says. The parser and the comparison do not
    /// recurse, but the `JSONValue`s of reported differences are trees that their users walk recursively (printing,
    /// `==`, releasing); this keeps those inside a 512 KiB thread stack.
    public static let depthLimit = 1024

    /// Compares two JSON texts (UTF-8). Throws when either is not valid JSON: invalid UTF-8, a syntax error, a
    /// truncated document, nesting deeper than ``DiffOptions/maxDepth``, a number too large for a Double (`1e400`),
    /// or a key repeated in one object.
    public static func diff(_ left: [UInt8], _ right: [UInt8], options: DiffOptions) throws(DiffError) -> DiffResult {
        let leftDocument = try Self.parse(left, side: .left, options: options)
        let rightDocument = try Self.parse(right, side: .right, options: options)
        return Self.diff(leftDocument, rightDocument, options: options)
    }

    /// Compares two parsed documents (parse them once, on any thread, to compare them several times).
    public static func diff(_ left: JSONDocument, _ right: JSONDocument, options: DiffOptions) -> DiffResult {
        left.withTape { leftTape in
            right.withTape { rightTape in
                var differ = TapeDiffer(left: leftTape, right: rightTape, options: options)
                differ.run()
                return differ.recorder.result
            }
        }
    }

    /// Compares two value trees. Numbers compare as `Double`s here.
    public static func diff(_ left: JSONValue, _ right: JSONValue, options: DiffOptions) -> DiffResult {
        var differ = ValueDiffer(options: options)
        differ.compare(left, right, state: differ.rules.rootState)
        return differ.recorder.result
    }

    /// Parses one side with the options' depth limit, as ``diff(_:_:options:)-([UInt8],_,_)`` does.
    public static func parse(
        _ bytes: [UInt8], side: DiffError.Side, options: DiffOptions
    ) throws(DiffError) -> JSONDocument {
        do {
            return try JSONDocument(parsing: bytes, maxDepth: min(options.maxDepth, Self.depthLimit))
        } catch {
            throw DiffError(
                side: side, reason: error.reason, offset: error.offset, line: error.line, column: error.column)
        }
    }
}
