import NIOCore
import NIOHTTP1
import NIOPosix
import RouteTable

/// One exchange: a client request being forwarded and its answer being relayed.
final class Exchange {
    let route: Route?
    let upstream: Upstream
    let address: SocketAddress
    let head: HTTPRequestHead
    let requestID: String
    let clientKeepAlive: Bool
    let hasBody: Bool
    let started: NIODeadline
    let snapshotVersion: Int
    var connection: UpstreamConnection?
    var buffered: [HTTPClientRequestPart] = []
    var requestEnded = false
    var bodyBytes = 0
    var responseStarted = false
    var responseStatus: HTTPResponseStatus?
    var upstreamKeepAlive = true
    var timeout: Scheduled<Void>?
    var retried = false

    init(route: Route?, upstream: Upstream, address: SocketAddress, head: HTTPRequestHead, requestID: String, clientKeepAlive: Bool, hasBody: Bool, snapshotVersion: Int) {
        self.route = route
        self.upstream = upstream
        self.address = address
        self.head = head
        self.requestID = requestID
        self.clientKeepAlive = clientKeepAlive
        self.hasBody = hasBody
        self.started = .now()
        self.snapshotVersion = snapshotVersion
    }
}

/// The proxy's handler for one client connection: checks each request, picks its route on the live table,
/// forwards it over a pooled keep-alive upstream connection of the same event loop, and streams the answer
/// back, with backpressure both ways. Everything runs on the connection's event loop.
final class ProxyHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let shared: ProxyShared
    private let loop: LoopState
    private var context: ChannelHandlerContext?
    private var clientAddress = "unknown"
    private var exchange: Exchange?
    /// After a protocol error or a refused request the connection only waits to close.
    private var closing = false
    /// The answer came before the request's body ended: the rest of that body is dropped.
    private var discardingBody = false
    /// Requests pipelined behind the one in flight wait here, in order, with reads held until they are served.
    private var queue = CircularBuffer<HTTPServerRequestPart>()
    /// Re-entrancy guard while queued parts are handled.
    private var draining = false
    /// A read the pipeline asked for while reads were held.
    private var pendingRead = false
    /// Graceful shutdown has begun: finish the exchange in flight, then close.
    private var quiescing = false

    init(shared: ProxyShared, loop: LoopState) {
        self.shared = shared
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress?.ipAddress { self.clientAddress = address }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        let part = self.unwrapInboundIn(data)
        if case .head = part, self.exchange != nil {
            // Pipelined: served once the answer in flight is out.
            self.queue.append(part)
            return
        }
        if !self.queue.isEmpty {
            self.queue.append(part)
            return
        }
        self.handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            self.discardingBody = false
            self.start(head, context: context)
        case .body(let buffer):
            if self.discardingBody { return }
            guard let exchange = self.exchange else { return }
            exchange.bodyBytes += buffer.readableBytes
            if exchange.bodyBytes > self.shared.configuration.maxBodyBytes {
                self.finish(exchange, reusable: false)
                self.reject(
                    ProxyErrorResponse(
                        status: .payloadTooLarge, code: "payload_too_large",
                        message: "the body is larger than \(self.shared.configuration.maxBodyBytes) bytes", route: exchange.route?.id),
                    requestID: exchange.requestID)
                return
            }
            if let connection = exchange.connection {
                connection.write(.body(.byteBuffer(buffer)))
            } else {
                exchange.buffered.append(.body(.byteBuffer(buffer)))
            }
        case .end(let trailers):
            if self.discardingBody {
                self.discardingBody = false
                if self.quiescing, self.exchange == nil {
                    self.closing = true
                    context.close(promise: nil)
                }
                return
            }
            guard let exchange = self.exchange else { return }
            exchange.requestEnded = true
            if let connection = exchange.connection {
                connection.write(.end(trailers))
                connection.flush()
            } else {
                exchange.buffered.append(.end(trailers))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.exchange?.connection?.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange = self.exchange {
            self.finish(exchange, reusable: false)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.quiescing = true
            if self.exchange == nil, self.queue.isEmpty, !self.discardingBody {
                self.closing = true
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.exchange?.connection?.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            // A request we cannot parse ends the connection: nothing after it on this connection is trusted.
            self.shared.metrics.rejected()
            let answer: ProxyErrorResponse
            if case .headerOverflow = parserError {
                answer = ProxyErrorResponse(
                    status: .requestHeaderFieldsTooLarge, code: "header_too_large",
                    message: "the request's headers are larger than \(self.shared.configuration.maxHeaderBytes) bytes", route: nil)
            } else {
                answer = .badRequest("malformed request: \(parserError)")
            }
            if let exchange = self.exchange {
                if exchange.responseStarted {
                    self.finish(exchange, reusable: false)
                    self.closing = true
                    context.close(promise: nil)
                    return
                }
                self.finish(exchange, reusable: false)
            }
            self.reject(answer, requestID: nil)
        } else {
            if let exchange = self.exchange { self.finish(exchange, reusable: false) }
            self.closing = true
            context.close(promise: nil)
        }
    }

    /// Reads are held while an upstream connection is being opened, while pipelined requests wait, and
    /// once the connection is closing; otherwise the client is read as fast as it sends (no read-interest
    /// toggling per request).
    private var holdsReads: Bool {
        self.closing || !self.queue.isEmpty || (self.exchange.map { $0.connection == nil } ?? false)
    }

    func read(context: ChannelHandlerContext) {
        if self.holdsReads {
            self.pendingRead = true
        } else {
            context.read()
        }
    }

    private func resumeReadsIfHeld() {
        if self.pendingRead, !self.holdsReads, let context = self.context {
            self.pendingRead = false
            context.read()
        }
    }

    /// After an answer is complete: serve the pipelined requests waiting, then read on.
    private func answered() {
        guard let context = self.context, !self.closing else { return }
        if self.quiescing, self.exchange == nil, !self.discardingBody {
            self.closing = true
            context.close(promise: nil)
            return
        }
        if !self.draining {
            self.draining = true
            while !self.closing, let next = self.queue.first {
                if case .head = next, self.exchange != nil { break }
                self.queue.removeFirst()
                self.handle(next, context: context)
            }
            self.draining = false
        }
        self.resumeReadsIfHeld()
    }

    // MARK: Starting an exchange

    private func start(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let configuration = self.shared.configuration
        if let problem = RequestHygiene.check(head, maxHeaderBytes: configuration.maxHeaderBytes) {
            self.shared.metrics.rejected()
            self.reject(problem, requestID: nil)
            return
        }
        let headers = head.headers
        let contentLength = headers.first(name: "content-length").flatMap { Int($0) }
        let chunked = headers.contains(name: "transfer-encoding")
        if let contentLength, contentLength > configuration.maxBodyBytes {
            self.shared.metrics.rejected()
            self.reject(
                ProxyErrorResponse(
                    status: .payloadTooLarge, code: "payload_too_large", message: "the body is larger than \(configuration.maxBodyBytes) bytes", route: nil),
                requestID: nil)
            return
        }

        let snapshot = self.shared.store.snapshot
        let uri = head.uri
        let path: Substring = uri.firstIndex(of: "?").map { uri[..<$0] } ?? Substring(uri)
        let route = snapshot.table.match(method: head.method.rawValue, path: path)
        let upstream = snapshot.table.upstream(for: route)
        guard let address = snapshot.addresses[upstream] else {
            self.reject(.badGateway("has no address", upstream: upstream.url, route: route?.id), requestID: nil)
            return
        }

        let (upstreamHeaders, requestID) = HeaderRules.upstreamRequestHeaders(
            headers, upstreamAuthority: upstream.authority, clientAddress: self.clientAddress, chunked: chunked, ids: &self.loop.ids)

        let exchange = Exchange(
            route: route, upstream: upstream, address: address,
            head: HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: upstreamHeaders),
            requestID: requestID, clientKeepAlive: head.isKeepAlive, hasBody: chunked || (contentLength ?? 0) > 0,
            snapshotVersion: snapshot.version)
        self.exchange = exchange
        let timeout = route?.timeout ?? Route.defaultTimeout
        exchange.timeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [weak self] in
            self?.timedOut(exchange, after: timeout)
        }
        if let connection = self.loop.pool.takeIdle(upstream) {
            self.attach(connection, to: exchange)
        } else {
            self.connect(exchange)
        }
    }

    private func connect(_ exchange: Exchange) {
        self.loop.pool.connect(exchange.upstream, address: exchange.address).assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.exchange === exchange else {
                if case .success(let connection) = result { connection.wrappedValue.close() }
                return
            }
            switch result {
            case .success(let connection):
                self.attach(connection.wrappedValue, to: exchange)
            case .failure(let error):
                self.failBeforeAnswer(exchange, reason: Self.describe(error, connecting: true))
            }
        }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange) {
        exchange.connection = connection
        connection.handler.delegate = self
        connection.write(.head(exchange.head))
        for part in exchange.buffered { connection.write(part) }
        exchange.buffered.removeAll()
        connection.flush()
        self.resumeReadsIfHeld()
    }

    // MARK: Upstream side

    var clientIsWritable: Bool { self.context?.channel.isWritable ?? false }

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let exchange = self.exchange, let context = self.context else { return }
        switch part {
        case .head(let response):
            exchange.responseStarted = true
            exchange.responseStatus = response.status
            exchange.upstreamKeepAlive = response.isKeepAlive
            let headers = HeaderRules.clientResponseHeaders(
                response.headers, requestID: exchange.requestID, close: !exchange.clientKeepAlive || self.quiescing)
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        case .body(let buffer):
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            let requestComplete = exchange.requestEnded
            self.finish(exchange, reusable: requestComplete && exchange.upstreamKeepAlive)
            if !requestComplete { self.discardingBody = true }
            if exchange.clientKeepAlive, !self.quiescing {
                context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: nil)
                self.answered()
            } else {
                self.closing = true
                context.writeAndFlush(self.wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
    }

    func upstreamReadComplete() {
        self.context?.flush()
    }

    func upstreamFailed(_ error: any Error) {
        guard let exchange = self.exchange else { return }
        if exchange.responseStarted {
            // Part of the answer is out: the client's connection cannot carry a correct answer any more.
            self.finish(exchange, reusable: false)
            self.closing = true
            self.context?.close(promise: nil)
            return
        }
        // A reused keep-alive connection may have been closed by the upstream just as the request went out;
        // a request without a body is safe to send again once, on a new connection.
        if let connection = exchange.connection, connection.isReused, !exchange.retried, !exchange.hasBody, exchange.requestEnded {
            exchange.retried = true
            exchange.connection = nil
            connection.close()
            exchange.buffered = [.end(nil)]
            self.connect(exchange)
            return
        }
        self.failBeforeAnswer(exchange, reason: Self.describe(error, connecting: false))
    }

    // MARK: Ending

    private func timedOut(_ exchange: Exchange, after timeout: Duration) {
        guard self.exchange === exchange else { return }
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "timeout")
        if exchange.responseStarted {
            self.finish(exchange, reusable: false)
            self.closing = true
            self.context?.close(promise: nil)
        } else {
            let requestComplete = exchange.requestEnded
            self.finish(exchange, reusable: false)
            self.respond(
                .gatewayTimeout(exchange.upstream.url, after: DurationText.format(timeout), route: exchange.route?.id),
                requestID: exchange.requestID, close: !requestComplete || !exchange.clientKeepAlive)
            if !requestComplete { self.discardingBody = true }
        }
    }

    private func failBeforeAnswer(_ exchange: Exchange, reason: String) {
        self.shared.metrics.upstreamError(route: exchange.route, upstream: exchange.upstream, kind: "connect")
        let requestComplete = exchange.requestEnded
        self.finish(exchange, reusable: false)
        self.respond(
            .badGateway(reason, upstream: exchange.upstream.url, route: exchange.route?.id),
            requestID: exchange.requestID, close: !requestComplete || !exchange.clientKeepAlive)
        if !requestComplete { self.discardingBody = true }
    }

    /// Ends the exchange: the upstream connection goes back to the pool or is closed; reads resume.
    private func finish(_ exchange: Exchange, reusable: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        exchange.timeout?.cancel()
        if let connection = exchange.connection {
            exchange.connection = nil
            if reusable { self.loop.pool.release(connection) } else { connection.close() }
        }
        if let status = exchange.responseStatus {
            self.shared.metrics.completed(route: exchange.route, upstream: exchange.upstream, status: status.code, since: exchange.started)
        }
    }

    /// Answers a request the proxy refuses outright, and closes the connection: after a protocol error
    /// nothing more on it is trusted (a smuggled second request is never read).
    private func reject(_ answer: ProxyErrorResponse, requestID: String?) {
        self.respond(answer, requestID: requestID, close: true)
    }

    private func respond(_ answer: ProxyErrorResponse, requestID: String?, close: Bool) {
        guard let context = self.context else { return }
        let body = answer.body(allocator: context.channel.allocator)
        context.write(self.wrapOutboundOut(.head(answer.head(bodyLength: body.readableBytes, close: close, requestID: requestID))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if close || self.quiescing {
            self.closing = true
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            self.answered()
        }
    }

    private static func describe(_ error: any Error, connecting: Bool) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case 111: return "refused the connection"
            case 104: return "reset the connection"
            default: return "failed: \(error.description)"
            }
        }
        if error is ChannelError, !connecting { return "closed the connection before answering" }
        if case ChannelError.connectTimeout = error { return "did not accept the connection in time" }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return Self.describe(first.error, connecting: true)
        }
        return connecting ? "could not be reached (\(error))" : "failed (\(error))"
    }
}
