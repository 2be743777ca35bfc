import Diff
import JSON
import Testing

/// Random documents from a seeded generator, and the properties every comparison must keep.
@Suite("JSON diff: properties over generated documents")
struct PropertyTests {
    enum Step: Hashable {
        case key(String)
        case index(Int)
    }

    static let keyAlphabet: [String] = ["a", "b", "id", "name", "x/y", "m~n", "é", "日本", "\"q\"", "tab\t", ""]
    static let stringAlphabet: [String] = ["a", "Z", " ", "é", "😀", "\\", "\"", "/", "\n", "\u{1}", "日"]

    static func randomString(_ generator: inout SeededGenerator, from alphabet: [String], maxLength: Int) -> String {
        (0..<Int.random(in: 0...maxLength, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            .joined()
    }

    static func randomValue(_ generator: inout SeededGenerator, depth: Int = 0) -> JSONValue {
        let choice = Int.random(in: 0..<(depth >= 4 ? 5 : 8), using: &generator)
        switch choice {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .number(Double(Int.random(in: -1000...1000, using: &generator)))
        case 3: return .number(Double(Int.random(in: -100_000...100_000, using: &generator)) / 100)
        case 4: return .string(Self.randomString(&generator, from: Self.stringAlphabet, maxLength: 6))
        case 5, 6:
            var members: [(key: String, value: JSONValue)] = []
            var keys = Set<String>()
            for _ in 0..<Int.random(in: 0...5, using: &generator) {
                let key = Self.randomString(&generator, from: Self.keyAlphabet, maxLength: 2)
                if keys.insert(key).inserted { members.append((key, Self.randomValue(&generator, depth: depth + 1))) }
            }
            return .object(members)
        default:
            return .array(
                (0..<Int.random(in: 0...5, using: &generator)).map { _ in Self.randomValue(&generator, depth: depth + 1)
                })
        }
    }

    /// Another text of the same value: keys shuffled, random whitespace, some characters escaped as \u, numbers
    /// written as `1.0`, `1e0` or `10E-1`.
    static func rewrite(_ value: JSONValue, _ generator: inout SeededGenerator) -> String {
        func space() -> String { ["", " ", "\n  ", "\t"].randomElement(using: &generator)! }
        func quoted(_ string: String) -> String {
            var text = "\""
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += Bool.random(using: &generator) ? "\\n" : "\\u000a"
                case "/": text += Bool.random(using: &generator) ? "\\/" : "/"
                case _ where scalar.value < 0x20 || Bool.random(using: &generator):
                    if scalar.value > 0xFFFF {
                        let value = scalar.value - 0x10000
                        text += String(format4: 0xD800 + (value >> 10)) + String(format4: 0xDC00 + (value & 0x3FF))
                    } else {
                        text += String(format4: scalar.value)
                    }
                default: text.unicodeScalars.append(scalar)
                }
            }
            return text + "\""
        }
        switch value {
        case .null, .bool: return value.jsonText
        case .number(let number):
            let text = JSONValue.format(number)
            guard number == number.rounded(), abs(number) < 1e6 else { return text }
            return [text, text + ".0", text + "e0", number == 0 ? "0e5" : text + "0E-1", text + ".000"].randomElement(
                using: &generator)!
        case .string(let string): return quoted(string)
        case .array(let items):
            return "[" + space() + items.map { rewrite($0, &generator) }.joined(separator: "," + space()) + space()
                + "]"
        case .object(let members):
            let shuffled = members.shuffled(using: &generator)
            return "{" + space()
                + shuffled.map { quoted($0.key) + space() + ":" + space() + rewrite($0.value, &generator) }.joined(
                    separator: ",")
                + space() + "}"
        }
    }

    static func pointer(_ path: [Step]) -> String {
        PointerPattern.pointer(
            path.map { step in
                switch step {
                case .key(let key): key
                case .index(let index): String(index)
                }
            })
    }

    /// Paths to every scalar, with whether its parent is an object.
    static func leaves(_ value: JSONValue, path: [Step] = []) -> [[Step]] {
        switch value {
        case .array(let items): return items.enumerated().flatMap { leaves($1, path: path + [.index($0)]) }
        case .object(let members): return members.flatMap { leaves($0.value, path: path + [.key($0.key)]) }
        default: return [path]
        }
    }

    /// The value with the subtree at `path` replaced (nil: removed, for object members).
    static func replacing(_ value: JSONValue, at path: ArraySlice<Step>, with replacement: JSONValue?) -> JSONValue? {
        guard let step = path.first else { return replacement }
        switch (value, step) {
        case (.array(var items), .index(let index)):
            items[index] = replacing(items[index], at: path.dropFirst(), with: replacement)!
            return .array(items)
        case (.object(var members), .key(let key)):
            let position = members.firstIndex { $0.key == key }!
            if let updated = replacing(members[position].value, at: path.dropFirst(), with: replacement) {
                members[position].value = updated
            } else {
                members.remove(at: position)
            }
            return .object(members)
        default: fatalError("no such path")
        }
    }

    static func value(_ value: JSONValue, at path: ArraySlice<Step>) -> JSONValue {
        guard let step = path.first else { return value }
        switch (value, step) {
        case (.array(let items), .index(let index)): return Self.value(items[index], at: path.dropFirst())
        case (.object(let members), .key(let key)):
            return Self.value(members.first { $0.key == key }!.value, at: path.dropFirst())
        default: fatalError("no such path")
        }
    }

    func compare(_ left: String, _ right: String, _ options: DiffOptions = DiffOptions()) throws -> DiffResult {
        try JSONDiff.diff(Array(left.utf8), Array(right.utf8), options: options)
    }

    @Test(arguments: 0..<200)
    func aDocumentEqualsItselfAndAnyRewriteOfIt(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let document = Self.randomValue(&generator)
        let text = document.jsonText
        let rewritten = Self.rewrite(document, &generator)
        #expect(try self.compare(text, text).isEqual)
        let result = try self.compare(text, rewritten)
        #expect(result.isEqual, "\(text)\n\(rewritten)\n\(summary(result))")
        #expect(try JSONParser.parse(rewritten) == document)
    }

    @Test(arguments: 0..<300)
    func mutatedLeavesAreExactlyTheDifferencesReported(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        var document = Self.randomValue(&generator)
        while Self.leaves(document).count < 3 {
            document = .object([
                ("a", document), ("b", Self.randomValue(&generator)), ("c", .array([.null, .number(1)])),
            ])
        }
        let original = document
        let chosen = Self.leaves(document).shuffled(using: &generator).prefix(Int.random(in: 1...3, using: &generator))
        var expected = Set<String>()
        for (number, path) in chosen.enumerated() {
            let old = Self.value(document, at: path[...])
            let parentIsObject = if case .key = path.last { true } else { false }
            switch Int.random(in: 0..<4, using: &generator) {
            case 0 where old != .null:
                let new: JSONValue =
                    switch old {
                    case .bool(let flag): .bool(!flag)
                    case .number(let number): .number(number + 1)
                    case .string(let string): .string(string + "x")
                    default: fatalError()
                    }
                document = Self.replacing(document, at: path[...], with: new)!
                expected.insert("changed \(Self.pointer(path))")
            case 1 where parentIsObject:
                document = Self.replacing(document, at: path[...], with: nil)!
                expected.insert("removed \(Self.pointer(path))")
            case 2 where parentIsObject:
                let sibling = Array(path.dropLast()) + [.key("new\(number)")]
                guard case .object(var members) = Self.value(document, at: path.dropLast()) else { fatalError() }
                members.append(("new\(number)", .number(Double(number))))
                document = Self.replacing(document, at: path.dropLast(), with: .object(members))!
                expected.insert("added \(Self.pointer(sibling))")
            default:
                let new: JSONValue = if case .string = old { .number(7) } else { .string("other") }
                document = Self.replacing(document, at: path[...], with: new)!
                expected.insert("type_changed \(Self.pointer(path))")
            }
        }
        let left = Self.rewrite(original, &generator)
        let right = Self.rewrite(document, &generator)
        let result = try self.compare(left, right)
        #expect(Set(summary(result)) == expected, "\(left)\n\(right)")
        #expect(result.totalCount == expected.count)
        // The value engine agrees.
        #expect(Set(summary(JSONDiff.diff(original, document, options: DiffOptions()))) == expected)

        // Swapping the sides swaps added and removed, and keeps the rest.
        let swapped = try self.compare(right, left)
        let flipped = Set(
            summary(result).map { line in
                line.hasPrefix("added ")
                    ? "removed " + line.dropFirst(6) : line.hasPrefix("removed ") ? "added " + line.dropFirst(8) : line
            })
        #expect(Set(summary(swapped)) == flipped)
        for difference in swapped.differences {
            let mirror = try #require(result.differences.first { $0.pointer == difference.pointer })
            #expect(mirror.left == difference.right && mirror.right == difference.left)
        }
    }

    @Test(arguments: 0..<100)
    func keyedArraysIgnoreOrder(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let elements: [JSONValue] = (0..<Int.random(in: 0...8, using: &generator)).map { index in
            .object([("id", .number(Double(index))), ("v", Self.randomValue(&generator, depth: 3))])
        }
        let left = JSONValue.object([("items", .array(elements))])
        let right = JSONValue.object([("items", .array(elements.shuffled(using: &generator)))])
        let options = DiffOptions(arrays: ["/items": "id"])
        #expect(try self.compare(left.jsonText, Self.rewrite(right, &generator), options).isEqual)
    }
}

extension String {
    /// `\uXXXX` for a UTF-16 code unit.
    init(format4 value: UInt32) {
        let hex = String(value, radix: 16)
        self = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
