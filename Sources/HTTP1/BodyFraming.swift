public import NIOCore

/// How a message's body ends (RFC 9112 §6.3), followed as its bytes pass: what is left of a `Content-Length`, where
/// a chunked body is, or the close of the connection.
public enum BodyFraming {
    /// `remaining` bytes of body to come (`0`: the message is whole).
    case length(Int)
    /// A chunked body, as far as it came.
    case chunked(ChunkedTracker)
    /// A response without length: its body runs until the upstream closes the connection.
    case untilClose

    /// The framing of a response with `head` (a final one: not 1xx) to a request that was (or was not) `HEAD`.
    /// A response to `HEAD`, a 204 and a 304 have no body, whatever their fields say.
    @inlinable
    public static func response(_ head: HTTPHead, toHEAD: Bool) -> BodyFraming {
        let status = head.statusCode
        if toHEAD || status == 204 || status == 304 { return .length(0) }
        if head.chunked { return .chunked(ChunkedTracker()) }
        if let length = head.contentLength { return .length(length) }
        return .untilClose
    }

    /// The framing of a request's body: nil for a request without one (no length, or a length of zero).
    @inlinable
    public static func request(_ head: HTTPHead) -> BodyFraming? {
        if head.chunked { return .chunked(ChunkedTracker()) }
        if let length = head.contentLength, length > 0 { return .length(length) }
        return nil
    }

    /// Whether the message is whole with no more bytes (a `Content-Length` that is used up).
    @inlinable
    public var isComplete: Bool {
        switch self {
        case .length(let remaining): remaining == 0
        case .chunked(let tracker): tracker.isDone
        case .untilClose: false
        }
    }
}

/// Reads a response head from an upstream across reads, the same for the data plane and the shadow: interim (1xx)
/// heads apart from the final one, a head larger than `maxHeadBytes` or a `101` to a request that asked for no
/// upgrade (`allowsSwitch`) refused.
///
/// ```swift
/// var reader = ResponseHeadReader()
/// switch reader.read(&bytes) {
/// case .needMore: break                 // the head's end has not come yet; its bytes are kept
/// case .interim(let head): relay(head)  // 100 Continue, 103 Early Hints
/// case .final(let head): follow(BodyFraming.response(head, toHEAD: false))  // `bytes` holds what follows
/// case .broken(let reason): fail(reason)
/// }
/// ```
public struct ResponseHeadReader {
    /// A head larger than this is refused.
    public static let maxHeadBytes = 1024 * 1024

    /// What a read gave.
    public enum Result {
        /// Not whole yet: the bytes so far are kept.
        case needMore
        /// A 1xx head (not 101): a final head follows.
        case interim(HTTPHead)
        /// The final head; the bytes after it (its body) are left in the buffer read.
        case final(HTTPHead)
        /// What the upstream sent is not a response the proxy can relay; the reason says why (`sent a …`).
        case broken(String)
    }

    /// The start of a head that did not come whole in one read.
    @usableFromInline
    var partial: ByteBuffer?

    /// The request asked for a protocol upgrade: a `101 Switching Protocols` is its final head.
    public var allowsSwitch = false

    /// A reader waiting for a head's first byte.
    public init() {}

    /// Reads a head from `bytes` (after the part kept from earlier reads), leaving in `bytes` what follows it.
    @inlinable
    public mutating func read(_ bytes: inout ByteBuffer) -> Result {
        var storage: [HTTPHead.Field] = []
        return self.read(&bytes, fieldStorage: &storage)
    }

    /// The same, parsing into the field array `fieldStorage` holds (see `HTTPHeadParser.parseResponse(_:fieldStorage:)`).
    @inlinable
    public mutating func read(_ bytes: inout ByteBuffer, fieldStorage: inout [HTTPHead.Field]) -> Result {
        var accumulated = bytes
        if var previous = self.partial {
            self.partial = nil
            previous.writeBuffer(&bytes)
            accumulated = previous
        }
        bytes = ByteBuffer()
        guard let length = HTTPHeadParser.headLength(in: accumulated, searchFrom: 0) else {
            if accumulated.readableBytes > Self.maxHeadBytes {
                return .broken("sent a response head larger than 1 MiB")
            }
            self.partial = accumulated
            return .needMore
        }
        let headBytes = accumulated.readSlice(length: length)!
        bytes = accumulated
        let head: HTTPHead
        do {
            head = try HTTPHeadParser.parseResponse(headBytes, fieldStorage: &fieldStorage)
        } catch {
            return .broken("sent a malformed response (\(error.reason))")
        }
        let status = head.statusCode
        if status == 101 {
            return self.allowsSwitch
                ? .final(head) : .broken("switched protocols (101) though no upgrade was asked for")
        }
        if (100..<200).contains(status) { return .interim(head) }
        return .final(head)
    }

    /// Forgets a partly read head (to read an answer again from its start).
    public mutating func reset() { self.partial = nil }
}
