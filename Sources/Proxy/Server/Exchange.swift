import HTTP1
import NIOCore
import RouteTable
import Synchronization

/// One exchange's I/O side: the client request being forwarded and its answer being relayed. Its phase (the request
/// read whole or not, the answer begun or not, the deadlines) is the connection's `ConnectionStateMachine`'s.
final class Exchange {
    let route: Route?
    /// The group's balancer and the instance of it answering (another one after a retry elsewhere).
    let balancer: Balancer
    var instance: Int
    var upstream: Upstream
    var address: SocketAddress
    /// The rewritten head for the upstream (kept to send again on a retry).
    var upstreamHead: ByteBuffer
    let requestID: String
    let method: String
    let isHEAD: Bool
    let hasBody: Bool
    let clientVersionMinor: Int
    let started: NIODeadline
    /// The route's timeout (for the 504's message).
    let timeout: Duration
    var connection: UpstreamConnection?
    /// Body bytes read before the upstream connection was open.
    var pending: [ByteBuffer] = []
    /// The answer's head as it comes; then its body's framing (nil while the head is read).
    var headReader = ResponseHeadReader()
    var response: BodyFraming?
    var responseStatus: UInt?
    var upstreamKeepAlive = true
    /// An HTTP/1.0 client cannot take chunked framing: the chunks are unwrapped and the connection closes.
    var unchunkForClient: Bool { self.clientVersionMinor == 0 }
    /// Whether any byte came back from the upstream (after which a retry could repeat a processed request).
    var receivedAny = false
    /// Bytes written to the upstream since its last flush.
    var upstreamUnflushed = false
    var retried = false
    /// Retried once on another instance of the group (after a connect failure or a reset before any answer byte).
    var retriedElsewhere = false
    /// GET, HEAD, OPTIONS, PUT, DELETE, or carrying `Idempotency-Key`: may be sent again to another instance.
    var isIdempotent = false
    /// Counted in its instance's `pending` (waiting for a connection, in a group with circuit limits).
    private var isPending = false
    /// Why the upstream failed it (connect failure, reset, timeout), for passive ejection; nil when it answered.
    var failure: String?
    /// In `coexist`, when this request is shadowed: the copy of the exchange for comparison.
    var shadow: ShadowTap?
    /// When a recording (`strangler record`) wants this route: the copy of the exchange it keeps.
    var capture: TrafficCapture?
    /// The whole answer was relayed.
    var answered = false
    /// The request asks for a protocol upgrade (WebSocket): a fresh upstream connection, never pooled; a `101`
    /// turns both connections into a tunnel.
    var isUpgrade = false

    init(
        route: Route?, balancer: Balancer, instance: Int, upstreamHead: ByteBuffer, requestID: String,
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
        self.requestID = requestID
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
