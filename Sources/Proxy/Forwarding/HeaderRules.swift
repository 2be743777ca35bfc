import Foundation
import NIOCore

/// What the proxy accepts of the ids and traces clients send (the rewriting itself is `HeadRewriter`).
enum HeaderRules {
    static let viaToken = "1.1 strangler"

    /// `00-<32 hex>-<16 hex>-<2 hex>`, not all zeros (W3C Trace Context).
    static func isValidTraceparent(_ value: String) -> Bool {
        let utf8 = Array(value.utf8)
        guard utf8.count == 55, utf8[2] == UInt8(ascii: "-"), utf8[35] == UInt8(ascii: "-"), utf8[52] == UInt8(ascii: "-") else { return false }
        guard utf8[0] != UInt8(ascii: "f") || utf8[1] != UInt8(ascii: "f") else { return false }
        for (index, byte) in utf8.enumerated() where ![2, 35, 52].contains(index) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) else { return false }
        }
        let traceID = utf8[3..<35]
        let parentID = utf8[36..<52]
        return !traceID.allSatisfy { $0 == UInt8(ascii: "0") } && !parentID.allSatisfy { $0 == UInt8(ascii: "0") }
    }

    /// A request id worth passing on: 1–200 visible ASCII characters.
    static func isValidRequestID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 200 && value.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }
}

/// A fast, non-cryptographic generator for request ids and trace ids (xoshiro256**), one per event loop.
struct IDGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var seed = SystemRandomNumberGenerator()
        self.state = (seed.next(), seed.next(), seed.next(), seed.next() | 1)
    }

    mutating func next() -> UInt64 {
        let result = ((self.state.1 &* 5) << 7 | (self.state.1 &* 5) >> 57) &* 9
        let t = self.state.1 << 17
        self.state.2 ^= self.state.0
        self.state.3 ^= self.state.1
        self.state.1 ^= self.state.2
        self.state.0 ^= self.state.3
        self.state.2 ^= t
        self.state.3 = (self.state.3 << 45) | (self.state.3 >> 19)
        return result
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// `count` random 64-bit words as lowercase hex (16 characters each).
    mutating func hex(words count: Int) -> String {
        String(unsafeUninitializedCapacity: count * 16) { bytes in
            for word in 0..<count {
                var value = self.next()
                for index in stride(from: 15, through: 0, by: -1) {
                    bytes[word * 16 + index] = Self.hex[Int(value & 0xF)]
                    value >>= 4
                }
            }
            return count * 16
        }
    }

    /// Writes a new traceparent straight into `buffer`.
    mutating func writeTraceparent(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("00-")
        self.writeHex(words: 2, into: &buffer)
        buffer.writeStaticString("-")
        self.writeHex(words: 1, into: &buffer)
        buffer.writeStaticString("-01")
    }

    private mutating func writeHex(words count: Int, into buffer: inout ByteBuffer) {
        for _ in 0..<count {
            var value = self.next()
            var digits: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &digits) { raw in
                for index in stride(from: 15, through: 0, by: -1) {
                    raw[index] = Self.hex[Int(value & 0xF)]
                    value >>= 4
                }
                buffer.writeBytes(raw)
            }
        }
    }
}
