/// What a mismatch looks like, independent of which element it hit: the sorted set of (pointer pattern, kind).
///
/// Thousands of mismatches that differ only in array indices share one signature, so they group into the few
/// bugs behind them.
///
/// ```swift
/// comparison.signature.text  // "/items/*/title changed, status changed"
/// comparison.signature.id    // "8c0f2a9e5d3b1c47"
/// ```
public struct Signature: Hashable, Sendable {
    /// One kind of difference at one place: `/items/*/title` + `changed`, `status` + `changed`,
    /// `header content-type` + `removed`, `body` + `changed` (bodies compared as bytes).
    public struct Entry: Hashable, Sendable, Comparable {
        public var pattern: String
        public var kind: String

        public static func < (lhs: Entry, rhs: Entry) -> Bool {
            lhs.pattern != rhs.pattern
                ? lhs.pattern.utf8.lexicographicallyPrecedes(rhs.pattern.utf8)
                : lhs.kind.utf8.lexicographicallyPrecedes(rhs.kind.utf8)
        }

        /// `"/items/*/title changed"`; the root pointer is written `(root)`.
        public var text: String { "\(self.pattern.isEmpty ? "(root)" : self.pattern) \(self.kind)" }
    }

    /// Sorted, unique.
    public private(set) var entries: [Entry]

    /// Sorts and removes duplicates.
    public init(entries: some Sequence<Entry>) {
        self.entries = Array(Set(entries)).sorted()
    }

    /// The signature of a match.
    public static let empty = Signature(entries: [])

    public var isEmpty: Bool { self.entries.isEmpty }

    /// Stable one-line text: the entries joined by `, ` (empty for a match).
    public var text: String { self.entries.map(\.text).joined(separator: ", ") }

    /// A short stable key: 16 hex digits of the FNV-1a 64-bit hash of ``text``.
    public var id: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in self.text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
