import HTTP1
import NIOCore

/// Builds the heads the proxy sends, as bytes copied from the heads it received: hop-by-hop fields (and
/// those that `Connection` names) stay on their hop; `Host`, `X-Forwarded-For/-Proto/-Host`, `Via`,
/// `X-Request-Id` and `traceparent` are set for the upstream; `Via` and the request id are added for the client. A
/// client's `Strangler-*` fields are the proxy's own and never forwarded.
enum HeadRewriter {
    private enum Field {
        case copy
        case drop
        case host, via, forwardedFor, requestID, traceparent, tracestate
    }

    /// `upgrading`: an answer that switches protocols (its `Upgrade` field goes to the client).
    /// `source`: the head's bytes, already borrowed by the caller (each `nameEquals` would borrow them again, and a
    /// borrow of a ByteBuffer's storage costs an exclusivity check).
    private static func classify(
        _ head: HTTPHead, _ source: UnsafeRawBufferPointer, _ name: Range<Int>, request: Bool, keepChunked: Bool,
        upgrading: Bool = false
    ) -> Field {
        let raw = source.assumingMemoryBound(to: UInt8.self)
        func named(_ lower: StaticString) -> Bool { HTTPHeadParser.equalsLowercase(raw, name, lower) }
        switch name.count {
        case 2: if named("te") { return .drop }
        case 6: if request, head.expectsContinue, named("expect") { return .drop }
        case 3: if named("via") { return .via }
        case 4: if request, named("host") { return .host }
        case 7:
            if named("upgrade") { return head.isUpgrade || upgrading ? .copy : .drop }
            if named("trailer") { return .drop }
        case 10:
            if named("connection") || named("keep-alive") { return .drop }
            if request, named("tracestate") { return .tracestate }
        case 11: if request, named("traceparent") { return .traceparent }
        case 12: if named("x-request-id") { return request ? .requestID : .copy }
        case 15: if request, named("x-forwarded-for") { return .forwardedFor }
        case 16:
            if named("proxy-connection") { return .drop }
            if request, named("x-forwarded-host") { return .drop }
        case 17:
            if named("transfer-encoding") { return keepChunked ? .copy : .drop }
            if request, named("x-forwarded-proto") { return .drop }
        case 18: if named("proxy-authenticate") { return .drop }
        case 19: if named("proxy-authorization") { return .drop }
        default: break
        }
        if head.connectionNamesFields {
            let lowered = head.string(name).lowercased()
            if head.connectionNamedFields.contains(lowered) { return .drop }
        }
        if request, head.hasInternalFields, HTTPHeadParser.isInternalName(raw, name) { return .drop }
        return .copy
    }

    /// Bytes written at a raw pointer whose room was reserved up front: a head is built in one ByteBuffer
    /// write instead of one per piece (each ByteBuffer write checks uniqueness and exclusivity).
    private struct RawWriter {
        let base: UnsafeMutableRawPointer
        var count = 0

        @inline(__always)
        mutating func write(_ bytes: UnsafeRawBufferPointer) {
            guard let source = bytes.baseAddress, bytes.count > 0 else { return }
            (self.base + self.count).copyMemory(from: source, byteCount: bytes.count)
            self.count &+= bytes.count
        }

        @inline(__always)
        mutating func write(_ text: StaticString) {
            (self.base + self.count).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
            self.count &+= text.utf8CodeUnitCount
        }

        @inline(__always)
        mutating func write(_ text: String) {
            var text = text
            text.withUTF8 { self.write(UnsafeRawBufferPointer($0)) }
        }

        @inline(__always)
        mutating func write(_ source: UnsafeRawBufferPointer, _ range: Range<Int>) {
            self.write(UnsafeRawBufferPointer(rebasing: source[range]))
        }

        @inline(__always)
        mutating func writeField(_ source: UnsafeRawBufferPointer, _ field: (name: Range<Int>, value: Range<Int>)) {
            self.write(source, field.name)
            self.write(": ")
            self.write(source, field.value)
            self.write("\r\n")
        }

        /// Values of one field name, comma-joined, then `own` (the proxy's own value) last.
        @inline(__always)
        mutating func writeJoined(_ source: UnsafeRawBufferPointer, _ values: [Range<Int>], then own: StaticString) {
            for value in values {
                self.write(source, value)
                self.write(", ")
            }
            self.write(own)
        }
    }

    /// A path the upstream gets instead of the one the client sent: `bytes` replace the target's first `replacing`
    /// bytes (its path; the query string after them is kept as sent).
    struct PathRewrite {
        var bytes: [UInt8]
        var replacing: Int
    }

    /// The request head for the upstream, and the request id it carries. A shadow copy passes the answering
    /// request's id (`requestID`), so that both sides log the same id, and may ask for a dry run. `path` (the
    /// canonical path, when the client sent another spelling of it) replaces the client's. `secure`: the client came
    /// over TLS (`X-Forwarded-Proto: https`).
    static func upstreamRequest(
        _ head: HTTPHead, upstreamAuthority: String, clientAddress: String, ids: inout IDGenerator,
        allocator: ByteBufferAllocator,
        requestID forcedID: String? = nil, dryRun: Bool = false, path: PathRewrite? = nil, secure: Bool = false,
        trace: ExchangeTrace.TraceFields? = nil
    ) -> (ByteBuffer, String) {
        var buffer = allocator.buffer(capacity: 2 * head.bytes.readableBytes + 1024)
        let id = Self.upstreamRequest(
            head, upstreamAuthority: upstreamAuthority, clientAddress: clientAddress, ids: &ids, into: &buffer,
            requestID: forcedID, dryRun: dryRun, path: path, secure: secure, trace: trace)
        return (buffer, String(buffer: id))
    }

    /// The same, written into `buffer` (cleared first: a buffer no one else holds is reused without an allocation);
    /// the request id is returned as a slice of it (a generated one is hexed straight into the head: no string).
    static func upstreamRequest(
        _ head: HTTPHead, upstreamAuthority: String, clientAddress: String, ids: inout IDGenerator,
        into buffer: inout ByteBuffer,
        requestID forcedID: String? = nil, dryRun: Bool = false, path: PathRewrite? = nil, secure: Bool = false,
        client: String? = nil, trace: ExchangeTrace.TraceFields? = nil
    ) -> ByteBuffer {
        // Client-sent values are ranges of the head until they are written (no strings on the common path). One
        // pass over the fields: those copied are written as they come, the proxy's own fields after them.
        var host: Range<Int>? = head.absoluteAuthority
        var vias: [Range<Int>] = []
        var forwardedFors: [Range<Int>] = []
        var requestID: String?
        var traceparent: String?
        var tracestates: [Range<Int>] = []
        // Every copied byte comes from the head, once at most, plus the proxy's own fields (a client's request id
        // is 200 bytes at most).
        let room =
            2 * head.bytes.readableBytes + upstreamAuthority.utf8.count + clientAddress.utf8.count
            + max(200, forcedID?.utf8.count ?? 0)
            + (path?.bytes.count ?? 0) + (client?.utf8.count ?? 0) + (trace?.tracestate?.utf8.count ?? 0) + 420
        buffer.clear(minimumCapacity: room)
        var idRange = 0..<0
        _ = head.bytes.withUnsafeReadableBytes { source in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { destination in
                var out = RawWriter(base: destination.baseAddress!)
                out.write(source, head.startLine.first)
                out.write(" ")
                let target = head.startLine.second
                if let path {
                    path.bytes.withUnsafeBytes { out.write($0) }
                    out.write(source, (target.lowerBound + path.replacing)..<target.upperBound)
                } else {
                    // An absolute-form target without a path gets `/`.
                    if target.isEmpty || source[target.lowerBound] == 0x3F { out.write("/") }
                    out.write(source, target)
                }
                out.write(" HTTP/1.1\r\n")
                for field in head.fields {
                    switch self.classify(head, source, field.name, request: true, keepChunked: true) {
                    case .copy: out.writeField(source, field)
                    case .drop: break
                    case .host: if head.absoluteAuthority == nil { host = field.value }
                    case .via: vias.append(field.value)
                    case .forwardedFor: forwardedFors.append(field.value)
                    case .requestID:
                        if requestID == nil {
                            let value = head.string(field.value)
                            if HeaderRules.isValidRequestID(value) { requestID = value }
                        }
                    case .traceparent:
                        if traceparent == nil { traceparent = HeaderRules.traceparent(head.string(field.value)) }
                    case .tracestate: tracestates.append(field.value)
                    }
                }
                out.write("host: ")
                out.write(upstreamAuthority)
                out.write("\r\nx-forwarded-for: ")
                for value in forwardedFors {
                    out.write(source, value)
                    out.write(", ")
                }
                out.write(clientAddress)
                out.write(secure ? "\r\nx-forwarded-proto: https\r\n" : "\r\nx-forwarded-proto: http\r\n")
                if let host {
                    out.write("x-forwarded-host: ")
                    out.write(source, host)
                    out.write("\r\n")
                }
                out.write("via: ")
                out.writeJoined(source, vias, then: "1.1 strangler")
                out.write("\r\nx-request-id: ")
                let idStart = out.count
                if let id = forcedID ?? requestID {
                    out.write(id)
                } else {
                    ids.writeHex(words: 2, into: UnsafeMutableRawBufferPointer(start: out.base + out.count, count: 32))
                    out.count += 32
                }
                idRange = idStart..<out.count
                out.write("\r\ntraceparent: ")
                if let trace {
                    // The proxy's span for this request (tracing on): the client's context is its parent.
                    out.write(trace.traceparent)
                    if let tracestate = trace.tracestate {
                        out.write("\r\ntracestate: ")
                        out.write(tracestate)
                    }
                } else if let traceparent {
                    out.write(traceparent)
                    // The client's tracestate goes with its traceparent, checked and joined (never with a trace
                    // this proxy started).
                    if !tracestates.isEmpty,
                        let tracestate = HeaderRules.tracestate(tracestates.map { head.string($0) })
                    {
                        out.write("\r\ntracestate: ")
                        out.write(tracestate)
                    }
                } else {
                    out.count += ids.writeTraceparent(
                        to: UnsafeMutableRawBufferPointer(start: out.base + out.count, count: 55))
                }
                if dryRun { out.write("\r\nstrangler-dry-run: 1") }
                // The caller's identity, as the gateway established it (a client's own `Strangler-Client` was dropped
                // with every `Strangler-*` field above).
                if let client {
                    out.write("\r\nstrangler-client: ")
                    out.write(client)
                }
                // A protocol upgrade keeps its hop-by-hop pair (RFC 9110 §7.8): `Upgrade` is copied above.
                if head.isUpgrade { out.write("\r\nconnection: upgrade") }
                out.write("\r\n\r\n")
                return out.count
            }
        }
        return buffer.getSlice(at: buffer.readerIndex + idRange.lowerBound, length: idRange.count)!
    }

    /// The `traceparent` (and `tracestate`) of a head `upstreamRequest` wrote, to give a second head for the same
    /// request the same trace.
    static func traceFields(in head: ByteBuffer) -> ExchangeTrace.TraceFields? {
        guard let parsed = try? HTTPHeadParser.parseRequest(head), let traceparent = parsed.value(of: "traceparent"),
            traceparent.utf8.count == 55
        else { return nil }
        return ExchangeTrace.TraceFields(traceparent: traceparent, tracestate: parsed.value(of: "tracestate"))
    }

    /// Writes `traceparent` (55 characters) over the 55-character `traceparent` value of a head `upstreamRequest`
    /// wrote (a shadow's copy gets its own span's); false, and nothing written, when the head has no such value.
    @discardableResult
    static func replaceTraceparent(in head: inout ByteBuffer, with traceparent: String) -> Bool {
        let marker: StaticString = "\r\ntraceparent: "
        guard traceparent.utf8.count == 55 else { return false }
        let found: Int? = head.withUnsafeReadableBytes { source in
            let markerBytes = UnsafeRawBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
            var start = 0
            while start + markerBytes.count + 57 <= source.count {
                if source[start] == 0x0D, markerBytes.indices.allSatisfy({ source[start + $0] == markerBytes[$0] }) {
                    let value = start + markerBytes.count
                    return source[value + 55] == 0x0D ? value : nil
                }
                start += 1
            }
            return nil
        }
        guard let found else { return false }
        head.setString(traceparent, at: head.readerIndex + found)
        return true
    }

    /// The request head for another upstream, made from one `upstreamRequest` wrote: the same bytes with another
    /// `Host` (and, for a dry run, `Strangler-Dry-Run: 1`). A shadow copy is the answering request's head,
    /// re-addressed: same request id, same trace context. Nil if `head` has no `host` line of the proxy's (it always
    /// has). `reserving` bytes more are allocated, for the caller to write after the head.
    static func retarget(
        _ head: ByteBuffer, to authority: String, dryRun: Bool, reserving extra: Int = 0, allocator: ByteBufferAllocator
    ) -> ByteBuffer? {
        let marker: StaticString = "\r\nhost: "
        return head.withUnsafeReadableBytes { source -> ByteBuffer? in
            let count = source.count
            let markerBytes = UnsafeRawBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
            var start = 0
            var found = -1
            while start + markerBytes.count <= count {
                if source[start] == 0x0D, markerBytes.indices.allSatisfy({ source[start + $0] == markerBytes[$0] }) {
                    found = start
                    break
                }
                start += 1
            }
            guard found >= 0, count >= 4, source[count - 4] == 0x0D, source[count - 3] == 0x0A,
                source[count - 2] == 0x0D, source[count - 1] == 0x0A
            else { return nil }
            let valueStart = found + markerBytes.count
            var valueEnd = valueStart
            while valueEnd < count, source[valueEnd] != 0x0D { valueEnd += 1 }
            guard valueEnd <= count - 2 else { return nil }
            let dryRunLine: StaticString = "strangler-dry-run: 1\r\n"
            var buffer = allocator.buffer(
                capacity: count + authority.utf8.count + (dryRun ? dryRunLine.utf8CodeUnitCount : 0) + extra)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[..<valueStart]))
            buffer.writeString(authority)
            // Up to the empty line, which closes the head.
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[valueEnd..<(count - 2)]))
            if dryRun { buffer.writeStaticString(dryRunLine) }
            buffer.writeStaticString("\r\n")
            return buffer
        }
    }

    /// The response head for the client, followed by `body` when given (a small body read with its head goes
    /// out in the same write).
    static func clientResponse(
        _ head: HTTPHead, requestID: String, close: Bool, keepChunked: Bool, keepAliveFor10: Bool = false,
        body: ByteBuffer? = nil, upgrading: Bool = false,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 2 * head.bytes.readableBytes + 256 + (body?.readableBytes ?? 0))
        Self.clientResponse(
            head, requestID: ByteBuffer(string: requestID), close: close, keepChunked: keepChunked,
            keepAliveFor10: keepAliveFor10,
            body: body, upgrading: upgrading, into: &buffer)
        return buffer
    }

    /// The same, written into `buffer` (cleared first: a buffer no one else holds is reused without an allocation).
    static func clientResponse(
        _ head: HTTPHead, requestID: ByteBuffer, close: Bool, keepChunked: Bool, keepAliveFor10: Bool = false,
        body: ByteBuffer? = nil, upgrading: Bool = false, extraFields: String? = nil, into buffer: inout ByteBuffer
    ) {
        var vias: [Range<Int>] = []
        var hasRequestID = false
        let bodyCount = body?.readableBytes ?? 0
        let room = 2 * head.bytes.readableBytes + requestID.readableBytes + 200 + (extraFields?.utf8.count ?? 0)
        buffer.clear(minimumCapacity: room + bodyCount)
        _ = head.bytes.withUnsafeReadableBytes { source in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { destination in
                var out = RawWriter(base: destination.baseAddress!)
                out.write("HTTP/1.1 ")
                out.write(source, head.startLine.second.lowerBound..<head.startLine.third.upperBound)
                out.write("\r\n")
                for field in head.fields {
                    switch self.classify(
                        head, source, field.name, request: false, keepChunked: keepChunked, upgrading: upgrading)
                    {
                    case .copy:
                        if field.name.count == 12, !hasRequestID {
                            hasRequestID = HTTPHeadParser.equalsLowercase(
                                source.assumingMemoryBound(to: UInt8.self), field.name, "x-request-id")
                        }
                        out.writeField(source, field)
                    case .via: vias.append(field.value)
                    default: break
                    }
                }
                out.write("via: ")
                out.writeJoined(source, vias, then: "1.1 strangler")
                out.write("\r\n")
                if !hasRequestID {
                    out.write("x-request-id: ")
                    requestID.withUnsafeReadableBytes { out.write($0) }
                    out.write("\r\n")
                }
                if let extraFields { out.write(extraFields) }
                if upgrading {
                    out.write("connection: upgrade\r\n")
                } else if close {
                    out.write("connection: close\r\n")
                } else if keepAliveFor10 {
                    out.write("connection: keep-alive\r\n")
                }
                out.write("\r\n")
                return out.count
            }
        }
        if var body { buffer.writeBuffer(&body) }
    }
}
