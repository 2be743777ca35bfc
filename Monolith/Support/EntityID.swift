import Foundation

/// Entity identifiers: a type prefix, then 10 characters of creation time and 10 random characters in
/// Crockford base32 (`con_01JD8X7Q2M4B9T5KZ3WQ`). Ids sort in creation order, which gives lists a
/// stable order that mostly follows time.
enum EntityID {
    private static let alphabet: [Character] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return self.make(
            prefix: prefix, millisecondsSince1970: Int64(Date().timeIntervalSince1970 * 1000), using: &generator)
    }

    static func make(
        prefix: String, millisecondsSince1970 time: Int64, using generator: inout some RandomNumberGenerator
    ) -> String {
        var characters: [Character] = []
        characters.reserveCapacity(20)
        var remaining = UInt64(max(0, time))
        var timePart = [Character](repeating: "0", count: 10)
        for index in stride(from: 9, through: 0, by: -1) {
            timePart[index] = self.alphabet[Int(remaining & 31)]
            remaining >>= 5
        }
        characters.append(contentsOf: timePart)
        var random = generator.next()
        for _ in 0..<10 {
            characters.append(self.alphabet[Int(random & 31)])
            random >>= 5
        }
        return prefix + "_" + String(characters)
    }

    /// Whether `text` can be an id (ASCII letters, digits and `_`, at most 64 bytes); anything else is
    /// answered 404 without a query.
    static func isWellFormed(_ text: some StringProtocol) -> Bool {
        text.utf8.count <= 64
            && text.utf8.allSatisfy {
                $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                    || (0x61...0x7A).contains($0)
            }
    }
}

/// A small, fast, seedable generator (SplitMix64) for deterministic demo data.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
