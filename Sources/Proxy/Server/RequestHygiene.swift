import NIOHTTP1

/// Refuses requests whose framing or headers could be read two ways (request smuggling) or are malformed.
/// The HTTP parser already refuses much of this; these checks hold whatever the parser lets through.
enum RequestHygiene {
    static func check(_ head: HTTPRequestHead, maxHeaderBytes: Int) -> ProxyErrorResponse? {
        let lengths = head.headers["content-length"]
        let encodings = head.headers["transfer-encoding"]
        if !lengths.isEmpty, !encodings.isEmpty {
            return .badRequest("the request has both Content-Length and Transfer-Encoding")
        }
        if lengths.count > 1 { return .badRequest("the request has several Content-Length headers") }
        if let length = lengths.first, length.isEmpty || length.utf8.count > 18 || !length.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            return .badRequest("the request's Content-Length is malformed")
        }
        if encodings.count > 1 || (encodings.first.map { $0.lowercased() != "chunked" } ?? false) {
            return .badRequest("the request's Transfer-Encoding is not supported (only chunked is)")
        }
        var size = 0
        for (name, value) in head.headers {
            size += name.utf8.count + value.utf8.count + 4
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                return .badRequest("the request has an invalid header name")
            }
            // Field values: visible characters, spaces and tabs; no CR, LF, NUL or other controls (obs-fold included).
            guard value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .badRequest("the request has an invalid character in header \(name)")
            }
        }
        if size > maxHeaderBytes {
            return ProxyErrorResponse(
                status: .requestHeaderFieldsTooLarge, code: "header_too_large",
                message: "the request's headers are larger than \(maxHeaderBytes) bytes", route: nil)
        }
        return nil
    }

    /// RFC 9110 token characters.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }
}
