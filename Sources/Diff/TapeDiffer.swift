import JSON

/// The structural comparison of two parsed documents (the engine behind ``JSONDiff``).
///
/// Equal subtrees are found by comparing their bytes: a container compares its whole byte range once, and the
/// children that lie, at the same offsets, before the first differing byte are known equal without a look. Only the
/// rest is walked node by node.
///
/// The walk does not recurse: a container pushes one task per child (and per added or removed member) on a task
/// stack, in reverse, so they run in document order. However deep the document, the thread's stack is not used.
struct TapeDiffer {
    let left: Tape
    let right: Tape
    let rules: CompiledRules
    let tolerance: Double
    var recorder: DifferenceRecorder
    /// The path of the task being run.
    private var path: [Segment] = []
    private var tasks: [Task] = []
    /// The rule states of tasks (kept to the end of the walk; only used when there are rules).
    private var states: [RuleState] = []
    /// Right key nodes (negative once matched) and their fingerprints, for objects whose members are not in the same
    /// order on both sides.
    private var scratchKeys: [Int32] = []
    private var scratchPrints: [UInt64] = []

    /// One step of a path: an object key (a key node of one side) or an array index.
    private struct Segment {
        var keyNode: Int32
        var isRight: Bool
        var index: Int

        static func key(_ node: Int, right: Bool = false) -> Segment {
            Segment(keyNode: Int32(node), isRight: right, index: 0)
        }
        static func index(_ index: Int, right: Bool = false) -> Segment {
            Segment(keyNode: -1, isRight: right, index: index)
        }
    }

    /// Compare two nodes, or report one as removed or added, at `segment` below the first `pathLength` path steps.
    private struct Task {
        enum Kind {
            case compare, removed, added, root
        }

        var kind: Kind
        var left: Int
        var right: Int
        /// Bytes known equal from the start of both values (compare).
        var known: Int
        var pathLength: Int
        var segment: Segment
        /// Index of the task's rules in `states`, or -1 where none applies (so that a task is plain data).
        var state: Int32
    }

    init(left: Tape, right: Tape, options: DiffOptions) {
        self.left = left
        self.right = right
        self.rules = CompiledRules(options)
        self.tolerance = options.numericTolerance
        self.recorder = DifferenceRecorder(limit: options.maxDifferences)
    }

    mutating func run() {
        if let root = self.rules.rootState { self.states.append(root) }
        self.tasks.append(
            Task(
                kind: .root, left: 0, right: 0, known: 0, pathLength: 0, segment: .index(0),
                state: self.states.isEmpty ? -1 : 0))
        while let task = self.tasks.popLast() {
            if self.path.count > task.pathLength { self.path.removeLast(self.path.count - task.pathLength) }
            let state = task.state < 0 ? nil : self.states[Int(task.state)]
            switch task.kind {
            case .root:
                self.compare(task.left, task.right, state: state, known: 0)
            case .compare:
                self.path.append(task.segment)
                self.compare(task.left, task.right, state: state, known: task.known)
            case .removed:
                self.record(.removed, last: task.segment, left: task.left, right: nil)
            case .added:
                self.record(.added, last: task.segment, left: nil, right: task.right)
            }
        }
    }

    // MARK: - Recording

    private func text(_ segment: Segment, generalized: Bool) -> String {
        if segment.keyNode < 0 { return generalized ? "*" : String(segment.index) }
        let tape = segment.isRight ? self.right : self.left
        return PointerPattern.escape(tape.string(tape.nodes[Int(segment.keyNode)]))
    }

    private func pointer(_ last: Segment?, generalized: Bool) -> String {
        var result = ""
        for segment in self.path {
            result.append("/")
            result.append(self.text(segment, generalized: generalized))
        }
        if let last {
            result.append("/")
            result.append(self.text(last, generalized: generalized))
        }
        return result
    }

    private mutating func record(_ kind: DifferenceKind, last: Segment? = nil, left: Int?, right: Int?) {
        let pattern = self.pointer(last, generalized: true)
        let leftTape = self.left
        let rightTape = self.right
        let pointer = self.recorder.isFull ? "" : self.pointer(last, generalized: false)
        self.recorder.record(
            kind,
            pattern: pattern,
            pointer: { pointer },
            left: { left.map { leftTape.value(at: $0) } },
            right: { right.map { rightTape.value(at: $0) } }
        )
    }

    // MARK: - Tasks

    /// Reverses the tasks pushed since `start`, in place.
    private mutating func reverseTasks(from start: Int) {
        var low = start
        var high = self.tasks.count - 1
        while low < high {
            self.tasks.swapAt(low, high)
            low += 1
            high -= 1
        }
    }

    /// Tasks appended in document order; the caller reverses them once appended, so that they run in that order.
    private struct TaskList {
        var tasks: [Task]
        var states: [RuleState]
        let pathLength: Int

        mutating func compare(_ left: Int, _ right: Int, at segment: Segment, state: RuleState?, known: Int = 0) {
            var index: Int32 = -1
            if let state {
                index = Int32(self.states.count)
                self.states.append(state)
            }
            self.tasks.append(
                Task(
                    kind: .compare, left: left, right: right, known: known, pathLength: self.pathLength,
                    segment: segment, state: index))
        }

        mutating func removed(_ left: Int, at segment: Segment) {
            self.tasks.append(
                Task(
                    kind: .removed, left: left, right: -1, known: 0, pathLength: self.pathLength, segment: segment,
                    state: -1))
        }

        mutating func added(_ right: Int, at segment: Segment) {
            self.tasks.append(
                Task(
                    kind: .added, left: -1, right: right, known: 0, pathLength: self.pathLength, segment: segment,
                    state: -1))
        }
    }

    // MARK: - Comparison

    /// `known`: how many bytes from the start of both values are already known to be equal.
    private mutating func compare(_ leftIndex: Int, _ rightIndex: Int, state: RuleState?, known: Int) {
        if self.rules.isIgnored(state) { return }
        let leftNode = self.left.nodes[leftIndex]
        let rightNode = self.right.nodes[rightIndex]
        let kind = leftNode.kind
        guard kind == rightNode.kind else {
            let bothBooleans = kind &- 1 < 2 && rightNode.kind &- 1 < 2
            self.record(bothBooleans ? .changed : .typeChanged, left: leftIndex, right: rightIndex)
            return
        }
        switch kind {
        case TapeNode.number:
            if leftNode.length == rightNode.length,
                Tape.mismatch(
                    self.left.base + Int(leftNode.start), self.right.base + Int(rightNode.start), count: leftNode.length
                ) == leftNode.length
            {
                return
            }
            if self.left.numberEquals(leftNode, self.right, rightNode) { return }
            if self.tolerance > 0, abs(self.left.double(leftNode) - self.right.double(rightNode)) <= self.tolerance {
                return
            }
            self.record(.changed, left: leftIndex, right: rightIndex)
        case TapeNode.string:
            if !self.left.stringEquals(leftNode, self.right, rightNode) {
                self.record(.changed, left: leftIndex, right: rightIndex)
            }
        case TapeNode.array, TapeNode.object:
            let common = min(leftNode.length, rightNode.length)
            let equalPrefix =
                known >= common
                ? common
                : known
                    + Tape.mismatch(
                        self.left.base + Int(leftNode.start) + known, self.right.base + Int(rightNode.start) + known,
                        count: common - known)
            if equalPrefix == leftNode.length, leftNode.length == rightNode.length { return }
            if kind == TapeNode.object {
                self.compareObjects(leftIndex, rightIndex, state: state, equalPrefix: equalPrefix)
            } else if let key = self.rules.arrayKey(state) {
                self.compareKeyed(leftIndex, rightIndex, key: key, state: state)
            } else {
                self.compareIndexed(leftIndex, rightIndex, state: state, equalPrefix: equalPrefix)
            }
        default:
            return  // null, false, true: the kind is the value
        }
    }

    /// How many bytes of two children are known equal, from their parents' equal prefix.
    @inline(__always)
    private func childKnown(
        _ leftChild: Int, _ rightChild: Int, leftParent: Int, rightParent: Int, equalPrefix: Int
    ) -> Int {
        let leftOffset = Int(self.left.nodes[leftChild].start) - Int(self.left.nodes[leftParent].start)
        let rightOffset = Int(self.right.nodes[rightChild].start) - Int(self.right.nodes[rightParent].start)
        return leftOffset == rightOffset && leftOffset < equalPrefix ? equalPrefix - leftOffset : 0
    }

    /// Whether two values have the same bytes, checked where the parent walks its children (while their bytes and
    /// nodes are in cache), so that only differing children get a task. 0 when equal; otherwise `-1 - n` where `n`
    /// bytes from the start are known equal (for the task).
    @inline(__always)
    private func equalBytes(_ leftIndex: Int, _ rightIndex: Int, known: Int) -> Int {
        let leftNode = self.left.nodes[leftIndex]
        let rightNode = self.right.nodes[rightIndex]
        let common = min(leftNode.length, rightNode.length)
        guard known < common else {
            return leftNode.length == rightNode.length && leftNode.kind == rightNode.kind ? 0 : -1 - common
        }
        let prefix =
            known
            + Tape.mismatch(
                self.left.base + Int(leftNode.start) + known, self.right.base + Int(rightNode.start) + known,
                count: common - known)
        return prefix == leftNode.length && leftNode.length == rightNode.length && leftNode.kind == rightNode.kind
            ? 0 : -1 - prefix
    }

    private mutating func compareIndexed(_ leftIndex: Int, _ rightIndex: Int, state: RuleState?, equalPrefix: Int) {
        let leftCount = self.left.nodes[leftIndex].count
        let rightCount = self.right.nodes[rightIndex].count
        let start = self.tasks.count
        var list = TaskList(tasks: [], states: [], pathLength: self.path.count)
        swap(&list.tasks, &self.tasks)
        swap(&list.states, &self.states)
        var leftChild = leftIndex + 1
        var rightChild = rightIndex + 1
        for index in 0..<max(leftCount, rightCount) {
            let child = self.rules.descend(state, index: index)
            if index < leftCount, index < rightCount {
                let known = self.childKnown(
                    leftChild, rightChild, leftParent: leftIndex, rightParent: rightIndex, equalPrefix: equalPrefix)
                let same = self.equalBytes(leftChild, rightChild, known: known)
                if same < 0 { list.compare(leftChild, rightChild, at: .index(index), state: child, known: -1 - same) }
                leftChild = Int(self.left.nodes[leftChild].next)
                rightChild = Int(self.right.nodes[rightChild].next)
            } else if index < leftCount {
                if !self.rules.isIgnored(child) { list.removed(leftChild, at: .index(index)) }
                leftChild = Int(self.left.nodes[leftChild].next)
            } else {
                if !self.rules.isIgnored(child) { list.added(rightChild, at: .index(index, right: true)) }
                rightChild = Int(self.right.nodes[rightChild].next)
            }
        }
        swap(&list.tasks, &self.tasks)
        swap(&list.states, &self.states)
        self.reverseTasks(from: start)
    }

    @inline(__always)
    private func descend(_ state: RuleState?, key: TapeNode, in tape: Tape) -> RuleState? {
        guard state != nil else { return nil }
        return key.isEscaped
            ? self.rules.descend(state, key: tape.stringBytes(key)) : self.rules.descend(state, key: tape.rawBytes(key))
    }

    private mutating func compareObjects(_ leftIndex: Int, _ rightIndex: Int, state: RuleState?, equalPrefix: Int) {
        let leftCount = self.left.nodes[leftIndex].count
        let rightCount = self.right.nodes[rightIndex].count
        var leftKey = leftIndex + 1
        var rightKey = rightIndex + 1
        var member = 0
        let start = self.tasks.count
        var list = TaskList(tasks: [], states: [], pathLength: self.path.count)
        swap(&list.tasks, &self.tasks)
        swap(&list.states, &self.states)
        defer {
            swap(&list.tasks, &self.tasks)
            swap(&list.states, &self.states)
            self.reverseTasks(from: start)
        }
        // Members in the same order: the common case.
        while member < leftCount, member < rightCount {
            let leftKeyNode = self.left.nodes[leftKey]
            guard self.left.stringEquals(leftKeyNode, self.right, self.right.nodes[rightKey]) else { break }
            let keyKnown = self.childKnown(
                leftKey, rightKey, leftParent: leftIndex, rightParent: rightIndex, equalPrefix: equalPrefix)
            let leftValue = self.left.nodes[leftKey + 1]
            let same = self.equalBytes(
                leftKey + 1, rightKey + 1, known: max(0, keyKnown - (Int(leftValue.start) - Int(leftKeyNode.start))))
            if same < 0 {
                list.compare(
                    leftKey + 1, rightKey + 1, at: .key(leftKey),
                    state: self.descend(state, key: leftKeyNode, in: self.left), known: -1 - same)
            }
            leftKey = Int(leftValue.next)
            rightKey = Int(self.right.nodes[rightKey + 1].next)
            member += 1
        }
        if member == leftCount, member == rightCount { return }
        // The rest, matched by key: fingerprints of the right keys, then a look-up per left key.
        var rightKeys: [Int32] = []
        var prints: [UInt64] = []
        swap(&rightKeys, &self.scratchKeys)
        swap(&prints, &self.scratchPrints)
        defer {
            rightKeys.removeAll(keepingCapacity: true)
            prints.removeAll(keepingCapacity: true)
            swap(&rightKeys, &self.scratchKeys)
            swap(&prints, &self.scratchPrints)
        }
        for _ in member..<rightCount {
            rightKeys.append(Int32(rightKey))
            prints.append(self.right.keyFingerprint(self.right.nodes[rightKey]))
            rightKey = Int(self.right.nodes[rightKey + 1].next)
        }
        var lookup: [UInt64: Int] = [:]
        let large = rightKeys.count > 64
        if large {
            lookup.reserveCapacity(rightKeys.count)
            for position in prints.indices where lookup[prints[position]] == nil { lookup[prints[position]] = position }
        }
        for _ in member..<leftCount {
            let leftKeyNode = self.left.nodes[leftKey]
            let print = self.left.keyFingerprint(leftKeyNode)
            var partner = -1
            if large, let position = lookup[print], rightKeys[position] >= 0,
                self.left.stringEquals(leftKeyNode, self.right, self.right.nodes[Int(rightKeys[position])])
            {
                partner = position
            } else {
                // Small objects, or a fingerprint collision: a scan of the fingerprints.
                for position in prints.indices where prints[position] == print && rightKeys[position] >= 0 {
                    if self.left.stringEquals(leftKeyNode, self.right, self.right.nodes[Int(rightKeys[position])]) {
                        partner = position
                        break
                    }
                }
            }
            let child = self.descend(state, key: leftKeyNode, in: self.left)
            if partner >= 0 {
                let partnerKey = Int(rightKeys[partner])
                rightKeys[partner] = -1  // matched
                let same = self.equalBytes(leftKey + 1, partnerKey + 1, known: 0)
                if same < 0 {
                    list.compare(leftKey + 1, partnerKey + 1, at: .key(leftKey), state: child, known: -1 - same)
                }
            } else if !self.rules.isIgnored(child) {
                list.removed(leftKey + 1, at: .key(leftKey))
            }
            leftKey = Int(self.left.nodes[leftKey + 1].next)
        }
        for key in rightKeys where key >= 0 {
            if !self.rules.isIgnored(self.descend(state, key: self.right.nodes[Int(key)], in: self.right)) {
                list.added(Int(key) + 1, at: .key(Int(key), right: true))
            }
        }
    }

    private func elementKey(_ element: Int, in tape: Tape, field: [UInt8]) -> ElementKey? {
        let node = tape.nodes[element]
        guard node.kind == TapeNode.object else { return nil }
        var key = element + 1
        for _ in 0..<node.count {
            if tape.stringEquals(tape.nodes[key], field) {
                let value = tape.nodes[key + 1]
                switch value.kind {
                case TapeNode.null: return .null
                case TapeNode.false: return .bool(false)
                case TapeNode.true: return .bool(true)
                case TapeNode.number:
                    let decimal = Tape.Decimal(tape.rawBytes(value))
                    return .number(
                        (decimal.negative ? "-" : "") + String(decoding: decimal.digits, as: UTF8.self)
                            + "e\(decimal.exponent)")
                case TapeNode.string: return .string(tape.stringBytes(value))
                default: return nil
                }
            }
            key = Int(tape.nodes[key + 1].next)
        }
        return nil
    }

    private func elements(_ index: Int, in tape: Tape) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(tape.nodes[index].count)
        var child = index + 1
        for _ in 0..<tape.nodes[index].count {
            result.append(child)
            child = Int(tape.nodes[child].next)
        }
        return result
    }

    /// Elements matched by key. A difference inside a matched pair, and a removed element, are reported at the
    /// element's index in the left document; an added element at its index in the right document.
    private mutating func compareKeyed(_ leftIndex: Int, _ rightIndex: Int, key: [UInt8], state: RuleState?) {
        let leftElements = self.elements(leftIndex, in: self.left)
        let rightElements = self.elements(rightIndex, in: self.right)
        let pairing = KeyedPairing(
            left: leftElements.map { self.elementKey($0, in: self.left, field: key) },
            right: rightElements.map { self.elementKey($0, in: self.right, field: key) }
        )
        let start = self.tasks.count
        var list = TaskList(tasks: [], states: [], pathLength: self.path.count)
        swap(&list.tasks, &self.tasks)
        swap(&list.states, &self.states)
        for (leftPosition, rightPosition) in pairing.pairs {
            let child = self.rules.descend(state, index: leftPosition)
            if let rightPosition {
                list.compare(
                    leftElements[leftPosition], rightElements[rightPosition], at: .index(leftPosition), state: child)
            } else if !self.rules.isIgnored(child) {
                list.removed(leftElements[leftPosition], at: .index(leftPosition))
            }
        }
        for rightPosition in pairing.added where !self.rules.isIgnored(self.rules.descend(state, index: rightPosition))
        {
            list.added(rightElements[rightPosition], at: .index(rightPosition, right: true))
        }
        swap(&list.tasks, &self.tasks)
        swap(&list.states, &self.states)
        self.reverseTasks(from: start)
    }
}
