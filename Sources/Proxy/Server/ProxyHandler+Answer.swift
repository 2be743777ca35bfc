import HTTP1
import NIOCore
import NIOPosix
import NIOSSL
import RouteTable

// The upstream side: relaying the answer (its head rewritten, its body as it comes, following its framing), and how
// the exchange ends when the upstream fails.
extension ProxyHandler {
    var clientIsWritable: Bool { self.context?.channel.isWritable ?? false }

    /// Bodies up to this size that came in the same read as their head go out in one write with the head.
    static let inlineBodyLimit = 16 * 1024

    func upstreamWritabilityChanged() {
        self.resumeReadsIfHeld()
    }

    func upstreamReceived(_ bytes: ByteBuffer) {
        guard let exchange = self.exchange, let context = self.context else { return }
        if self.tunnel {
            context.write(self.wrapOutboundOut(bytes), promise: nil)
            self.clientUnflushed = true
            return
        }
        exchange.receivedAny = true
        var bytes = bytes
        while bytes.readableBytes > 0, self.exchange === exchange {
            switch exchange.response {
            case .none:
                switch exchange.headReader.read(&bytes, fieldStorage: &self.loop.responseFields) {
                case .needMore:
                    return
                case .broken(let reason):
                    self.upstreamBroken(exchange, reason: reason)
                    return
                case .interim(let head):
                    // Interim answers (100 Continue, 103) are relayed; HTTP/1.0 clients cannot take them.
                    if exchange.clientVersionMinor >= 1 {
                        context.write(self.wrapOutboundOut(head.bytes), promise: nil)
                        self.clientUnflushed = true
                    }
                    // The client may send its body now: its rate counts from here.
                    if let end = self.machine.interimAnswer(now: self.now) { self.armTimer(for: end) }
                case .final(let head):
                    self.startResponse(head, exchange, rest: &bytes, context: context)
                    self.loop.recycle(responseFields: head.fields)
                }
            case .length(let remaining):
                let take = min(remaining, bytes.readableBytes)
                let slice = bytes.readSlice(length: take)!
                exchange.shadow?.primaryBodyBytes(slice)
                exchange.capture?.responseBodyBytes(slice)
                if remaining - take == 0 {
                    // The answer's last bytes: written and flushed in one trip through the pipeline.
                    context.writeAndFlush(self.wrapOutboundOut(slice), promise: nil)
                    self.clientUnflushed = false
                    exchange.response = .length(0)
                    if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
                    self.responseComplete(exchange, context: context)
                    return
                }
                context.write(self.wrapOutboundOut(slice), promise: nil)
                self.clientUnflushed = true
                exchange.response = .length(remaining - take)
            case .chunked(var tracker):
                let consumed: Int
                var dataSlices: [ByteBuffer] = []
                do {
                    let collect = exchange.unchunkForClient || exchange.shadow != nil || exchange.capture != nil
                    let view = bytes
                    consumed = try bytes.withUnsafeReadableBytes { raw throws(HeadError) in
                        try tracker.consume(raw) { range in
                            guard collect else { return }
                            dataSlices.append(
                                view.getSlice(at: view.readerIndex + range.lowerBound, length: range.count)!)
                        }
                    }
                } catch {
                    self.upstreamBroken(exchange, reason: "sent a malformed chunked body (\(error.reason))")
                    return
                }
                let slice = bytes.readSlice(length: consumed)!
                if let tap = exchange.shadow {
                    for data in dataSlices { tap.primaryBodyBytes(data) }
                }
                if let capture = exchange.capture {
                    for data in dataSlices { capture.responseBodyBytes(data) }
                }
                if exchange.unchunkForClient {
                    for data in dataSlices { context.write(self.wrapOutboundOut(data), promise: nil) }
                } else {
                    context.write(self.wrapOutboundOut(slice), promise: nil)
                }
                self.clientUnflushed = true
                exchange.response = .chunked(tracker)
                if tracker.isDone {
                    if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
                    self.responseComplete(exchange, context: context)
                    return
                }
            case .untilClose:
                exchange.shadow?.primaryBodyBytes(bytes)
                exchange.capture?.responseBodyBytes(bytes)
                context.write(self.wrapOutboundOut(bytes), promise: nil)
                self.clientUnflushed = true
                return
            }
        }
    }

    /// A final response head from the upstream: relayed rewritten, and its framing decides how the body is followed.
    private func startResponse(
        _ head: HTTPHead, _ exchange: Exchange, rest bytes: inout ByteBuffer, context: ChannelHandlerContext
    ) {
        let status = head.statusCode
        exchange.responseStatus = status
        if status == 101, exchange.isUpgrade {
            self.beginTunnel(head, exchange, rest: &bytes, context: context)
            return
        }
        exchange.shadow?.primaryResponse(status: Int(status), head: head, isHEAD: exchange.isHEAD)
        exchange.capture?.response(status: Int(status), head: head)
        exchange.upstreamKeepAlive = head.isKeepAlive
        var framing = BodyFraming.response(head, toHEAD: exchange.isHEAD)
        var connectionMayStay = true
        switch framing {
        case .chunked: if exchange.unchunkForClient { connectionMayStay = false }
        case .untilClose:
            exchange.upstreamKeepAlive = false
            connectionMayStay = false
        case .length: break
        }
        // A small body already read whole goes out with the head, in one write.
        var inlineBody: ByteBuffer?
        if case .length(let length) = framing, length > 0, length <= Self.inlineBodyLimit, bytes.readableBytes >= length
        {
            let body = bytes.readSlice(length: length)!
            exchange.shadow?.primaryBodyBytes(body)
            exchange.capture?.responseBodyBytes(body)
            inlineBody = body
            framing = .length(0)
        }
        exchange.response = framing
        let close = self.machine.answerHead(connectionMayStay: connectionMayStay)
        var rewritten = self.loop.responseHead ?? self.allocator.buffer(capacity: 1024)
        self.loop.responseHead = nil  // taken out: uniquely held once the last answer's write let go of it
        HeadRewriter.clientResponse(
            head, requestID: exchange.requestIDBytes, close: close,
            keepChunked: head.chunked && !exchange.unchunkForClient,
            keepAliveFor10: exchange.clientVersionMinor == 0 && !close, body: inlineBody,
            extraFields: exchange.responseFields, into: &rewritten)
        self.loop.recycle(responseHead: rewritten)
        if case .length(0) = framing {
            // The whole answer: written and flushed in one trip through the pipeline.
            context.writeAndFlush(self.wrapOutboundOut(rewritten), promise: nil)
            self.clientUnflushed = false
            // Bytes after a complete answer mean the upstream framed it wrong: its connection is not reused.
            if bytes.readableBytes > 0 { exchange.upstreamKeepAlive = false }
            self.responseComplete(exchange, context: context)
        } else {
            context.write(self.wrapOutboundOut(rewritten), promise: nil)
            self.clientUnflushed = true
        }
    }

    private func responseComplete(_ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.answered = true
        let (ending, requestWasWhole) = self.machine.answerComplete(now: self.now)
        self.finish(exchange, reusable: requestWasWhole && exchange.upstreamKeepAlive)
        if case .serveNext = ending, self.clientUnflushed {
            self.clientUnflushed = false
            context.flush()
        }
        self.perform(ending)
    }

    func upstreamReadComplete() {
        if self.clientUnflushed {
            self.clientUnflushed = false
            self.context?.flush()
        }
    }

    func upstreamFailed(_ error: any Error) {
        guard let exchange = self.exchange, let context = self.context else { return }
        if self.tunnel {
            // The upstream side of the tunnel closed: so does the client's, once what it sent is out.
            self.finish(exchange, reusable: false)
            self.clientUnflushed = false
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        if case .untilClose? = exchange.response, error is ChannelError {
            // The end of a close-delimited body (a reset, by contrast, truncates it: handled below).
            self.responseComplete(exchange, context: context)
            return
        }
        // A reused keep-alive connection may have been closed by the upstream just as the request went out;
        // a request without a body is safe to send again once, on a new connection.
        if exchange.responseStatus == nil, let connection = exchange.connection, connection.isReused, !exchange.retried,
            !exchange.hasBody, self.machine.requestIsWhole, !exchange.receivedAny,
            HTTPMethodRules.isSafe(exchange.method)
        {
            exchange.retried = true
            exchange.receivedAny = false
            exchange.connection = nil
            exchange.headReader.reset()
            exchange.response = nil
            connection.close()
            self.connect(exchange)
            return
        }
        let reason = Self.describe(error, connecting: false)
        if self.retryElsewhere(exchange, reason: reason, bodyIsKept: false) { return }
        self.failExchange(exchange, reason: reason)
    }

    func upstreamBroken(_ exchange: Exchange, reason: String) {
        self.failExchange(exchange, reason: reason)
    }

    /// The upstream failed: before any of the answer went out, the client gets a 502; after, its connection closes
    /// (the answer cannot be completed truthfully).
    func failExchange(_ exchange: Exchange, reason: String) {
        let ending = self.machine.exchangeFailed(now: self.now)
        if case .closeNow = ending {
            self.finish(exchange, reusable: false)
            self.perform(ending)
            return
        }
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "connect")
        exchange.failure = reason
        self.finish(exchange, reusable: false)
        self.respond(
            self.decorated(
                .badGateway(reason, upstream: exchange.upstream.url, route: exchange.route?.id), for: exchange),
            requestID: exchange.requestID, ending: ending, isHEAD: exchange.isHEAD)
    }

    static func describe(_ error: any Error, connecting: Bool) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case 111: return "refused the connection"
            case 104: return "reset the connection"
            default: return "failed: \(error.description)"
            }
        }
        if case ChannelError.connectTimeout = error { return "did not accept the connection in time" }
        if let error = error as? NIOSSLError { return "failed the TLS handshake (\(error))" }
        if let error = error as? NIOSSLExtraError { return "failed the TLS handshake (\(error))" }
        if error is ChannelError, !connecting { return "closed the connection before answering" }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return Self.describe(first.error, connecting: true)
        }
        return connecting ? "could not be reached (\(error))" : "failed (\(error))"
    }
}
