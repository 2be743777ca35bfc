public import NIOCore

/// Why a message head (or a chunked body) is refused.
public struct HeadError: Error {
    /// What kind of defect it is.
    public enum Kind: Sendable {
        /// Not valid HTTP/1.1, or ambiguous between two parsers.
        case malformed
        /// Larger than the reader allows.
        case tooLarge
    }

    /// What kind of defect it is.
    public var kind: Kind
    /// The defect in a few words (`"a bare LF in the head (lines end with CRLF)"`): clients' 400s say it.
    public var reason: String

    /// A head or body that is not valid HTTP/1.1.
    public static func malformed(_ reason: String) -> HeadError { HeadError(kind: .malformed, reason: reason) }
}

/// A parsed HTTP/1.x message head that keeps its bytes: fields are ranges into `bytes`, so forwarding a
/// head copies bytes instead of building strings.
///
/// ```swift
/// let head = try HTTPHeadParser.parseRequest(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
/// head.string(head.startLine.first)  // "GET"
/// ```
public struct HTTPHead {
    /// The head's bytes, from the start line to the empty line included. Ranges are offsets into its readable bytes.
    public var bytes: ByteBuffer
    /// The same bytes as an array (a copy: for what keeps a head past its exchange).
    public var raw: [UInt8] { Array(self.bytes.readableBytesView) }
    /// Request: method, target. Response: version, status code, reason.
    public var startLine: (first: Range<Int>, second: Range<Int>, third: Range<Int>)
    /// The authority of an absolute-form request target, which stands for `Host`.
    public var absoluteAuthority: Range<Int>?
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    public var versionMinor: Int
    /// A field line: its name's and its (trimmed) value's ranges.
    public typealias Field = (name: Range<Int>, value: Range<Int>)
    /// Every field line.
    public var fields: [Field] = []

    // Framing and the few fields the proxy acts on.

    /// The `Content-Length`, if any (at most one, checked by the parser).
    public var contentLength: Int?
    /// `Transfer-Encoding: chunked`.
    public var chunked = false
    /// `Connection` says `close`.
    public var hasClose = false
    /// `Connection` says `keep-alive`.
    public var hasKeepAlive = false
    /// Lowercased tokens of `Connection` other than `close` and `keep-alive`: the fields they name stay on this hop.
    public var connectionNamedFields: [String] = []
    /// A `Strangler-*` field is present (the proxy's own: dropped from what is forwarded).
    public var hasInternalFields = false
    /// A `Strangler-Dry-Run` field is present (a client may not send it).
    public var hasDryRunField = false
    /// `Expect: 100-continue`: the client waits for an interim answer before it sends the body.
    public var expectsContinue = false
    /// An `Upgrade` field is present (with `Connection: upgrade`, a protocol upgrade: `isUpgrade`).
    public var hasUpgradeField = false

    /// A request for a protocol upgrade (WebSocket): HTTP/1.1, an `Upgrade` field, and `Connection` naming it.
    @inlinable
    public var isUpgrade: Bool {
        self.hasUpgradeField && self.versionMinor >= 1 && self.connectionNamedFields.contains("upgrade")
    }

    /// The bytes at `range` as text.
    @inlinable
    public func string(_ range: Range<Int>) -> String {
        self.bytes.withUnsafeReadableBytes {
            String(decoding: UnsafeRawBufferPointer(rebasing: $0[range]), as: UTF8.self)
        }
    }

    /// ASCII case-insensitive comparison of a field name with a lowercase name.
    @inlinable
    public func nameEquals(_ range: Range<Int>, _ lower: StaticString) -> Bool {
        self.bytes.withUnsafeReadableBytes {
            HTTPHeadParser.equalsLowercase($0.assumingMemoryBound(to: UInt8.self), range, lower)
        }
    }

    /// Whether a field name is one of the proxy's own (`Strangler-*`, any case).
    @inlinable
    public func nameIsInternal(_ range: Range<Int>) -> Bool {
        self.bytes.withUnsafeReadableBytes {
            HTTPHeadParser.isInternalName($0.assumingMemoryBound(to: UInt8.self), range)
        }
    }

    /// The value of the first field named `lower` (lowercase), if any.
    public func value(of lower: StaticString) -> String? {
        for field in self.fields where self.nameEquals(field.name, lower) { return self.string(field.value) }
        return nil
    }

    /// Whether `Connection` names fields to drop (anything beyond `close` and `keep-alive`).
    @inlinable
    public var connectionNamesFields: Bool { !self.connectionNamedFields.isEmpty }

    /// A response's status code, as the parser read it (nil for a request, or a head made without the parser).
    public var parsedStatus: UInt?

    /// A response's status code (three digits, checked by the parser): the parser's, else read from the bytes.
    @inlinable
    public var statusCode: UInt {
        if let parsedStatus = self.parsedStatus { return parsedStatus }
        let digits = self.startLine.second
        guard digits.count == 3 else { return 502 }
        return self.bytes.withUnsafeReadableBytes { raw in
            var code: UInt = 0
            for position in digits { code = code * 10 + UInt(raw[position] &- 0x30) }
            return code
        }
    }

    /// Whether the connection may carry another message after this one (RFC 9112 §9.3).
    @inlinable
    public var isKeepAlive: Bool { self.versionMinor >= 1 ? !self.hasClose : self.hasKeepAlive }
}
