import Foundation
import NIOHTTP1

/// The header rewriting a reverse proxy owes both sides: hop-by-hop headers stay on their hop,
/// `X-Forwarded-*` and `Via` say where the request came from, and every request carries an id and a trace.
enum HeaderRules {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1), always removed.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    static let viaToken = "1.1 strangler"

    /// Whether `name` is one of ``hopByHop`` (ASCII case-insensitive), without allocating.
    static func isHopByHop(_ name: String) -> Bool {
        let count = name.utf8.count
        guard count >= 2, count <= 19 else { return false }
        for candidate in self.hopByHop where candidate.utf8.count == count {
            if Self.equalsIgnoringCase(name, candidate) { return true }
        }
        return false
    }

    /// ASCII case-insensitive equality with a lowercase `lower`.
    static func equalsIgnoringCase(_ name: String, _ lower: String) -> Bool {
        guard name.utf8.count == lower.utf8.count else { return false }
        return zip(name.utf8, lower.utf8).allSatisfy { a, b in a == b || (a >= 0x41 && a <= 0x5A && a | 0x20 == b) }
    }

    /// The request headers for the upstream hop, built in one pass: hop-by-hop headers (and those that
    /// `Connection` names) dropped, `Host` set to the upstream, `X-Forwarded-For/-Proto/-Host` and `Via`
    /// set, and `X-Request-Id` and `traceparent` passed on when valid or created.
    static func upstreamRequestHeaders(
        _ headers: HTTPHeaders, upstreamAuthority: String, clientAddress: String, chunked: Bool, ids: inout IDGenerator
    ) -> (headers: HTTPHeaders, requestID: String) {
        var result = HTTPHeaders()
        result.reserveCapacity(headers.count + 6)
        var connectionNames: [String] = []
        for (name, value) in headers where Self.equalsIgnoringCase(name, "connection") {
            connectionNames += value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        var originalHost: String?
        var forwardedFor: String?
        var via: String?
        var requestID: String?
        var traceparent: String?
        for (name, value) in headers {
            if Self.isHopByHop(name) { continue }
            if !connectionNames.isEmpty, connectionNames.contains(where: { Self.equalsIgnoringCase(name, $0) }) { continue }
            switch name.utf8.count {
            case 4 where Self.equalsIgnoringCase(name, "host"):
                originalHost = value
                continue
            case 3 where Self.equalsIgnoringCase(name, "via"):
                via = via.map { $0 + ", " + value } ?? value
                continue
            case 15 where Self.equalsIgnoringCase(name, "x-forwarded-for"):
                forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
                continue
            case 17 where Self.equalsIgnoringCase(name, "x-forwarded-proto"):
                continue
            case 16 where Self.equalsIgnoringCase(name, "x-forwarded-host"):
                continue
            case 12 where Self.equalsIgnoringCase(name, "x-request-id"):
                if requestID == nil, Self.isValidRequestID(value) { requestID = value }
                continue
            case 11 where Self.equalsIgnoringCase(name, "traceparent"):
                if traceparent == nil, Self.isValidTraceparent(value) { traceparent = value }
                continue
            default:
                result.add(name: name, value: value)
            }
        }
        if chunked { result.add(name: "transfer-encoding", value: "chunked") }
        result.add(name: "host", value: upstreamAuthority)
        result.add(name: "x-forwarded-for", value: forwardedFor.map { $0 + ", " + clientAddress } ?? clientAddress)
        result.add(name: "x-forwarded-proto", value: "http")
        if let originalHost { result.add(name: "x-forwarded-host", value: originalHost) }
        result.add(name: "via", value: via.map { $0 + ", " + Self.viaToken } ?? Self.viaToken)
        let id = requestID ?? ids.hex(words: 2)
        result.add(name: "x-request-id", value: id)
        result.add(name: "traceparent", value: traceparent ?? ids.traceparent())
        return (result, id)
    }

    /// The response headers for the client hop: hop-by-hop dropped, `Via` appended, the request id added.
    static func clientResponseHeaders(_ headers: HTTPHeaders, requestID: String, close: Bool) -> HTTPHeaders {
        var result = HTTPHeaders()
        result.reserveCapacity(headers.count + 3)
        var connectionNames: [String] = []
        for (name, value) in headers where Self.equalsIgnoringCase(name, "connection") {
            connectionNames += value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        var via: String?
        var hasRequestID = false
        for (name, value) in headers {
            if Self.isHopByHop(name) { continue }
            if !connectionNames.isEmpty, connectionNames.contains(where: { Self.equalsIgnoringCase(name, $0) }) { continue }
            if name.utf8.count == 3, Self.equalsIgnoringCase(name, "via") {
                via = via.map { $0 + ", " + value } ?? value
                continue
            }
            if name.utf8.count == 12, Self.equalsIgnoringCase(name, "x-request-id") { hasRequestID = true }
            result.add(name: name, value: value)
        }
        result.add(name: "via", value: via.map { $0 + ", " + Self.viaToken } ?? Self.viaToken)
        if !hasRequestID { result.add(name: "x-request-id", value: requestID) }
        if close { result.add(name: "connection", value: "close") }
        return result
    }

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
        var bytes = [UInt8](repeating: 0, count: count * 16)
        for word in 0..<count {
            var value = self.next()
            for index in stride(from: 15, through: 0, by: -1) {
                bytes[word * 16 + index] = Self.hex[Int(value & 0xF)]
                value >>= 4
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A new W3C traceparent with a random trace id and parent id, sampled.
    mutating func traceparent() -> String {
        "00-\(self.hex(words: 2))-\(self.hex(words: 1))-01"
    }
}
