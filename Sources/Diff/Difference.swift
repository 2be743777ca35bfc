public import JSON

/// How a value differs between the left and the right document.
public enum DifferenceKind: String, Sendable, Hashable, CaseIterable {
    /// Same type, other value.
    case changed
    /// Only in the right document.
    case added
    /// Only in the left document.
    case removed
    /// Present on both sides with another JSON type (`"1"` against `1`).
    case typeChanged = "type_changed"
}

/// One difference between two JSON documents.
public struct Difference: Sendable, Equatable {
    /// Where, as an RFC 6901 pointer (`""` is the root, `~` is `~0` and `/` is `~1` in keys).
    public var pointer: String
    public var kind: DifferenceKind
    /// The left value; nil when added.
    public var left: JSONValue?
    /// The right value; nil when removed.
    public var right: JSONValue?
    /// The pointer with every array index replaced by `*` (`/items/3/title` → `/items/*/title`), from the
    /// document's structure, so an object key made of digits is kept.
    public var pattern: String

    public init(pointer: String, kind: DifferenceKind, left: JSONValue?, right: JSONValue?, pattern: String? = nil) {
        self.pointer = pointer
        self.kind = kind
        self.left = left
        self.right = right
        self.pattern = pattern ?? PointerPattern.generalize(pointer)
    }
}

/// The differences between two JSON documents.
public struct DiffResult: Sendable {
    /// The differences, in document order (of the left document, then additions), at most
    /// ``DiffOptions/maxDifferences``.
    public var differences: [Difference]
    /// More differences were found than reported.
    public var truncated: Bool
    /// How many differences were found, including those not reported.
    public var totalCount: Int
    /// The signature of all the differences found, including those not reported.
    public var signature: Signature

    /// No difference was found (``totalCount`` is 0; with ``DiffOptions/maxDifferences`` 0 nothing is reported, yet
    /// the documents may differ).
    public var isEqual: Bool { self.totalCount == 0 }

    public init(differences: [Difference], truncated: Bool = false, totalCount: Int? = nil, signature: Signature? = nil)
    {
        self.differences = differences
        self.truncated = truncated
        self.totalCount = totalCount ?? differences.count
        self.signature =
            signature
            ?? Signature(entries: differences.map { Signature.Entry(pattern: $0.pattern, kind: $0.kind.rawValue) })
    }
}

/// Why a document could not be compared: which side, why, and where (byte offset; line and column from 1).
public struct DiffError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Side: String, Sendable, Equatable {
        case left, right
    }

    public var side: Side
    public var reason: String
    public var offset = 0
    public var line = 1
    public var column = 1

    public var description: String {
        "\(self.side.rawValue) document, line \(self.line), column \(self.column): \(self.reason)"
    }
}
