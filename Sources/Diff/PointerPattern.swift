/// RFC 6901 pointers and pointer patterns, where `*` stands for exactly one segment.
///
/// ```swift
/// PointerPattern.generalize("/items/3/title")                          // "/items/*/title"
/// PointerPattern.matches(pattern: "/items/*/title", pointer: "/items/3/title")  // true
/// PointerPattern.covers(pattern: "/items/*", pointer: "/items/3/title")        // true
/// ```
public enum PointerPattern {
    /// The pointer with every segment that reads as an array index (`0`, or digits not starting with `0`) replaced
    /// by `*`. This is textual: an object key made of digits is replaced too. ``Difference/pattern`` is exact, as the
    /// engine knows which segments are array indices.
    public static func generalize(_ pointer: String) -> String {
        guard let segments = self.segments(pointer) else { return pointer }
        return self.pointer(segments.map { self.isIndex($0) ? "*" : $0 })
    }

    /// The pattern has as many segments as the pointer and each is equal or `*`.
    public static func matches(pattern: String, pointer: String) -> Bool {
        guard let pattern = self.segments(pattern), let pointer = self.segments(pointer), pattern.count == pointer.count
        else { return false }
        return zip(pattern, pointer).allSatisfy { $0 == "*" || $0 == $1 }
    }

    /// The pointer is the pattern's match or inside its subtree (how ignore rules apply).
    public static func covers(pattern: String, pointer: String) -> Bool {
        guard let pattern = self.segments(pattern), let pointer = self.segments(pointer), pattern.count <= pointer.count
        else { return false }
        return zip(pattern, pointer).allSatisfy { $0 == "*" || $0 == $1 }
    }

    /// The unescaped segments of a pointer (`~1` → `/`, `~0` → `~`), or nil when it is not a pointer (it must be
    /// empty or start with `/`, and `~` must be followed by `0` or `1`).
    public static func segments(_ pointer: String) -> [String]? {
        if pointer.isEmpty { return [] }
        guard pointer.utf8.first == UInt8(ascii: "/") else { return nil }
        var segments: [String] = []
        for raw in pointer.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(raw.count)
            var iterator = raw.makeIterator()
            while let byte = iterator.next() {
                guard byte == UInt8(ascii: "~") else {
                    bytes.append(byte)
                    continue
                }
                switch iterator.next() {
                case UInt8(ascii: "0"): bytes.append(UInt8(ascii: "~"))
                case UInt8(ascii: "1"): bytes.append(UInt8(ascii: "/"))
                default: return nil
                }
            }
            segments.append(String(decoding: bytes, as: UTF8.self))
        }
        return segments
    }

    /// The pointer made of these segments, escaped.
    public static func pointer(_ segments: some Sequence<String>) -> String {
        var result = ""
        for segment in segments {
            result += "/"
            result += self.escape(segment)
        }
        return result
    }

    /// One segment, escaped: `~` → `~0`, `/` → `~1`.
    public static func escape(_ segment: String) -> String {
        guard segment.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else {
            return segment
        }
        return segment.replacing("~", with: "~0").replacing("/", with: "~1")
    }

    /// The pointer is a valid RFC 6901 pointer.
    public static func isValid(_ pointer: String) -> Bool { self.segments(pointer) != nil }

    static func isIndex(_ segment: String) -> Bool {
        let utf8 = segment.utf8
        guard let first = utf8.first, utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return false
        }
        return first != UInt8(ascii: "0") || utf8.count == 1
    }
}
