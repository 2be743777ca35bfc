import HTTP1
import NIOCore

/// The life of one client connection, as a value: which phase it is in, when it times out, whether it reads, and
/// how each exchange ends. Pure: `ProxyHandler` feeds it the connection's events (bytes read, the answer's progress,
/// the timer, half-close, shutdown) with the time, and performs the actions it returns. Mutated in place; no event
/// allocates.
///
/// ```
/// readingHead ─head─► streamingRequest ─body end─► awaitingAnswer ─head─► streamingAnswer
///   ─end─► idle ─bytes─► readingHead (keep-alive: the next request; pipelined ones are already in
///   `inbound`)
/// streamingRequest ─answer head─► streamingRequest(answer: .streaming) ─end─► draining (an early answer)
/// any ─refused, 408, `close`, failure before the answer─► draining ─flushed─► closed
/// any ─failure after part of the answer, error, idle timeout─► closing ─► closed
/// ```
///
/// Pipelined requests wait in `inbound` while an exchange is in flight, and are read once it ended; half-close and
/// graceful shutdown are the connection's `Intake`.
struct ConnectionStateMachine {
    /// The limits that apply to the connection (from `ProxyConfiguration`).
    struct Limits {
        var maxHeaderBytes: Int
        var maxBodyBytes: Int
        var headTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var bodyRateWindow: TimeAmount
        /// Whether the body rate is judged (`minBodyRate` above 0), and the bytes each window must bring.
        var bodyRateEnabled: Bool
        var bodyBytesPerWindow: Int
        /// Bytes read ahead of the exchange in flight (pipelined requests) before reads are held.
        var readAheadLimit = 256 * 1024
    }

    /// The phase of the connection.
    enum State {
        /// Between requests (a keep-alive connection): closed without an answer after the idle timeout.
        case idle
        /// A head is being read (its first bytes came, or the connection was just accepted): it must be whole by
        /// `deadline`.
        case readingHead(deadline: NIODeadline)
        /// An exchange whose request body is still being read; its answer may have begun (an early answer).
        case streamingRequest(Exchange, answer: AnswerProgress)
        /// The request was read whole; the answer's head has not come.
        case awaitingAnswer(Exchange)
        /// The request was read whole; the answer's head was relayed and its body is being relayed.
        case streamingAnswer(Exchange)
        /// The last answer is being flushed, and the connection closes after it (a refused request, an answer with
        /// `close`, an answer that came before its request's body). Nothing more is read; the timer closes it by
        /// `deadline` (or its next firing) should the flush never end.
        case draining(deadline: NIODeadline?)
        /// Closed by the proxy (at once: nothing is flushed); waiting for the channel to go inactive.
        case closing
        /// The channel is inactive.
        case closed
    }

    /// Whether the answer of an exchange whose request is still being read has begun.
    enum AnswerProgress {
        case awaiting
        case streaming
    }

    /// Whether the connection takes more requests.
    enum Intake {
        case open
        /// The client closed its sending side: the complete requests it sent are answered, then the connection closes.
        case halfClosed
        /// Graceful shutdown: the exchange in flight finishes, then the connection closes.
        case quiescing
    }

    /// How the rate of a request body is measured.
    enum BodyRate {
        case off
        /// `Expect: 100-continue`: the client sends nothing before an interim answer (or its own wait) ends.
        case awaitingContinue
        /// The current window: when it ends, how many body bytes had come when it began, and whether the proxy held
        /// reads during it (a window the proxy slowed is not judged).
        case window(end: NIODeadline, startBytes: Int, held: Bool)
    }

    /// What the connection knows of the exchange in flight.
    struct Exchange {
        /// The framing of what is left of the request body (nil once it was read whole).
        var body: BodyFraming?
        var bodyBytes = 0
        /// When the route's timeout runs out.
        var deadline: NIODeadline
        /// Whether the client's connection may carry another request after this answer.
        var keepAlive: Bool
        var bodyRate: BodyRate = .off
    }

    private(set) var state: State
    private(set) var intake: Intake = .open
    let limits: Limits
    /// Bytes read but not handled yet: the current request's body, then pipelined requests.
    private(set) var inbound: ByteBuffer?
    /// How far the head in `inbound` has been searched for its end.
    private var scanned = 0
    /// When the client last sent bytes or was last answered.
    private(set) var lastActivity: NIODeadline
    /// A read the proxy held (the channel asked, the connection did not read).
    private(set) var readPending = false

    /// A connection accepted at `now`: its first head's clock starts.
    init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        self.lastActivity = now
        self.state = .readingHead(deadline: now + limits.headTimeout)
    }

    // MARK: Connection events

    /// The connection was admitted: the deadline the timer must fire by (the first head's, or the idle timeout).
    func activated() -> NIODeadline {
        guard case .readingHead(let deadline) = self.state else { return self.lastActivity + self.limits.idleTimeout }
        return min(deadline, self.lastActivity + self.limits.idleTimeout)
    }

    /// Over the connection cap: closed at once, nothing read.
    mutating func refusedAtCap() {
        self.state = .closing
    }

    /// Bytes came from the client. False when the connection reads nothing more (the bytes are dropped).
    mutating func received(_ buffer: ByteBuffer, now: NIODeadline) -> Bool {
        switch self.state {
        case .draining, .closing, .closed: return false
        default: break
        }
        self.lastActivity = now
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = buffer
        } else {
            var buffer = buffer
            self.inbound!.writeBuffer(&buffer)
        }
        return true
    }

    /// The bytes read and not handled yet, taken out: after a `101`, what the client sent past its upgrade request
    /// belongs to the new protocol (the connection is a tunnel from then on, and this machine reads no more).
    mutating func takeInbound() -> ByteBuffer? {
        defer { self.inbound = nil }
        return self.inbound
    }

    /// What the connection does with the bytes it has read: one step at a time, until `.wait`.
    enum Step {
        /// Nothing to do until more bytes come, or until the exchange in flight ends (pipelined requests wait).
        case wait
        /// As `.wait`; a head's first bytes came, and its deadline is to be armed.
        case waitArming(NIODeadline)
        /// A whole request head, to be routed (then `exchangeStarted` or `refused`).
        case head(HTTPHead)
        /// Request body bytes for the exchange; `last` when they end the request.
        case body(ByteBuffer, last: Bool)
        /// The request cannot be read on: refused with a 400, 413 or 431 (the exchange in flight, if any, ends).
        case refuse(Refusal, exchangeAnswered: AnswerProgress?)
        /// A half-closed connection answered everything it carried: it closes once the last write is flushed.
        case closeAfterFlush
    }

    /// Why the connection refuses what it read.
    enum Refusal: Equatable {
        case headerTooLarge
        case malformedHead(String)
        case malformedBody(String)
        case bodyTooLarge
    }

    /// The next step with the bytes read so far (`ProxyHandler.process` loops on it).
    mutating func next(now: NIODeadline) -> Step {
        var storage: [HTTPHead.Field] = []
        return self.next(now: now, fieldStorage: &storage)
    }

    /// The same, parsing a head into the field array `fieldStorage` holds (reused from the last head when nothing
    /// else kept it: see `HTTPHeadParser.parseRequest(_:fieldStorage:)`).
    mutating func next(now: NIODeadline, fieldStorage: inout [HTTPHead.Field]) -> Step {
        guard var inbound = self.inbound, inbound.readableBytes > 0 else {
            self.inbound = nil
            return self.nothingToRead()
        }
        switch self.state {
        case .streamingRequest(var exchange, let answer):
            guard let framing = exchange.body else { return .wait }
            let slice: ByteBuffer
            let last: Bool
            switch framing {
            case .length(let remaining):
                let take = min(remaining, inbound.readableBytes)
                slice = inbound.readSlice(length: take)!
                last = remaining == take
                exchange.body = last ? nil : .length(remaining - take)
            case .chunked(var tracker):
                let consumed: Int
                do {
                    consumed = try inbound.withUnsafeReadableBytes { raw throws(HeadError) in try tracker.consume(raw) }
                } catch {
                    self.inbound = inbound
                    return self.refuse(.malformedBody(error.reason))
                }
                slice = inbound.readSlice(length: consumed)!
                last = tracker.isDone
                exchange.body = last ? nil : .chunked(tracker)
            case .untilClose:
                return .wait
            }
            self.inbound = inbound.readableBytes == 0 ? nil : inbound
            exchange.bodyBytes += slice.readableBytes
            if case .awaitingContinue = exchange.bodyRate { exchange.bodyRate = self.window(exchange, now: now) }
            if exchange.bodyBytes > self.limits.maxBodyBytes {
                self.state = .streamingRequest(exchange, answer: answer)
                return self.refuse(.bodyTooLarge)
            }
            if last {
                exchange.bodyRate = .off
                self.state = answer == .streaming ? .streamingAnswer(exchange) : .awaitingAnswer(exchange)
            } else {
                self.state = .streamingRequest(exchange, answer: answer)
            }
            return .body(slice, last: last)
        case .idle, .readingHead:
            return self.readHead(&inbound, now: now, fieldStorage: &fieldStorage)
        case .awaitingAnswer, .streamingAnswer, .draining, .closing, .closed:
            return .wait
        }
    }

    /// No bytes to handle: a half-closed connection with nothing in flight is done.
    private mutating func nothingToRead() -> Step {
        switch self.state {
        case .idle, .readingHead:
            if case .halfClosed = self.intake {
                self.state = .draining(deadline: nil)
                return .closeAfterFlush
            }
            return .wait
        default:
            return .wait
        }
    }

    private mutating func readHead(
        _ inbound: inout ByteBuffer, now: NIODeadline, fieldStorage: inout [HTTPHead.Field]
    ) -> Step {
        let maxHeader = self.limits.maxHeaderBytes
        guard let length = HTTPHeadParser.headLength(in: inbound, searchFrom: self.scanned) else {
            self.inbound = inbound
            if inbound.readableBytes > maxHeader { return self.refuse(.headerTooLarge) }
            self.scanned = inbound.readableBytes
            if case .idle = self.state {
                // The head's first bytes: its clock starts, and no byte after them restarts it.
                let deadline = now + self.limits.headTimeout
                self.state = .readingHead(deadline: deadline)
                return .waitArming(deadline)
            }
            return .wait
        }
        self.scanned = 0
        self.state = .idle
        guard length <= maxHeader + 4 else {
            self.inbound = inbound
            return self.refuse(.headerTooLarge)
        }
        let headBytes = inbound.readSlice(length: length)!
        self.inbound = inbound.readableBytes == 0 ? nil : inbound
        do {
            return .head(try HTTPHeadParser.parseRequest(headBytes, fieldStorage: &fieldStorage))
        } catch {
            return self.refuse(.malformedHead(error.reason))
        }
    }

    /// Refuses what was read: the connection closes after the answer (nothing after a refused request is read).
    private mutating func refuse(_ refusal: Refusal) -> Step {
        let answered: AnswerProgress?
        switch self.state {
        case .streamingRequest(_, let answer): answered = answer
        case .awaitingAnswer: answered = .awaiting
        case .streamingAnswer: answered = .streaming
        default: answered = nil
        }
        self.state = answered == .streaming ? .closing : .draining(deadline: nil)
        return .refuse(refusal, exchangeAnswered: answered)
    }

    /// The proxy refused the head it was given (`Step.head`) itself: the connection closes after its answer.
    mutating func refusedHead() {
        self.state = .draining(deadline: nil)
    }

    /// The proxy answered a routed head itself, without forwarding it (the gateway refused it): a request without a
    /// body serves the next one when its connection may stay; one with a body closes after the answer (what is left
    /// of the body is discarded, for at most the head timeout), so that none of it is read as a request.
    mutating func answeredWithoutForwarding(body: BodyFraming?, keepAlive: Bool, now: NIODeadline) -> Ending {
        let exchange = Exchange(body: body, deadline: now, keepAlive: keepAlive)
        self.state = body == nil ? .awaitingAnswer(exchange) : .streamingRequest(exchange, answer: .awaiting)
        return self.exchangeFailed(now: now)
    }

    /// The head was routed and the exchange began: the deadline the timer must fire by.
    mutating func exchangeStarted(
        body: BodyFraming?, keepAlive: Bool, timeout: TimeAmount, started: NIODeadline, expectsContinue: Bool,
        now: NIODeadline
    ) -> NIODeadline {
        var exchange = Exchange(body: body, deadline: started + timeout, keepAlive: keepAlive)
        var arm = exchange.deadline
        if body != nil, self.limits.bodyRateEnabled {
            if expectsContinue {
                exchange.bodyRate = .awaitingContinue
            } else {
                exchange.bodyRate = self.window(exchange, now: now)
                if case .window(let end, _, _) = exchange.bodyRate { arm = min(arm, end) }
            }
        }
        self.state = body == nil ? .awaitingAnswer(exchange) : .streamingRequest(exchange, answer: .awaiting)
        return arm
    }

    /// A new window of the body's rate, from now (a read held now counts as held during it).
    private func window(_ exchange: Exchange, now: NIODeadline) -> BodyRate {
        .window(end: now + self.limits.bodyRateWindow, startBytes: exchange.bodyBytes, held: self.readPending)
    }

    /// The window a body-rate change asks the timer to fire by, if any.
    var bodyWindowEnd: NIODeadline? {
        guard case .streamingRequest(let exchange, _) = self.state, case .window(let end, _, _) = exchange.bodyRate
        else {
            return nil
        }
        return end
    }

    /// Whether the request in flight was read whole.
    var requestIsWhole: Bool {
        switch self.state {
        case .streamingRequest: false
        default: true
        }
    }

    /// Whether an exchange is in flight.
    var hasExchange: Bool {
        switch self.state {
        case .streamingRequest, .awaitingAnswer, .streamingAnswer: true
        default: false
        }
    }

    // MARK: The answer

    /// An interim answer (1xx) was relayed: a body waiting for `100 Continue` may come now, its rate counted from now.
    mutating func interimAnswer(now: NIODeadline) -> NIODeadline? {
        guard case .streamingRequest(var exchange, let answer) = self.state, case .awaitingContinue = exchange.bodyRate
        else {
            return nil
        }
        exchange.bodyRate = self.window(exchange, now: now)
        self.state = .streamingRequest(exchange, answer: answer)
        return self.bodyWindowEnd
    }

    /// The final answer's head arrived. `connectionMayStay` is false when the answer's framing forbids another
    /// request after it (a body until close, chunks unwrapped for HTTP/1.0). Returns whether the head says `close`.
    mutating func answerHead(connectionMayStay: Bool) -> Bool {
        switch self.state {
        case .streamingRequest(var exchange, _):
            // A final answer before the request's body was read: the connection closes after it, so that no byte
            // of that body can be read as a next request.
            exchange.keepAlive = false
            self.state = .streamingRequest(exchange, answer: .streaming)
        case .awaitingAnswer(var exchange):
            exchange.keepAlive = exchange.keepAlive && connectionMayStay
            self.state = .streamingAnswer(exchange)
        default:
            return true
        }
        return !self.keepsConnection
    }

    /// Whether the client's connection is to stay open after the exchange in flight.
    private var keepsConnection: Bool {
        guard case .open = self.intake else {
            if case .halfClosed = self.intake { return self.exchangeKeepsAlive }
            return false
        }
        return self.exchangeKeepsAlive
    }

    private var exchangeKeepsAlive: Bool {
        switch self.state {
        case .streamingRequest(let exchange, _), .awaitingAnswer(let exchange), .streamingAnswer(let exchange):
            exchange.keepAlive
        default: false
        }
    }

    /// How an exchange ended for the client's connection.
    enum Ending: Equatable {
        /// The connection serves the next request (pipelined bytes first); the timer must fire by `idleDeadline`.
        case serveNext(idleDeadline: NIODeadline)
        /// The connection closes once the answer is flushed (by `deadline` at the latest, when given).
        case closeAfterFlush(deadline: NIODeadline?)
        /// The connection closes at once (part of an answer went out that cannot be completed truthfully).
        case closeNow
    }

    /// The answer was relayed whole. `requestWasWhole` says whether the upstream connection may be reused.
    mutating func answerComplete(now: NIODeadline) -> (ending: Ending, requestWasWhole: Bool) {
        let requestWasWhole = self.requestIsWhole
        guard self.hasExchange else { return (.closeNow, requestWasWhole) }
        if requestWasWhole, self.keepsConnection {
            return (self.serveNext(now: now), true)
        }
        // An answer that came before its request's body: the rest of the body is not waited for longer than the
        // head timeout (the lingering bound).
        let deadline = requestWasWhole ? nil : now + self.limits.headTimeout
        self.state = .draining(deadline: deadline)
        return (.closeAfterFlush(deadline: deadline), requestWasWhole)
    }

    /// The exchange in flight failed (the upstream refused, reset, timed out or broke). Before any of its answer went
    /// out, the client gets the proxy's own answer (`ending` is not `.closeNow`); after, the connection closes at once.
    mutating func exchangeFailed(now: NIODeadline) -> Ending {
        switch self.state {
        case .streamingAnswer, .streamingRequest(_, answer: .streaming):
            self.state = .closing
            return .closeNow
        case .streamingRequest:
            let deadline = now + self.limits.headTimeout
            self.state = .draining(deadline: deadline)
            return .closeAfterFlush(deadline: deadline)
        case .awaitingAnswer:
            if self.keepsConnection { return self.serveNext(now: now) }
            self.state = .draining(deadline: nil)
            return .closeAfterFlush(deadline: nil)
        default:
            return .closeNow
        }
    }

    /// An exchange ended with an answer and the connection stays: idle from now (or closing, when shutting down).
    private mutating func serveNext(now: NIODeadline) -> Ending {
        self.lastActivity = now
        if case .quiescing = self.intake {
            self.state = .closing
            return .closeNow
        }
        self.state = .idle
        return .serveNext(idleDeadline: now + self.limits.idleTimeout)
    }

    // MARK: Timer

    /// What the connection's timer found when it fired.
    enum TimerAction: Equatable {
        /// Nothing due: the timer must fire again by `deadline`.
        case rearm(NIODeadline)
        /// Idle too long (or a draining connection whose last write never flushed): close, no answer.
        case close
        /// The head did not come whole in time: 408, then close (the timer must still fire by `idleDeadline`).
        case headTimedOut(idleDeadline: NIODeadline)
        /// The body came slower than the minimum rate over a window: 408, the exchange ends, close.
        case bodyTooSlow(received: Int, idleDeadline: NIODeadline)
        /// The route's timeout ran out (`exchangeFailed` says how the exchange ends).
        case exchangeTimedOut
    }

    /// The connection's one timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        let idleDeadline = self.lastActivity + self.limits.idleTimeout
        switch self.state {
        case .idle:
            return idleDeadline <= now ? self.close() : .rearm(idleDeadline)
        case .readingHead(let deadline):
            if deadline <= now {
                self.state = .draining(deadline: nil)
                return .headTimedOut(idleDeadline: now + self.limits.idleTimeout)
            }
            return idleDeadline <= now ? self.close() : .rearm(min(idleDeadline, deadline))
        case .draining, .closing, .closed:
            return self.close()
        case .streamingRequest(var exchange, let answer):
            if exchange.deadline <= now { return .exchangeTimedOut }
            if case .window(let end, let startBytes, let held) = exchange.bodyRate, end <= now {
                let received = exchange.bodyBytes - startBytes
                if !held, !self.readPending, answer == .awaiting, received < self.limits.bodyBytesPerWindow {
                    self.state = .draining(deadline: nil)
                    return .bodyTooSlow(received: received, idleDeadline: now + self.limits.idleTimeout)
                }
                exchange.bodyRate = self.window(exchange, now: now)
                self.state = .streamingRequest(exchange, answer: answer)
            }
            if case .window(let end, _, _) = exchange.bodyRate { return .rearm(min(exchange.deadline, end)) }
            return .rearm(exchange.deadline)
        case .awaitingAnswer(let exchange), .streamingAnswer(let exchange):
            return exchange.deadline <= now ? .exchangeTimedOut : .rearm(exchange.deadline)
        }
    }

    private mutating func close() -> TimerAction {
        self.state = .closing
        return .close
    }

    // MARK: Reads, half-close, shutdown, errors

    /// Whether the upstream connection of the exchange in flight can take the body's bytes now.
    enum UpstreamReadiness {
        /// Being opened.
        case connecting
        case writable
        /// Its socket buffer is full.
        case full
    }

    /// The channel asks to read. False when the read is held: while the upstream is being opened or cannot take more,
    /// while too many bytes wait behind the exchange in flight, and once the connection is closing. Otherwise the
    /// client is read as it sends, with no read-interest changes per request.
    mutating func readRequested(upstream: UpstreamReadiness) -> Bool {
        guard self.holdsReads(upstream: upstream) else { return true }
        self.readPending = true
        if case .streamingRequest(var exchange, let answer) = self.state,
            case .window(let end, let start, _) = exchange.bodyRate
        {
            exchange.bodyRate = .window(end: end, startBytes: start, held: true)
            self.state = .streamingRequest(exchange, answer: answer)
        }
        return false
    }

    /// Whether a held read may go ahead now (then it is no longer pending).
    mutating func mayResumeReading(upstream: UpstreamReadiness) -> Bool {
        guard self.readPending, !self.holdsReads(upstream: upstream) else { return false }
        self.readPending = false
        return true
    }

    private func holdsReads(upstream: UpstreamReadiness) -> Bool {
        switch self.state {
        case .draining, .closing, .closed:
            return true
        case .idle, .readingHead:
            return false
        case .streamingRequest:
            if case .full = upstream { return true }
            if case .connecting = upstream { return true }
        case .awaitingAnswer, .streamingAnswer:
            if case .full = upstream { return true }
        }
        return (self.inbound?.readableBytes ?? 0) > self.limits.readAheadLimit
    }

    /// What a half-close asks for.
    enum HalfCloseAction: Equatable {
        /// The request in flight was cut short: nothing sensible can be answered; close at once.
        case closeNow
        /// Nothing in flight: handle what was read (the loop ends with `.closeAfterFlush`).
        case process
        /// An exchange whose request is whole is in flight: its answer goes out, then what else was read.
        case none
    }

    /// The client closed its sending side.
    mutating func inputClosed() -> HalfCloseAction {
        if case .open = self.intake { self.intake = .halfClosed }
        switch self.state {
        case .streamingRequest:
            self.state = .closing
            return .closeNow
        case .awaitingAnswer, .streamingAnswer:
            return .none
        case .idle, .readingHead:
            return .process
        case .draining, .closing, .closed:
            return .none
        }
    }

    /// Graceful shutdown began. True when the connection closes now (nothing in flight).
    mutating func quiesce() -> Bool {
        self.intake = .quiescing
        guard !self.hasExchange else { return false }
        self.state = .closing
        return true
    }

    /// Whether answers are to say `connection: close` (the connection closes after them, as during shutdown).
    var answersClose: Bool {
        if case .quiescing = self.intake { return true }
        return false
    }

    /// An error on the channel: it closes at once.
    mutating func errorCaught() {
        self.state = .closing
    }

    /// The channel went inactive.
    mutating func channelInactive() {
        self.state = .closed
        self.inbound = nil
    }
}
