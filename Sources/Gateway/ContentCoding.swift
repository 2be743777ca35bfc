import CompressNIO
import Diff
import Foundation
import NIOCore
import Proxy

/// Answers are compared as content, not as bytes on the wire: a body with `Content-Encoding: gzip` or `deflate` is
/// decoded first, so that two sides that differ only in encoding match, and ignore and array rules apply to what is
/// inside. Other codings (`br`, several stacked) and bodies that do not decode are compared as they came.
enum ContentCoding {
    /// The most a decoded body may take (a larger one, a compression bomb say, is compared as it came).
    static let maxDecodedBytes = 64 << 20

    /// `answer`'s body decoded, and its fields without `Content-Encoding`; nil when it is not encoded in a coding
    /// this reads, or does not decode.
    static func decoded(_ answer: RawAnswer) -> (fields: [(name: String, value: String)], body: [UInt8])? {
        // Only the one field first: most answers are not encoded, and their heads are not parsed whole for this.
        let codings = answer.fields(only: ["content-encoding"])
            .flatMap { $0.value.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty && $0 != "identity" }
        guard codings.count == 1, !answer.body.isEmpty else { return nil }
        let formats: [Format]
        switch codings[0] {
        case "gzip", "x-gzip": formats = [.gzip]
        // RFC 9110's deflate is zlib's format; some servers send raw deflate under that name.
        case "deflate": formats = [.zlib, .raw]
        default: return nil
        }
        for format in formats {
            var buffer = ByteBuffer(bytes: answer.body)
            guard let decoded = try? buffer.decompress(with: format.algorithm, maxSize: Self.maxDecodedBytes) else {
                continue
            }
            let body = Array(decoded.readableBytesView)
            // zlib stops quietly at the end of a cut stream: the trailer tells a whole body from a cut one.
            guard format.isWhole(body, encoded: answer.body) else { continue }
            return (answer.fields().filter { $0.name.lowercased() != "content-encoding" }, body)
        }
        return nil
    }

    enum Format {
        case gzip, zlib, raw

        var algorithm: CompressionAlgorithm {
            switch self {
            case .gzip: .gzip()
            case .zlib: .zlib()
            case .raw: .deflate()
            }
        }

        /// Whether `body` is all of what `encoded` holds: gzip's trailer ends with the length (mod 2³²), zlib's is
        /// the Adler-32 of the data; raw deflate has no trailer, and an empty result is taken for a cut stream.
        func isWhole(_ body: [UInt8], encoded: [UInt8]) -> Bool {
            switch self {
            case .gzip:
                guard encoded.count >= 18 else { return false }
                let size = encoded.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return size == UInt32(truncatingIfNeeded: body.count)
            case .zlib:
                guard encoded.count >= 6 else { return false }
                let stored = encoded.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return stored == Self.adler32(body)
            case .raw:
                return !body.isEmpty
            }
        }

        static func adler32(_ bytes: [UInt8]) -> UInt32 {
            var a: UInt32 = 1
            var b: UInt32 = 0
            for chunk in stride(from: 0, to: bytes.count, by: 5552) {
                for byte in bytes[chunk..<min(chunk + 5552, bytes.count)] {
                    a += UInt32(byte)
                    b += a
                }
                a %= 65521
                b %= 65521
            }
            return b << 16 | a
        }
    }

    /// `answer` as it is compared and kept: decoded when it can be, its head without `Content-Encoding` and with
    /// the decoded body's `Content-Length`; as it came otherwise.
    static func decoding(_ answer: RawAnswer) -> RawAnswer {
        guard let decoded = Self.decoded(answer) else { return answer }
        let startLine = answer.head.firstIndex(of: UInt8(ascii: "\r")).map { Array(answer.head[..<$0]) } ?? []
        var head = startLine + Array("\r\n".utf8)
        for (name, value) in decoded.fields {
            let kept = name.lowercased() == "content-length" ? String(decoded.body.count) : value
            head += Array("\(name): \(kept)\r\n".utf8)
        }
        head += Array("\r\n".utf8)
        var plain = answer
        plain.head = head
        plain.body = decoded.body
        return plain
    }
}
