import JSON

/// The path of the node being compared, as segments, turned into a pointer and a pattern only when a difference is
/// recorded.
struct PointerPath {
    enum Segment {
        case key(String)
        case index(Int)
    }

    var segments: [Segment] = []

    mutating func push(_ segment: Segment) { self.segments.append(segment) }
    mutating func pop() { self.segments.removeLast() }

    /// RFC 6901 pointer, with `~` and `/` escaped in keys.
    func pointer(last: Segment? = nil) -> String {
        var result = ""
        for segment in self.segments { Self.append(segment, to: &result, generalized: false) }
        if let last { Self.append(last, to: &result, generalized: false) }
        return result
    }

    /// The pointer with array indices as `*`.
    func pattern(last: Segment? = nil) -> String {
        var result = ""
        for segment in self.segments { Self.append(segment, to: &result, generalized: true) }
        if let last { Self.append(last, to: &result, generalized: true) }
        return result
    }

    private static func append(_ segment: Segment, to result: inout String, generalized: Bool) {
        result.append("/")
        switch segment {
        case .key(let key): result.append(PointerPattern.escape(key))
        case .index(let index): result.append(generalized ? "*" : String(index))
        }
    }
}

/// Collects differences up to the limit, counts all of them, and keeps the signature entries of all of them.
struct DifferenceRecorder {
    let limit: Int
    var differences: [Difference] = []
    var total = 0
    var entries: Set<Signature.Entry> = []

    init(limit: Int) { self.limit = max(0, limit) }

    var isFull: Bool { self.differences.count >= self.limit }

    /// Records one difference; the pointer and values are only built while under the limit.
    mutating func record(
        _ kind: DifferenceKind,
        pattern: String,
        pointer: () -> String,
        left: () -> JSONValue?,
        right: () -> JSONValue?
    ) {
        self.total += 1
        self.entries.insert(Signature.Entry(pattern: pattern, kind: kind.rawValue))
        guard !self.isFull else { return }
        self.differences.append(
            Difference(pointer: pointer(), kind: kind, left: left(), right: right(), pattern: pattern))
    }

    mutating func record(
        _ kind: DifferenceKind,
        path: PointerPath,
        last: PointerPath.Segment? = nil,
        left: @autoclosure () -> JSONValue?,
        right: @autoclosure () -> JSONValue?
    ) {
        self.record(
            kind, pattern: path.pattern(last: last), pointer: { path.pointer(last: last) }, left: left, right: right)
    }

    var result: DiffResult {
        DiffResult(
            differences: self.differences, truncated: self.total > self.differences.count, totalCount: self.total,
            signature: Signature(entries: self.entries))
    }
}
