import HTTP1
import NIOCore
import RouteTable
import Synchronization

/// One exchange's I/O side: the client request being forwarded and its answer being relayed. Its phase (the request
/// read whole or not, the answer begun or not, the deadlines) is the connection's `ConnectionStateMachine`'s. Used on
/// its connection's event loop only, one call at a time: its hot mutable fields skip the runtime's exclusivity checks
/// (as `ProxyHandler`'s do).
final class Exchange {
    let route: Route?
    /// The group's balancer and the instance of it answering (another one after a retry elsewhere).
    let balancer: Balancer
    @exclusivity(unchecked) var instance: Int
    @exclusivity(unchecked) var upstream: Upstream
    @exclusivity(unchecked) var address: SocketAddress
    /// The rewritten head for the upstream (kept to send again on a retry).
    @exclusivity(unchecked) var upstreamHead: ByteBuffer
    /// The request id, as written in the upstream head (a slice of it: no string is made unless one is needed).
    let requestIDBytes: ByteBuffer
    /// The request id as text (for the proxy's own answers and the shadow).
    var requestID: String { String(buffer: self.requestIDBytes) }
    let method: String
    let isHEAD: Bool
    let hasBody: Bool
    let clientVersionMinor: Int
    let started: NIODeadline
    /// The route's timeout (for the 504's message).
    let timeout: Duration
    @exclusivity(unchecked) var connection: UpstreamConnection?
    /// Body bytes read before the upstream connection was open.
    @exclusivity(unchecked) var pending: [ByteBuffer] = []
    /// The answer's head as it comes; then its body's framing (nil while the head is read).
    @exclusivity(unchecked) var headReader = ResponseHeadReader()
    @exclusivity(unchecked) var response: BodyFraming?
    @exclusivity(unchecked) var responseStatus: UInt?
    @exclusivity(unchecked) var upstreamKeepAlive = true
    /// An HTTP/1.0 client cannot take chunked framing: the chunks are unwrapped and the connection closes.
    var unchunkForClient: Bool { self.clientVersionMinor == 0 }
    /// Whether any byte came back from the upstream (after which a retry could repeat a processed request).
    @exclusivity(unchecked) var receivedAny = false
    /// Bytes written to the upstream since its last flush.
    @exclusivity(unchecked) var upstreamUnflushed = false
    @exclusivity(unchecked) var retried = false
    /// Retried once on another instance of the group (after a connect failure or a reset before any answer byte).
    @exclusivity(unchecked) var retriedElsewhere = false
    /// GET, HEAD, OPTIONS, PUT, DELETE, or carrying `Idempotency-Key`: may be sent again to another instance.
    @exclusivity(unchecked) var isIdempotent = false
    /// Counted in its instance's `pending` (waiting for a connection, in a group with circuit limits).
    @exclusivity(unchecked) private var isPending = false
    /// Why the upstream failed it (connect failure, reset, timeout), for passive ejection; nil when it answered.
    @exclusivity(unchecked) var failure: String?
    /// In `coexist`, when this request is shadowed: the copy of the exchange for comparison.
    @exclusivity(unchecked) var shadow: ShadowTap?
    /// The monolith's group answers it (else a service's): the `side` of its metrics.
    @exclusivity(unchecked) var byMonolith = true
    /// Its spans, with tracing on.
    @exclusivity(unchecked) var trace: ExchangeTrace?
    /// When a recording (`strangler record`) wants this route: the copy of the exchange it keeps.
    @exclusivity(unchecked) var capture: TrafficCapture?
    /// The whole answer was relayed.
    @exclusivity(unchecked) var answered = false
    /// The request asks for a protocol upgrade (WebSocket): a fresh upstream connection, never pooled; a `101`
    /// turns both connections into a tunnel.
    @exclusivity(unchecked) var isUpgrade = false
    /// The gateway's throttles the exchange must hold a slot of before it is forwarded, and how many it holds.
    var throttles: [Throttle] = []
    var throttlesHeld = 0
    /// Its place in the queue of `throttles[throttlesHeld]` while it waits, and the timer of that wait.
    var throttleTicket: UInt64?
    var queueTimer: Scheduled<Void>?
    /// The gateway's `RateLimit-Policy` and `RateLimit` lines for the answer.
    @exclusivity(unchecked) var responseFields: String?

    /// The client's `Accept`, for the proxy's own answers (read again from the upstream head: only an error needs it).
    var accept: String? {
        (try? HTTPHeadParser.parseRequest(self.upstreamHead))?.value(of: "accept")
    }

    init(
        route: Route?, balancer: Balancer, instance: Int, upstreamHead: ByteBuffer, requestID: ByteBuffer,
        method: String, hasBody: Bool, clientVersionMinor: Int, timeout: Duration, started: NIODeadline
    ) {
        self.route = route
        self.balancer = balancer
        self.instance = instance
        let upstream = balancer.instances[instance].upstream
        let address = balancer.addresses[instance]
        self.upstream = upstream
        self.address = address
        self.upstreamHead = upstreamHead
        self.requestIDBytes = requestID
        self.method = method
        self.isHEAD = method == "HEAD"
        self.hasBody = hasBody
        self.clientVersionMinor = clientVersionMinor
        self.timeout = timeout
        self.started = started
    }

    func beganWaiting() {
        guard !self.isPending else { return }
        self.isPending = true
        self.balancer.instances[self.instance].pending.wrappingAdd(1, ordering: .relaxed)
    }

    func endedWaiting() {
        guard self.isPending else { return }
        self.isPending = false
        self.balancer.instances[self.instance].pending.wrappingSubtract(1, ordering: .relaxed)
    }

    /// The upstream connection's readiness for body bytes, as the state machine asks.
    var upstreamReadiness: ConnectionStateMachine.UpstreamReadiness {
        guard let connection = self.connection else { return .connecting }
        return connection.isWritable ? .writable : .full
    }
}
