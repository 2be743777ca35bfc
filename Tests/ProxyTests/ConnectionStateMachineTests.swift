import HTTP1
import NIOCore
import Testing

@testable import Proxy

/// `#expect` for a condition that calls a mutating method (the macro evaluates it on a copy).
func check(_ condition: Bool, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(condition, comment, sourceLocation: sourceLocation)
}

/// The client connection's state machine, driven by events and a clock of the test's: no sockets, no event loop.
@Suite("Client connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let limits = Machine.Limits(
        maxHeaderBytes: 1024, maxBodyBytes: 100, headTimeout: .seconds(10), idleTimeout: .seconds(60),
        bodyRateWindow: .seconds(10), bodyRateEnabled: true, bodyBytesPerWindow: 10, readAheadLimit: 64)

    static func at(_ seconds: Int64) -> NIODeadline { Self.start + .seconds(seconds) }

    static let get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    static func post(_ length: Int, expect: Bool = false) -> String {
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\(expect ? "Expect: 100-continue\r\n" : "")\r\n"
    }

    func machine() -> Machine { Machine(limits: Self.limits, now: Self.start) }

    /// Reads `text`, expects a head, and starts its exchange (route timeout 30 s).
    @discardableResult
    func startExchange(_ machine: inout Machine, _ text: String, at now: NIODeadline = Self.start) -> HTTPHead? {
        check(machine.received(ByteBuffer(string: text), now: now))
        guard case .head(let head) = machine.next(now: now) else {
            Issue.record("no head in \(text)")
            return nil
        }
        _ = machine.exchangeStarted(
            body: BodyFraming.request(head), keepAlive: head.isKeepAlive, timeout: .seconds(30), started: now,
            expectsContinue: head.expectsContinue, now: now)
        return head
    }

    func phase(_ machine: Machine) -> String {
        switch machine.state {
        case .idle: "idle"
        case .readingHead: "readingHead"
        case .streamingRequest(_, .awaiting): "streamingRequest"
        case .streamingRequest(_, .streaming): "streamingRequest+answer"
        case .awaitingAnswer: "awaitingAnswer"
        case .streamingAnswer: "streamingAnswer"
        case .draining: "draining"
        case .closing: "closing"
        case .closed: "closed"
        }
    }

    // MARK: A plain exchange, every state

    @Test func aKeepAliveExchangeGoesThroughEveryStateAndServesTheNext() {
        var machine = self.machine()
        #expect(self.phase(machine) == "readingHead")
        #expect(machine.activated() == Self.at(10), "the first head's deadline, from the accept")
        self.startExchange(&machine, Self.post(4) + "ab")
        guard case .body(let first, last: false) = machine.next(now: Self.start) else {
            Issue.record("body")
            return
        }
        #expect(first.readableBytes == 2 && self.phase(machine) == "streamingRequest" && !machine.requestIsWhole)
        check(machine.received(ByteBuffer(string: "cd"), now: Self.at(1)))
        guard case .body(_, last: true) = machine.next(now: Self.at(1)) else {
            Issue.record("last body")
            return
        }
        #expect(self.phase(machine) == "awaitingAnswer" && machine.requestIsWhole)
        check(!machine.answerHead(connectionMayStay: true), "a keep-alive answer")
        #expect(self.phase(machine) == "streamingAnswer")
        let (ending, whole) = machine.answerComplete(now: Self.at(2))
        #expect(ending == .serveNext(idleDeadline: Self.at(62)) && whole)
        #expect(self.phase(machine) == "idle")
        guard case .wait = machine.next(now: Self.at(2)) else {
            Issue.record("wait")
            return
        }
        machine.channelInactive()
        #expect(self.phase(machine) == "closed")
    }

    @Test func anAnswerWithCloseOrAFramingThatForbidsKeepAliveClosesAfterTheFlush() {
        var machine = self.machine()
        self.startExchange(&machine, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check(machine.answerHead(connectionMayStay: true), "the client asked to close")
        check(machine.answerComplete(now: Self.at(1)).ending == .closeAfterFlush(deadline: nil))
        #expect(self.phase(machine) == "draining")
        check(!machine.received(ByteBuffer(string: Self.get), now: Self.at(1)), "nothing more is read")

        var untilClose = self.machine()
        self.startExchange(&untilClose, Self.get)
        check(untilClose.answerHead(connectionMayStay: false), "a body until close")
        check(untilClose.answerComplete(now: Self.at(1)).ending == .closeAfterFlush(deadline: nil))
    }

    // MARK: Pipelining

    @Test func pipelinedRequestsWaitForTheExchangeInFlight() {
        var machine = self.machine()
        self.startExchange(&machine, Self.get + Self.get)
        guard case .wait = machine.next(now: Self.start) else {
            Issue.record("the second waits")
            return
        }
        #expect(machine.inbound?.readableBytes == Self.get.utf8.count)
        _ = machine.answerHead(connectionMayStay: true)
        _ = machine.answerComplete(now: Self.at(1))
        guard case .head = machine.next(now: Self.at(1)) else {
            Issue.record("the second is read now")
            return
        }
    }

    @Test func readsAreHeldPastTheReadAheadLimitAndWhileTheUpstreamCannotTakeTheBody() {
        var machine = self.machine()
        self.startExchange(&machine, Self.get + String(repeating: "x", count: 100))
        check(!machine.readRequested(upstream: .writable), "100 bytes wait behind the exchange: over 64")
        check(!machine.mayResumeReading(upstream: .writable))
        _ = machine.answerHead(connectionMayStay: true)
        _ = machine.answerComplete(now: Self.at(1))
        check(machine.mayResumeReading(upstream: .writable), "idle: reads go on")

        var upload = self.machine()
        self.startExchange(&upload, Self.post(50))
        check(!upload.readRequested(upstream: .connecting), "no upstream connection for the body yet")
        check(upload.mayResumeReading(upstream: .writable))
        check(!upload.readRequested(upstream: .full))
        check(upload.readRequested(upstream: .writable))
    }

    // MARK: Half-close

    @Test func aHalfClosedConnectionAnswersWhatItCarriedThenCloses() {
        var machine = self.machine()
        self.startExchange(&machine, Self.get + Self.get)
        check(machine.inputClosed() == .none, "the request in flight is whole: it is answered")
        #expect(machine.intake == .halfClosed)
        _ = machine.answerHead(connectionMayStay: true)
        check(machine.answerComplete(now: Self.at(1)).ending == .serveNext(idleDeadline: Self.at(61)))
        guard case .head(let head) = machine.next(now: Self.at(1)) else {
            Issue.record("the pipelined one")
            return
        }
        _ = machine.exchangeStarted(
            body: nil, keepAlive: head.isKeepAlive, timeout: .seconds(30), started: Self.at(1), expectsContinue: false,
            now: Self.at(1))
        _ = machine.answerHead(connectionMayStay: true)
        _ = machine.answerComplete(now: Self.at(2))
        guard case .closeAfterFlush = machine.next(now: Self.at(2)) else {
            Issue.record("drained: close")
            return
        }
        #expect(self.phase(machine) == "draining")
    }

    @Test func aHalfCloseInTheMiddleOfARequestClosesAtOnce() {
        var machine = self.machine()
        self.startExchange(&machine, Self.post(10))
        check(machine.inputClosed() == .closeNow)
        #expect(self.phase(machine) == "closing")

        var idle = self.machine()
        check(idle.inputClosed() == .process)
        guard case .closeAfterFlush = idle.next(now: Self.start) else {
            Issue.record("nothing to answer")
            return
        }
    }

    // MARK: Early answers and failures

    @Test func anAnswerBeforeTheRequestsBodyEndsClosesTheConnectionAfterIt() {
        var machine = self.machine()
        self.startExchange(&machine, Self.post(50) + "0123")
        _ = machine.next(now: Self.start)
        check(machine.answerHead(connectionMayStay: true), "the connection closes after an early answer")
        #expect(self.phase(machine) == "streamingRequest+answer")
        let (ending, whole) = machine.answerComplete(now: Self.at(1))
        #expect(ending == .closeAfterFlush(deadline: Self.at(11)) && !whole, "bounded by the lingering time")
    }

    @Test func aFailureBeforeTheAnswerIsAnsweredAndAfterItClosesAtOnce() {
        var keepAlive = self.machine()
        self.startExchange(&keepAlive, Self.get)
        check(keepAlive.exchangeFailed(now: Self.at(1)) == .serveNext(idleDeadline: Self.at(61)), "a 502, then on")

        var midBody = self.machine()
        self.startExchange(&midBody, Self.post(10))
        check(midBody.exchangeFailed(now: Self.at(1)) == .closeAfterFlush(deadline: Self.at(11)))

        var started = self.machine()
        self.startExchange(&started, Self.get)
        _ = started.answerHead(connectionMayStay: true)
        check(started.exchangeFailed(now: Self.at(1)) == .closeNow, "part of the answer is out")
        #expect(self.phase(started) == "closing")
    }

    // MARK: Refusals

    @Test func refusesAHeadTooLargeAMalformedHeadAndABodyTooLarge() {
        var large = self.machine()
        check(
            large.received(
                ByteBuffer(string: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000)), now: Self.start))
        guard case .refuse(.headerTooLarge, nil) = large.next(now: Self.start) else {
            Issue.record("431")
            return
        }
        #expect(self.phase(large) == "draining")

        var malformed = self.machine()
        _ = malformed.received(ByteBuffer(string: "GET / HTTP/1.1\nHost: x\r\n\r\n"), now: Self.start)
        guard case .refuse(.malformedHead, nil) = malformed.next(now: Self.start) else {
            Issue.record("400")
            return
        }

        var body = self.machine()
        self.startExchange(&body, Self.post(200) + String(repeating: "a", count: 101))
        guard case .refuse(.bodyTooLarge, .awaiting?) = body.next(now: Self.start) else {
            Issue.record("413")
            return
        }

        var chunks = self.machine()
        self.startExchange(&chunks, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        guard case .refuse(.malformedBody, .awaiting?) = chunks.next(now: Self.start) else {
            Issue.record("chunks")
            return
        }
    }

    // MARK: Timeouts, as events

    @Test func aHeadMustBeWholeWithinTheHeadTimeoutFromItsFirstByte() {
        var machine = self.machine()
        check(machine.timerFired(now: Self.at(5)) == .rearm(Self.at(10)))
        check(machine.timerFired(now: Self.at(10)) == .headTimedOut(idleDeadline: Self.at(70)))
        #expect(self.phase(machine) == "draining")
        check(machine.timerFired(now: Self.at(70)) == .close, "a 408 that never drained")

        // Between requests the idle timeout applies; a head's first bytes start its own clock.
        var idle = self.machine()
        self.startExchange(&idle, Self.get)
        _ = idle.answerHead(connectionMayStay: true)
        _ = idle.answerComplete(now: Self.at(1))
        check(idle.received(ByteBuffer(string: "GET / HT"), now: Self.at(20)))
        guard case .waitArming(let deadline) = idle.next(now: Self.at(20)) else {
            Issue.record("arming")
            return
        }
        #expect(deadline == Self.at(30))
        check(idle.received(ByteBuffer(string: "TP/1.1\r\n"), now: Self.at(25)))
        guard case .wait = idle.next(now: Self.at(25)) else {
            Issue.record("no restart")
            return
        }
        check(idle.timerFired(now: Self.at(30)) == .headTimedOut(idleDeadline: Self.at(90)))
    }

    @Test func anIdleConnectionClosesAfterTheIdleTimeout() {
        var machine = self.machine()
        self.startExchange(&machine, Self.get)
        _ = machine.answerHead(connectionMayStay: true)
        _ = machine.answerComplete(now: Self.at(1))
        check(machine.timerFired(now: Self.at(31)) == .rearm(Self.at(61)), "the exchange's old deadline")
        check(machine.timerFired(now: Self.at(61)) == .close)
        #expect(self.phase(machine) == "closing")
    }

    @Test func theRouteTimeoutEndsTheExchange() {
        var machine = self.machine()
        self.startExchange(&machine, Self.get)
        check(machine.timerFired(now: Self.at(29)) == .rearm(Self.at(30)))
        check(machine.timerFired(now: Self.at(30)) == .exchangeTimedOut)
        check(machine.exchangeFailed(now: Self.at(30)) == .serveNext(idleDeadline: Self.at(90)), "a 504, then on")
    }

    @Test func aBodySlowerThanTheMinimumRateIsCutUnlessTheProxyHeldItsReads() {
        var slow = self.machine()
        self.startExchange(&slow, Self.post(100) + "abc")
        _ = slow.next(now: Self.start)
        check(slow.timerFired(now: Self.at(10)) == .bodyTooSlow(received: 3, idleDeadline: Self.at(70)))
        #expect(self.phase(slow) == "draining")

        var held = self.machine()
        self.startExchange(&held, Self.post(100) + "abc")
        _ = held.next(now: Self.start)
        check(!held.readRequested(upstream: .full))
        check(held.mayResumeReading(upstream: .writable))
        check(held.timerFired(now: Self.at(10)) == .rearm(Self.at(20)), "a window the proxy held is not judged")

        var fast = self.machine()
        self.startExchange(&fast, Self.post(100) + String(repeating: "a", count: 20))
        _ = fast.next(now: Self.start)
        check(fast.timerFired(now: Self.at(10)) == .rearm(Self.at(20)))
    }

    @Test func withExpectContinueTheFirstWindowStartsAtTheInterimAnswer() {
        var machine = self.machine()
        self.startExchange(&machine, Self.post(100, expect: true))
        #expect(machine.bodyWindowEnd == nil)
        check(machine.timerFired(now: Self.at(15)) == .rearm(Self.at(30)), "no window while the client waits")
        check(machine.interimAnswer(now: Self.at(15)) == Self.at(25))
        check(machine.timerFired(now: Self.at(25)) == .bodyTooSlow(received: 0, idleDeadline: Self.at(85)))
    }

    // MARK: Shutdown and errors

    @Test func gracefulShutdownFinishesTheExchangeInFlightThenCloses() {
        var idle = self.machine()
        check(idle.quiesce(), "nothing in flight: closes now")
        #expect(self.phase(idle) == "closing")

        var busy = self.machine()
        self.startExchange(&busy, Self.get + Self.get)
        check(!busy.quiesce())
        #expect(busy.answersClose)
        check(busy.answerHead(connectionMayStay: true), "the answer says close")
        check(busy.answerComplete(now: Self.at(1)).ending == .closeAfterFlush(deadline: nil), "the pipelined one waits")
    }

    @Test func overTheCapOrOnAnErrorTheConnectionClosesAtOnce() {
        var refused = self.machine()
        refused.refusedAtCap()
        check(!refused.received(ByteBuffer(string: Self.get), now: Self.start))
        var failed = self.machine()
        failed.errorCaught()
        #expect(self.phase(failed) == "closing")
        check(!failed.readRequested(upstream: .writable))
    }
}
