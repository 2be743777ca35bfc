import Foundation
import NIOCore

/// What the proxy accepts of the ids and traces clients send (the rewriting itself is `HeadRewriter`).
enum HeaderRules {
    static let viaToken = "1.1 strangler"

    /// `00-<32 hex>-<16 hex>-<2 hex>`, not all zeros (W3C Trace Context).
    static func isValidTraceparent(_ value: String) -> Bool {
        let utf8 = Array(value.utf8)
        guard utf8.count == 55, utf8[2] == UInt8(ascii: "-"), utf8[35] == UInt8(ascii: "-"),
            utf8[52] == UInt8(ascii: "-")
        else { return false }
        guard utf8[0] != UInt8(ascii: "f") || utf8[1] != UInt8(ascii: "f") else { return false }
        for (index, byte) in utf8.enumerated() where ![2, 35, 52].contains(index) {
            guard
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            else { return false }
        }
        let traceID = utf8[3..<35]
        let parentID = utf8[36..<52]
        return !traceID.allSatisfy { $0 == UInt8(ascii: "0") } && !parentID.allSatisfy { $0 == UInt8(ascii: "0") }
    }

    /// The traceparent to forward for a client's `value` (W3C Trace Context Level 1), or nil when it is not one (the
    /// proxy then starts a trace). Version `00` is taken as is (exactly 55 characters); a later version (not `ff`) is
    /// read by its first 55 characters, when what follows them starts with `-`, and forwarded as version `00` with the
    /// same trace id, parent id and flags: the version this proxy speaks.
    static func traceparent(_ value: String) -> String? {
        let utf8 = value.utf8
        guard utf8.count >= 55 else { return nil }
        let head = String(decoding: utf8.prefix(55), as: UTF8.self)
        guard Self.isValidTraceparent(head) else { return nil }
        if head.hasPrefix("00") { return utf8.count == 55 ? value : nil }
        guard utf8.count == 55 || utf8[utf8.index(utf8.startIndex, offsetBy: 55)] == UInt8(ascii: "-") else {
            return nil
        }
        return "00" + head.dropFirst(2)
    }

    /// The tracestate to forward for a client's fields (`values`, in order; W3C Trace Context Level 1: a list of at
    /// most 32 `key=value` members, keys unique), its members joined by `,`; nil when the list is empty or not one
    /// (it is then not forwarded: a tracestate belongs to its traceparent, and is never passed on without it).
    static func tracestate(_ values: [String]) -> String? {
        var members: [Substring] = []
        var keys: Set<Substring> = []
        for value in values {
            for piece in value.split(separator: ",", omittingEmptySubsequences: false) {
                var trimmed = piece
                while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
                while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
                if trimmed.isEmpty { continue }
                guard let equals = trimmed.firstIndex(of: "="), Self.isTracestateKey(trimmed[..<equals]),
                    Self.isTracestateValue(trimmed[trimmed.index(after: equals)...]),
                    keys.insert(trimmed[..<equals]).inserted
                else { return nil }
                members.append(trimmed)
            }
        }
        guard !members.isEmpty, members.count <= 32 else { return nil }
        return members.joined(separator: ",")
    }

    /// `simple-key` or `tenant-id@system-id`.
    private static func isTracestateKey(_ key: Substring) -> Bool {
        func isKeyCharacter(_ byte: UInt8) -> Bool {
            (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || "_-*/".utf8.contains(byte)
        }
        let parts = key.utf8.split(separator: UInt8(ascii: "@"), omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard let first = parts[0].first, (0x61...0x7A).contains(first), parts[0].count <= 256 else { return false }
            return parts[0].allSatisfy(isKeyCharacter)
        case 2:
            let (tenant, system) = (parts[0], parts[1])
            guard let tenantFirst = tenant.first, let systemFirst = system.first,
                (0x61...0x7A).contains(tenantFirst) || (0x30...0x39).contains(tenantFirst),
                (0x61...0x7A).contains(systemFirst), tenant.count <= 241, system.count <= 14
            else { return false }
            return tenant.allSatisfy(isKeyCharacter) && system.allSatisfy(isKeyCharacter)
        default:
            return false
        }
    }

    /// 1–256 printable characters but `,` and `=`, the last not a space.
    private static func isTracestateValue(_ value: Substring) -> Bool {
        guard let last = value.utf8.last, last != 0x20, value.utf8.count <= 256 else { return false }
        return value.utf8.allSatisfy { (0x20...0x7E).contains($0) && $0 != 0x2C && $0 != 0x3D }
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

    /// The 8 lowercase hex digits of `value`, most significant first, as the bytes of a UInt64 in memory order
    /// (SWAR: the nibbles are spread to one per byte and turned into ASCII all at once, no table, no loop).
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var spread = UInt64(value)
        spread = (spread | (spread << 16)) & 0x0000_FFFF_0000_FFFF
        spread = (spread | (spread << 8)) & 0x00FF_00FF_00FF_00FF
        spread = (spread | (spread << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        let letters = ((spread &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        let ascii = spread &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
        // The most significant digit is in the highest byte: first in memory once the bytes are in big-endian order.
        return ascii.bigEndian
    }

    /// Writes the 16 hex digits of `value` at `offset` of `bytes`.
    @inline(__always)
    static func writeHex(_ value: UInt64, into bytes: UnsafeMutableRawBufferPointer, at offset: Int) {
        bytes.storeBytes(
            of: Self.hexDigits(UInt32(truncatingIfNeeded: value >> 32)), toByteOffset: offset, as: UInt64.self)
        bytes.storeBytes(
            of: Self.hexDigits(UInt32(truncatingIfNeeded: value)), toByteOffset: offset + 8, as: UInt64.self)
    }

    /// Writes `count` random 64-bit words as lowercase hex (16 characters each) at the start of `bytes`.
    mutating func writeHex(words count: Int, into bytes: UnsafeMutableRawBufferPointer) {
        self.fillHex(words: count, into: bytes)
    }

    /// Writes `count` random words as hex (16 digits each) at `bytes`.
    @inline(__always)
    private mutating func fillHex(words count: Int, into bytes: UnsafeMutableRawBufferPointer) {
        for word in 0..<count {
            Self.writeHex(self.next(), into: bytes, at: word &* 16)
        }
    }

    /// `count` random 64-bit words as lowercase hex (16 characters each).
    mutating func hex(words count: Int) -> String {
        String(unsafeUninitializedCapacity: count * 16) { bytes in
            self.fillHex(words: count, into: UnsafeMutableRawBufferPointer(bytes))
            return count * 16
        }
    }

    /// Writes a new traceparent (`00-<32 hex>-<16 hex>-01`) straight into `buffer`, in one write.
    mutating func writeTraceparent(into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 55) { raw in
            self.writeTraceparent(to: raw)
        }
    }

    /// Writes a new traceparent at the start of `raw` (at least 55 bytes); returns 55.
    mutating func writeTraceparent(to raw: UnsafeMutableRawBufferPointer) -> Int {
        raw[0] = 0x30
        raw[1] = 0x30
        raw[2] = 0x2D
        self.fillHex(words: 2, into: UnsafeMutableRawBufferPointer(rebasing: raw[3..<35]))
        raw[35] = 0x2D
        self.fillHex(words: 1, into: UnsafeMutableRawBufferPointer(rebasing: raw[36..<52]))
        raw[52] = 0x2D
        raw[53] = 0x30
        raw[54] = 0x31
        return 55
    }
}
