public import Foundation
import HTTP1
import NIOCore

/// Where the data plane hands the exchanges a recording asked for (`strangler record`): the gateway's
/// `TrafficRecorder` redacts and keeps them. Called on event loops: every call returns at once.
public protocol CaptureSink: Sendable {
    /// Whether a recording wants the exchanges of this route now. Called for every routed request: with no
    /// recording running it must cost no more than an atomic load.
    func wants(route: String) -> Bool
    /// A whole exchange, as the client sent and got it (bodies up to the comparison limit).
    func submit(_ exchange: CapturedExchange)
}

/// One exchange as captured, before redaction.
public struct CapturedExchange: Sendable {
    public var route: String
    public var method: String
    /// The path as forwarded (canonical), and the query as sent.
    public var path: String
    public var query: String?
    /// The client's request head (start line and fields, as sent).
    public var requestHead: [UInt8]
    public var requestBody: [UInt8]
    public var status: Int
    /// The answer's head as the upstream sent it.
    public var responseHead: [UInt8]
    public var responseBody: [UInt8]
    /// A body was over the limit: what is kept is cut.
    public var truncated: Bool
    public var started: Date
    public var seconds: Double
}

/// The copy of one exchange for a recording: the request's head and body, the answer's head and body (each up to a
/// limit), handed to the sink once the answer was relayed whole.
final class TrafficCapture {
    let route: String
    let method: String
    let path: String
    let query: String?
    let requestHead: [UInt8]
    let maxBody: Int
    let started = Date()
    let clock = ContinuousClock.now
    private var requestBody: [UInt8] = []
    private var status = 0
    private var responseHead: [UInt8] = []
    private var responseBody: [UInt8] = []
    private var truncated = false

    init(route: String, method: String, path: String, query: String?, requestHead: ByteBuffer, maxBody: Int) {
        self.route = route
        self.method = method
        self.path = path
        self.query = query
        self.requestHead = Array(requestHead.readableBytesView)
        self.maxBody = maxBody
    }

    func requestBodyBytes(_ slice: ByteBuffer) { self.keep(slice, in: &self.requestBody) }

    func response(status: Int, head: HTTPHead) {
        self.status = status
        self.responseHead = Array(head.bytes.readableBytesView)
    }

    func responseBodyBytes(_ slice: ByteBuffer) { self.keep(slice, in: &self.responseBody) }

    private func keep(_ slice: ByteBuffer, in body: inout [UInt8]) {
        let room = self.maxBody - body.count
        guard room > 0 else {
            if slice.readableBytes > 0 { self.truncated = true }
            return
        }
        let view = slice.readableBytesView
        if view.count > room { self.truncated = true }
        body.append(contentsOf: view.prefix(room))
    }

    /// The exchange ended; only one whose answer was relayed whole is recorded.
    func ended(answered: Bool, sink: any CaptureSink) {
        guard answered, self.status > 0 else { return }
        let elapsed = ContinuousClock.now - self.clock
        sink.submit(
            CapturedExchange(
                route: self.route, method: self.method, path: self.path, query: self.query,
                requestHead: self.requestHead, requestBody: self.requestBody, status: self.status,
                responseHead: self.responseHead, responseBody: self.responseBody, truncated: self.truncated,
                started: self.started,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    }
}
