import NIOCore

/// Builds the heads the proxy sends, as bytes copied from the heads it received: hop-by-hop fields (and
/// those that `Connection` names) stay on their hop; `Host`, `X-Forwarded-For/-Proto/-Host`, `Via`,
/// `X-Request-Id` and `traceparent` are set for the upstream; `Via` and the request id are added for the client.
enum HeadRewriter {
    private enum Field {
        case copy
        case drop
        case host, via, forwardedFor, requestID, traceparent
    }

    private static func classify(_ head: HTTPHead, _ name: Range<Int>, request: Bool, keepChunked: Bool) -> Field {
        switch name.count {
        case 2: if head.nameEquals(name, "te") { return .drop }
        case 3: if head.nameEquals(name, "via") { return .via }
        case 4: if request, head.nameEquals(name, "host") { return .host }
        case 7:
            if head.nameEquals(name, "upgrade") || head.nameEquals(name, "trailer") { return .drop }
        case 10:
            if head.nameEquals(name, "connection") || head.nameEquals(name, "keep-alive") { return .drop }
        case 11: if request, head.nameEquals(name, "traceparent") { return .traceparent }
        case 12: if head.nameEquals(name, "x-request-id") { return request ? .requestID : .copy }
        case 15: if request, head.nameEquals(name, "x-forwarded-for") { return .forwardedFor }
        case 16:
            if head.nameEquals(name, "proxy-connection") { return .drop }
            if request, head.nameEquals(name, "x-forwarded-host") { return .drop }
        case 17:
            if head.nameEquals(name, "transfer-encoding") { return keepChunked ? .copy : .drop }
            if request, head.nameEquals(name, "x-forwarded-proto") { return .drop }
        case 18: if head.nameEquals(name, "proxy-authenticate") { return .drop }
        case 19: if head.nameEquals(name, "proxy-authorization") { return .drop }
        default: break
        }
        if head.connectionNamesFields {
            let lowered = head.string(name).lowercased()
            if head.connectionTokens.contains(lowered) { return .drop }
        }
        return .copy
    }

    private static func copyField(_ head: HTTPHead, _ field: (name: Range<Int>, value: Range<Int>), into buffer: inout ByteBuffer) {
        buffer.writeBytes(head.raw[field.name])
        buffer.writeStaticString(": ")
        buffer.writeBytes(head.raw[field.value])
        buffer.writeStaticString("\r\n")
    }

    /// The request head for the upstream, and the request id it carries. A shadow copy passes the answering
    /// request's id (`requestID`), so that both sides log the same id, and may ask for a dry run.
    static func upstreamRequest(
        _ head: HTTPHead, upstreamAuthority: String, clientAddress: String, ids: inout IDGenerator, allocator: ByteBufferAllocator,
        requestID forcedID: String? = nil, dryRun: Bool = false
    ) -> (ByteBuffer, String) {
        var buffer = allocator.buffer(capacity: head.bytes.readableBytes + 512)
        buffer.writeBytes(head.raw[head.startLine.first])
        buffer.writeStaticString(" ")
        let target = head.startLine.second
        if target.isEmpty || head.raw[target.lowerBound] == 0x3F { buffer.writeStaticString("/") }  // absolute-form without a path
        buffer.writeBytes(head.raw[target])
        buffer.writeStaticString(" HTTP/1.1\r\n")
        var host: String?
        var via: String?
        var forwardedFor: String?
        var requestID: String?
        var traceparent: String?
        for field in head.fields {
            switch self.classify(head, field.name, request: true, keepChunked: true) {
            case .copy: self.copyField(head, field, into: &buffer)
            case .drop: break
            case .host: host = head.string(field.value)
            case .via: via = via.map { $0 + ", " + head.string(field.value) } ?? head.string(field.value)
            case .forwardedFor: forwardedFor = forwardedFor.map { $0 + ", " + head.string(field.value) } ?? head.string(field.value)
            case .requestID:
                let value = head.string(field.value)
                if requestID == nil, HeaderRules.isValidRequestID(value) { requestID = value }
            case .traceparent:
                let value = head.string(field.value)
                if traceparent == nil, HeaderRules.isValidTraceparent(value) { traceparent = value }
            }
        }
        if let authority = head.absoluteAuthority { host = head.string(authority) }
        let id = forcedID ?? requestID ?? ids.hex(words: 2)
        buffer.writeStaticString("host: ")
        buffer.writeString(upstreamAuthority)
        buffer.writeStaticString("\r\nx-forwarded-for: ")
        if let forwardedFor {
            buffer.writeString(forwardedFor)
            buffer.writeStaticString(", ")
        }
        buffer.writeString(clientAddress)
        buffer.writeStaticString("\r\nx-forwarded-proto: http\r\n")
        if let host {
            buffer.writeStaticString("x-forwarded-host: ")
            buffer.writeString(host)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("via: ")
        if let via {
            buffer.writeString(via)
            buffer.writeStaticString(", ")
        }
        buffer.writeStaticString("1.1 strangler\r\nx-request-id: ")
        buffer.writeString(id)
        buffer.writeStaticString("\r\ntraceparent: ")
        if let traceparent { buffer.writeString(traceparent) } else { ids.writeTraceparent(into: &buffer) }
        if dryRun { buffer.writeStaticString("\r\nstrangler-dry-run: 1") }
        buffer.writeStaticString("\r\n\r\n")
        return (buffer, id)
    }

    /// The response head for the client.
    static func clientResponse(
        _ head: HTTPHead, requestID: String, close: Bool, keepChunked: Bool, keepAliveFor10: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: head.bytes.readableBytes + 256)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeBytes(head.raw[head.startLine.second.lowerBound..<head.startLine.third.upperBound])
        buffer.writeStaticString("\r\n")
        var via: String?
        var hasRequestID = false
        for field in head.fields {
            switch self.classify(head, field.name, request: false, keepChunked: keepChunked) {
            case .copy:
                if field.name.count == 12 { hasRequestID = hasRequestID || head.nameEquals(field.name, "x-request-id") }
                self.copyField(head, field, into: &buffer)
            case .via: via = via.map { $0 + ", " + head.string(field.value) } ?? head.string(field.value)
            default: break
            }
        }
        buffer.writeStaticString("via: ")
        if let via {
            buffer.writeString(via)
            buffer.writeStaticString(", ")
        }
        buffer.writeStaticString("1.1 strangler\r\n")
        if !hasRequestID {
            buffer.writeStaticString("x-request-id: ")
            buffer.writeString(requestID)
            buffer.writeStaticString("\r\n")
        }
        if close {
            buffer.writeStaticString("connection: close\r\n")
        } else if keepAliveFor10 {
            buffer.writeStaticString("connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
