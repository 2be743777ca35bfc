public import JSON

/// A JSON text parsed for comparison: the bytes plus a flat tape of nodes that point into them.
///
/// Nothing is decoded up front: strings and keys stay byte ranges (compared raw, decoded only when their escapes
/// differ), numbers stay text (compared raw, then as exact decimals), and every container knows its byte range, so
/// equal subtrees compare as bytes. `JSONValue`s are built only for the differences reported.
///
/// The parser is as strict as `JSONParser`: RFC 8259, valid UTF-8, no duplicate keys, bounded nesting, numbers that
/// fit a Double. It never recurses, so hostile input gives an error, never a crash.
///
/// ```swift
/// let document = try JSONDocument(parsing: body)
/// let result = JSONDiff.diff(document, otherDocument, options: DiffOptions())
/// ```
public struct JSONDocument: Sendable {
    /// The UTF-8 text.
    public let bytes: [UInt8]
    var nodes: [TapeNode]

    /// Parses a UTF-8 JSON text (a UTF-8 byte order mark is skipped). Nesting deeper than `maxDepth` is an error; a
    /// `maxDepth` above ``JSONDiff/depthLimit`` counts as that limit.
    public init(parsing bytes: [UInt8], maxDepth: Int = 512) throws(JSONParseError) {
        self.bytes = bytes
        self.nodes = try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            var parser = TapeParser(bytes: buffer, maxDepth: min(max(1, maxDepth), JSONDiff.depthLimit))
            return try parser.parse()
        }
    }

    /// The document as a `JSONValue` tree.
    public var value: JSONValue { self.withTape { $0.value(at: 0) } }

    /// Runs `body` with an unsafe view of the document, valid only inside it.
    func withTape<Result>(_ body: (Tape) -> Result) -> Result {
        self.bytes.withUnsafeBufferPointer { bytes in
            self.nodes.withUnsafeBufferPointer { nodes in body(Tape(bytes: bytes, nodes: nodes)) }
        }
    }
}

/// One value of a document. Scalars occupy one node; a container is followed by its children (for an object: key
/// node, then value subtree, per member), and `next` is the index just after its subtree.
struct TapeNode {
    /// Kind in the low 3 bits, the escape flag (strings) in bit 3, the number of children (containers) above.
    var tag: UInt32
    /// Byte offset of the value (strings: just after the opening quote).
    var start: UInt32
    /// Byte offset just after the value (strings: of the closing quote).
    var end: UInt32
    /// Index of the node after this subtree.
    var next: UInt32

    static let null: UInt32 = 0, `false`: UInt32 = 1, `true`: UInt32 = 2, number: UInt32 = 3, string: UInt32 = 4,
        array: UInt32 = 5,
        object: UInt32 = 6
    static let escaped: UInt32 = 8
    static let countShift: UInt32 = 4
    static let maxCount = Int(UInt32.max >> countShift)

    @inline(__always) var kind: UInt32 { self.tag & 7 }
    @inline(__always) var count: Int { Int(self.tag >> Self.countShift) }
    @inline(__always) var isEscaped: Bool { self.tag & Self.escaped != 0 }
    @inline(__always) var length: Int { Int(self.end &- self.start) }
}
