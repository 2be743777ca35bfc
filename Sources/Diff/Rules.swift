/// The ignore and array rules of a ``DiffOptions``, compiled into segments and matched level by level as a walk
/// descends: every pattern is anchored at the root and each of its segments consumes one level, so the patterns
/// still alive at a node are those whose first `depth` segments matched its path.
struct CompiledRules: Sendable {
    struct Pattern: Sendable {
        /// Unescaped segments; nil stands for `*`.
        var segments: [[UInt8]?]
        /// For array rules: the key field.
        var key: [UInt8]
    }

    var ignore: [Pattern] = []
    var arrays: [Pattern] = []

    var isEmpty: Bool { self.ignore.isEmpty && self.arrays.isEmpty }

    init(_ options: DiffOptions) {
        func compile(_ pointer: String) -> [[UInt8]?]? {
            PointerPattern.segments(pointer)?.map { $0 == "*" ? nil : Array($0.utf8) }
        }
        self.ignore = options.ignore.compactMap { compile($0).map { Pattern(segments: $0, key: []) } }
        self.arrays = options.arrays.keys.sorted().compactMap { pointer in
            compile(pointer).map { Pattern(segments: $0, key: Array(options.arrays[pointer]!.utf8)) }
        }
    }

    /// The rules alive at the root; nil when there are none (then the walk does no rule work at all).
    var rootState: RuleState? {
        self.isEmpty ? nil : RuleState(ignore: Array(self.ignore.indices), arrays: Array(self.arrays.indices), depth: 0)
    }

    /// The node at `state` is ignored (some ignore pattern is fully matched).
    @inline(__always)
    func isIgnored(_ state: RuleState?) -> Bool {
        guard let state else { return false }
        return state.ignore.contains { self.ignore[$0].segments.count == state.depth }
    }

    /// The key field of the array at `state`, when an array rule names it (the first such rule in pointer order).
    func arrayKey(_ state: RuleState?) -> [UInt8]? {
        guard let state else { return nil }
        for index in state.arrays where self.arrays[index].segments.count == state.depth {
            return self.arrays[index].key
        }
        return nil
    }

    /// The rules alive below a node, one level down through an object key (raw, unescaped UTF-8).
    func descend(_ state: RuleState?, key: some Collection<UInt8>) -> RuleState? {
        guard let state else { return nil }
        let depth = state.depth
        func keep(_ pattern: Pattern) -> Bool {
            guard depth < pattern.segments.count else { return false }
            guard let segment = pattern.segments[depth] else { return true }
            return segment.elementsEqual(key)
        }
        let below = RuleState(
            ignore: state.ignore.filter { keep(self.ignore[$0]) },
            arrays: state.arrays.filter { keep(self.arrays[$0]) },
            depth: depth + 1
        )
        return below.isEmpty ? nil : below
    }

    /// The rules alive below a node, one level down through an array index.
    @inline(__always)
    func descend(_ state: RuleState?, index: Int) -> RuleState? {
        guard let state else { return nil }
        let depth = state.depth
        func keep(_ pattern: Pattern) -> Bool {
            guard depth < pattern.segments.count else { return false }
            guard let segment = pattern.segments[depth] else { return true }
            return Self.isDecimal(segment, of: index)
        }
        let below = RuleState(
            ignore: state.ignore.filter { keep(self.ignore[$0]) },
            arrays: state.arrays.filter { keep(self.arrays[$0]) },
            depth: depth + 1
        )
        return below.isEmpty ? nil : below
    }

    /// `segment` is the canonical decimal text of `index` (`0`, `12`; not `012`).
    static func isDecimal(_ segment: [UInt8], of index: Int) -> Bool {
        var value = index
        var position = segment.count
        repeat {
            position -= 1
            guard position >= 0, segment[position] == UInt8(ascii: "0") + UInt8(value % 10) else { return false }
            value /= 10
        } while value > 0
        return position == 0
    }
}

/// The compiled rules still alive at one node of a walk (indices into ``CompiledRules``), and its depth. A walk
/// holds a `RuleState?`: nil where no rule can apply any more.
struct RuleState: Sendable {
    var ignore: [Int]
    var arrays: [Int]
    var depth: Int

    /// No rule applies here or anywhere below: the walk can skip all rule work.
    var isEmpty: Bool { self.ignore.isEmpty && self.arrays.isEmpty }
}
