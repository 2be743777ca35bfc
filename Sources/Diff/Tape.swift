import JSON

/// An unsafe view of a parsed document, valid inside ``JSONDocument/withTape(_:)``.
struct Tape {
    let bytes: UnsafeBufferPointer<UInt8>
    let nodes: UnsafeBufferPointer<TapeNode>

    @inline(__always) var base: UnsafePointer<UInt8> { self.bytes.baseAddress! }

    @inline(__always) func rawBytes(_ node: TapeNode) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: self.base + Int(node.start), count: node.length)
    }

    /// The index of the first child of a container, then each next one with `nodes[child].next`. Object members are
    /// a key node followed by the value's subtree.
    @inline(__always) static func firstChild(_ index: Int) -> Int { index + 1 }

    // MARK: - Strings

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// The bytes of a string's contents (between the quotes, already validated), escapes decoded.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(raw.count)
        var index = 0
        func hex4(_ at: Int) -> UInt32 {
            (0..<4).reduce(0) { $0 << 4 | (Self.hexValue(raw[at + $1]) ?? 0) }
        }
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < raw.count else {
                result.append(byte)
                index += 1
                continue
            }
            let escaped = raw[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "u"):
                guard index + 4 <= raw.count else { return result }
                var scalar = hex4(index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar), index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\") {
                    let low = hex4(index + 2)
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low &- 0xDC00)
                    index += 6
                }
                Self.appendUTF8(scalar, to: &result)
            default: result.append(jsonEscapedByte(escaped) ?? escaped)  // b f n r t " \ /
            }
        }
        return result
    }

    static func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: bytes.append(UInt8(scalar))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | scalar >> 6))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | scalar >> 12))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | scalar >> 18))
            bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The unescaped bytes of a string node.
    func stringBytes(_ node: TapeNode) -> [UInt8] {
        node.isEscaped ? Self.unescape(self.rawBytes(node)) : Array(self.rawBytes(node))
    }

    func string(_ node: TapeNode) -> String {
        node.isEscaped
            ? String(decoding: Self.unescape(self.rawBytes(node)), as: UTF8.self)
            : String(decoding: self.rawBytes(node), as: UTF8.self)
    }

    /// Two string nodes (of this tape and `other`) have the same contents once unescaped.
    @inline(__always)
    func stringEquals(_ node: TapeNode, _ other: Tape, _ otherNode: TapeNode) -> Bool {
        if !node.isEscaped, !otherNode.isEscaped {
            return node.length == otherNode.length
                && Self.mismatch(self.base + Int(node.start), other.base + Int(otherNode.start), count: node.length)
                    == node.length
        }
        return self.stringBytes(node) == other.stringBytes(otherNode)
    }

    /// A string node's unescaped contents equal `bytes`.
    @inline(__always)
    func stringEquals(_ node: TapeNode, _ bytes: [UInt8]) -> Bool {
        if !node.isEscaped {
            return node.length == bytes.count
                && bytes.withUnsafeBufferPointer {
                    Self.mismatch(self.base + Int(node.start), $0.baseAddress!, count: bytes.count) == bytes.count
                }
        }
        return self.stringBytes(node) == bytes
    }

    /// The index of the first byte that differs, or `count`.
    @inline(__always)
    static func mismatch(_ left: UnsafePointer<UInt8>, _ right: UnsafePointer<UInt8>, count: Int) -> Int {
        var index = 0
        while index + 8 <= count {
            let difference =
                UInt64(littleEndian: UnsafeRawPointer(left + index).loadUnaligned(as: UInt64.self))
                ^ UInt64(littleEndian: UnsafeRawPointer(right + index).loadUnaligned(as: UInt64.self))
            if difference != 0 { return index + difference.trailingZeroBitCount >> 3 }
            index += 8
        }
        while index < count, left[index] == right[index] { index += 1 }
        return index
    }

    /// A hash of `count` bytes, for duplicate keys (equal bytes, equal hashes; collisions are checked).
    /// `readable`: how many bytes from `start` may be read (at least `count`); 8 or more lets short keys be read as
    /// one word.
    @inline(__always)
    static func fingerprint(_ start: UnsafePointer<UInt8>, count: Int, readable: Int) -> UInt64 {
        var first: UInt64
        var last: UInt64
        if count >= 8 {
            first = UnsafeRawPointer(start).loadUnaligned(as: UInt64.self)
            last = UnsafeRawPointer(start + count - 8).loadUnaligned(as: UInt64.self)
            var index = 8
            while index + 8 <= count - 8 {
                first =
                    (first ^ UnsafeRawPointer(start + index).loadUnaligned(as: UInt64.self)) &* 0x0000_0100_0000_01B3
                index += 8
            }
        } else {
            if readable >= 8 {
                first = UnsafeRawPointer(start).loadUnaligned(as: UInt64.self)
            } else {
                first = 0
                for index in 0..<count { first |= UInt64(start[index]) << (8 * UInt64(index)) }
            }
            first = UInt64(littleEndian: first) & ((1 << (8 * UInt64(count))) &- 1)
            last = 0
        }
        let hash = (first &* 0x9E37_79B9_7F4A_7C15) ^ ((last &* 0xC2B2_AE3D_27D4_EB4F) >> 7) ^ UInt64(count)
        return hash ^ (hash >> 31)
    }

    /// The fingerprint of a key's unescaped contents (the same for `"é"` and `"\\u00e9"`).
    @inline(__always)
    func keyFingerprint(_ node: TapeNode) -> UInt64 {
        if !node.isEscaped {
            return Self.fingerprint(
                self.base + Int(node.start), count: node.length, readable: self.bytes.count - Int(node.start))
        }
        let decoded = Self.unescape(self.rawBytes(node))
        return decoded.withUnsafeBufferPointer {
            Self.fingerprint($0.baseAddress ?? self.base, count: $0.count, readable: $0.count)
        }
    }

    // MARK: - Numbers

    /// The number's text as a Double (the parser made sure it is finite).
    func double(_ node: TapeNode) -> Double {
        Double(String(decoding: self.rawBytes(node), as: UTF8.self)) ?? .nan
    }

    /// Two number nodes have the same exact decimal value (`1`, `1.0`, `10e-1` are equal; `-0` equals `0`).
    func numberEquals(_ node: TapeNode, _ other: Tape, _ otherNode: TapeNode) -> Bool {
        Decimal(self.rawBytes(node)) == Decimal(other.rawBytes(otherNode))
    }

    /// A number as significant digits and an exponent: value = 0.d₁d₂… × 10^exponent.
    struct Decimal: Equatable, Hashable {
        var negative = false
        var digits: [UInt8] = []
        var exponent = 0

        init(_ text: UnsafeBufferPointer<UInt8>) {
            var index = 0
            if index < text.count, text[index] == UInt8(ascii: "-") {
                self.negative = true
                index += 1
            }
            var pointPosition: Int? = nil
            var leadingZeros = 0
            var sawSignificant = false
            var digitCount = 0
            while index < text.count {
                let byte = text[index]
                if byte == UInt8(ascii: ".") {
                    pointPosition = digitCount
                } else if byte &- UInt8(ascii: "0") < 10 {
                    if !sawSignificant, byte == UInt8(ascii: "0") {
                        leadingZeros += 1
                    } else {
                        sawSignificant = true
                        self.digits.append(byte)
                    }
                    digitCount += 1
                } else {
                    break
                }
                index += 1
            }
            var exponent = 0
            if index < text.count, text[index] | 0x20 == UInt8(ascii: "e") {
                index += 1
                var negativeExponent = false
                if index < text.count, text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") {
                    negativeExponent = text[index] == UInt8(ascii: "-")
                    index += 1
                }
                while index < text.count, text[index] &- UInt8(ascii: "0") < 10 {
                    // Saturate: such numbers were refused or are zero-like; only equality matters.
                    exponent = min(exponent * 10 + Int(text[index] - UInt8(ascii: "0")), 1_000_000_000)
                    index += 1
                }
                if negativeExponent { exponent = -exponent }
            }
            while self.digits.last == UInt8(ascii: "0") { self.digits.removeLast() }
            if self.digits.isEmpty {
                self.negative = false
                self.exponent = 0
                return
            }
            self.exponent = (pointPosition ?? digitCount) - leadingZeros + exponent
        }
    }

    // MARK: - Values

    /// The subtree at `index` as a `JSONValue`, built without recursion.
    func value(at index: Int) -> JSONValue {
        struct Frame {
            var isObject: Bool
            var remaining: Int
            /// The current child (arrays) or key node (objects).
            var child: Int
            var items: [JSONValue] = []
            var members: [(key: String, value: JSONValue)] = []
        }
        var stack: [Frame] = []
        var current = index
        while true {
            let node = self.nodes[current]
            var result: JSONValue
            switch node.kind {
            case TapeNode.null: result = .null
            case TapeNode.false: result = .bool(false)
            case TapeNode.true: result = .bool(true)
            case TapeNode.number: result = .number(self.double(node))
            case TapeNode.string: result = .string(self.string(node))
            default:
                let isObject = node.kind == TapeNode.object
                guard node.count > 0 else {
                    result = isObject ? .object([]) : .array([])
                    break
                }
                var frame = Frame(isObject: isObject, remaining: node.count, child: current + 1)
                if isObject {
                    frame.members.reserveCapacity(node.count)
                } else {
                    frame.items.reserveCapacity(node.count)
                }
                stack.append(frame)
                current = isObject ? current + 2 : current + 1
                continue
            }
            // Hand the value to its container, and finish every container that is now complete.
            while !stack.isEmpty {
                let top = stack.count - 1
                let child = stack[top].child
                if stack[top].isObject {
                    stack[top].members.append((self.string(self.nodes[child]), result))
                    stack[top].child = Int(self.nodes[child + 1].next)
                } else {
                    stack[top].items.append(result)
                    stack[top].child = Int(self.nodes[child].next)
                }
                stack[top].remaining -= 1
                if stack[top].remaining > 0 {
                    current = stack[top].isObject ? stack[top].child + 1 : stack[top].child
                    break
                }
                let finished = stack.removeLast()
                result = finished.isObject ? .object(finished.members) : .array(finished.items)
            }
            if stack.isEmpty { return result }
        }
    }
}
