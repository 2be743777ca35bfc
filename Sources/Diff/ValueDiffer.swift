import JSON

/// The structural comparison of two `JSONValue` trees (the engine behind
/// ``JSONDiff/diff(_:_:options:)-(JSONValue,_,_)``). Numbers compare as `Double`s here (the byte engine compares exact
/// decimals).
struct ValueDiffer {
    let rules: CompiledRules
    let tolerance: Double
    let maxDepth: Int
    var recorder: DifferenceRecorder
    var path = PointerPath()

    init(options: DiffOptions) {
        self.rules = CompiledRules(options)
        self.tolerance = options.numericTolerance
        self.maxDepth = options.maxDepth
        self.recorder = DifferenceRecorder(limit: options.maxDifferences)
    }

    mutating func compare(_ left: JSONValue, _ right: JSONValue, state: RuleState?) {
        if self.rules.isIgnored(state) { return }
        switch (left, right) {
        case (.null, .null): return
        case (.bool(let a), .bool(let b)):
            if a != b { self.recorder.record(.changed, path: self.path, left: left, right: right) }
        case (.number(let a), .number(let b)):
            if a != b, !(self.tolerance > 0 && abs(a - b) <= self.tolerance) {
                self.recorder.record(.changed, path: self.path, left: left, right: right)
            }
        case (.string(let a), .string(let b)):
            if !a.utf8.elementsEqual(b.utf8) {
                self.recorder.record(.changed, path: self.path, left: left, right: right)
            }
        case (.array(let a), .array(let b)):
            if self.path.segments.count >= self.maxDepth {
                if left != right { self.recorder.record(.changed, path: self.path, left: left, right: right) }
            } else if let key = self.rules.arrayKey(state) {
                self.compareKeyed(a, b, key: String(decoding: key, as: UTF8.self), state: state)
            } else {
                self.compareIndexed(a, b, state: state)
            }
        case (.object(let a), .object(let b)):
            if self.path.segments.count >= self.maxDepth {
                if left != right { self.recorder.record(.changed, path: self.path, left: left, right: right) }
            } else {
                self.compareObjects(a, b, state: state)
            }
        default:
            self.recorder.record(.typeChanged, path: self.path, left: left, right: right)
        }
    }

    private mutating func compareIndexed(_ left: [JSONValue], _ right: [JSONValue], state: RuleState?) {
        for index in 0..<max(left.count, right.count) {
            let child = self.rules.descend(state, index: index)
            if index < left.count, index < right.count {
                self.path.push(.index(index))
                self.compare(left[index], right[index], state: child)
                self.path.pop()
            } else if self.rules.isIgnored(child) {
                continue
            } else if index < left.count {
                self.recorder.record(.removed, path: self.path, last: .index(index), left: left[index], right: nil)
            } else {
                self.recorder.record(.added, path: self.path, last: .index(index), left: nil, right: right[index])
            }
        }
    }

    private mutating func compareKeyed(_ left: [JSONValue], _ right: [JSONValue], key: String, state: RuleState?) {
        let pairing = KeyedPairing(
            left: left.map { Self.elementKey($0, key: key) }, right: right.map { Self.elementKey($0, key: key) })
        for (leftIndex, rightIndex) in pairing.pairs {
            let child = self.rules.descend(state, index: leftIndex)
            guard let rightIndex else {
                if !self.rules.isIgnored(child) {
                    self.recorder.record(
                        .removed, path: self.path, last: .index(leftIndex), left: left[leftIndex], right: nil)
                }
                continue
            }
            self.path.push(.index(leftIndex))
            self.compare(left[leftIndex], right[rightIndex], state: child)
            self.path.pop()
        }
        for rightIndex in pairing.added {
            let child = self.rules.descend(state, index: rightIndex)
            if self.rules.isIgnored(child) { continue }
            self.recorder.record(.added, path: self.path, last: .index(rightIndex), left: nil, right: right[rightIndex])
        }
    }

    static func elementKey(_ element: JSONValue, key: String) -> ElementKey? {
        guard case .object(let members) = element,
            let member = members.first(where: { $0.key.utf8.elementsEqual(key.utf8) })
        else { return nil }
        switch member.value {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(let value): return .number(JSONValue.format(value == 0 ? 0 : value))
        case .string(let value): return .string(Array(value.utf8))
        case .array, .object: return nil
        }
    }

    private mutating func compareObjects(
        _ left: [(key: String, value: JSONValue)], _ right: [(key: String, value: JSONValue)], state: RuleState?
    ) {
        var rightIndex: [[UInt8]: Int] = [:]
        rightIndex.reserveCapacity(right.count)
        for (index, member) in right.enumerated() { rightIndex[Array(member.key.utf8)] = index }
        var matched = [Bool](repeating: false, count: right.count)
        for member in left {
            let child = self.rules.descend(state, key: member.key.utf8)
            if let index = rightIndex[Array(member.key.utf8)] {
                matched[index] = true
                self.path.push(.key(member.key))
                self.compare(member.value, right[index].value, state: child)
                self.path.pop()
            } else if !self.rules.isIgnored(child) {
                self.recorder.record(.removed, path: self.path, last: .key(member.key), left: member.value, right: nil)
            }
        }
        for (index, member) in right.enumerated() where !matched[index] {
            let child = self.rules.descend(state, key: member.key.utf8)
            if self.rules.isIgnored(child) { continue }
            self.recorder.record(.added, path: self.path, last: .key(member.key), left: nil, right: member.value)
        }
    }
}

/// The identity of an element of a keyed array: the value of its key field, when that is a scalar.
enum ElementKey: Hashable {
    case null
    case bool(Bool)
    /// A canonical text of the number, so that `1` and `1.0` are one key.
    case number(String)
    /// The unescaped UTF-8 bytes.
    case string([UInt8])
}

/// How the elements of two keyed arrays pair up: elements whose key is unique on its side are matched by key; the
/// others (no key field, a non-scalar key, or a key repeated on its side) are paired in order among themselves.
struct KeyedPairing {
    /// Every left index in order, with its right partner (nil: removed).
    var pairs: [(left: Int, right: Int?)] = []
    /// Right indices with no partner, in order.
    var added: [Int] = []

    init(left: [ElementKey?], right: [ElementKey?]) {
        func uniqueKeys(_ keys: [ElementKey?]) -> [ElementKey: Int] {
            var counts: [ElementKey: Int] = [:]
            for case let key? in keys { counts[key, default: 0] += 1 }
            var positions: [ElementKey: Int] = [:]
            for (index, key) in keys.enumerated() { if let key, counts[key] == 1 { positions[key] = index } }
            return positions
        }
        let leftUnique = uniqueKeys(left)
        let rightUnique = uniqueKeys(right)
        var rightMatched = [Bool](repeating: false, count: right.count)
        var leftUnkeyed = [Bool](repeating: false, count: left.count)
        for (index, key) in left.enumerated() {
            guard let key, leftUnique[key] == index else {
                leftUnkeyed[index] = true
                self.pairs.append((index, nil))
                continue
            }
            if let partner = rightUnique[key] {
                rightMatched[partner] = true
                self.pairs.append((index, partner))
            } else {
                self.pairs.append((index, nil))
            }
        }
        // Elements without a usable key, paired in order.
        var rightUnkeyed: [Int] = []
        for (index, key) in right.enumerated() where !rightMatched[index] {
            if let key, rightUnique[key] == index { continue }
            rightUnkeyed.append(index)
        }
        var slot = 0
        for position in self.pairs.indices where slot < rightUnkeyed.count && leftUnkeyed[self.pairs[position].left] {
            self.pairs[position].right = rightUnkeyed[slot]
            rightMatched[rightUnkeyed[slot]] = true
            slot += 1
        }
        self.added = right.indices.filter { !rightMatched[$0] }
    }
}
