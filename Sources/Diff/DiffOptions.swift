/// What to compare and how: ignore rules, arrays matched by a key field, numeric tolerance, headers, limits.
///
/// ```swift
/// let options = DiffOptions(
///     ignore: ["/meta/requestId", "/items/*/updatedAt"], arrays: ["/items": "id"], numericTolerance: 0.001)
/// ```
public struct DiffOptions: Sendable, Equatable {
    /// RFC 6901 pointers whose whole subtree is ignored; `*` stands for exactly one segment (`/items/*/updatedAt`).
    public var ignore: [String]
    /// Arrays compared as unordered sets of objects matched by a key field: array pointer (may contain `*`) → key
    /// field.
    public var arrays: [String: String]
    /// Two numbers are equal when they differ by at most this much (absolute). 0: exact decimal equality.
    public var numericTolerance: Double
    /// The response headers compared, by name, case-insensitively.
    public var headers: [String]
    /// Deepest nesting of arrays and objects accepted in a document; deeper is an error, never a crash.
    public var maxDepth: Int
    /// At most this many differences are reported (``DiffResult/truncated`` says when more were found).
    public var maxDifferences: Int

    public init(
        ignore: [String] = [],
        arrays: [String: String] = [:],
        numericTolerance: Double = 0,
        headers: [String] = ["content-type"],
        maxDepth: Int = 512,
        maxDifferences: Int = 1000
    ) {
        self.ignore = ignore
        self.arrays = arrays
        self.numericTolerance = numericTolerance
        self.headers = headers
        self.maxDepth = maxDepth
        self.maxDifferences = maxDifferences
    }
}
