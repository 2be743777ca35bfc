import Diff
import HTTP1
import NIOCore
import RouteTable
import Tracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything about one shadowed request, on its client connection's event loop: a copy of the request (for
/// the shadow side and the sample), the answering side's answer as the client gets it, and the shadow's
/// answer. When all are in, the pair goes to the recorder; what cannot be compared is counted instead.
///
/// The client's exchange never waits for anything here: the tap only copies bytes that pass by.
final class ShadowTap {
    enum Primary {
        case pending, answered, failed
    }

    let recorder: any ShadowSink
    /// The route, its policy, who answers, the method and canonical path, and where the copy goes.
    let plan: ShadowPlan
    let requestID: String
    let query: String?
    /// The client's request head as received (its fields are parsed only for a sample, off the event loop).
    let requestHead: ByteBuffer
    let maxBody: Int
    /// The shadow request: the address of `plan.shadow`, and its head.
    let shadowAddress: SocketAddress
    let shadowHead: ByteBuffer
    /// For noise learning: the answering side is asked a second time with its own head.
    let repeatTarget: (upstream: Upstream, address: SocketAddress, head: ByteBuffer)?
    /// The shadow's span (tracing on): ended with the comparison's outcome, here or by the recorder.
    let span: (any Span)?
    /// Where the shadow's latency goes (`strangler_shadow_duration_seconds`, the dashboard's totals); nil: nowhere.
    let metrics: ProxyMetrics?
    private var launchedAt: NIODeadline?

    private var requestBody: [UInt8] = []
    private var requestTooLarge = false
    private var primary: Primary = .pending
    private var primaryStatus = 0
    /// The answering side's answer as relayed: its head's bytes, then its body's, in one array.
    private var primaryBytes: [UInt8] = []
    private var primaryHeadCount = 0
    private var primaryFields: RawAnswer.Fields = []
    private var primaryTooLarge = false
    private var launched = false
    private var shadowOutcome: ShadowCall.Outcome?
    private var repeatOutcome: ShadowCall.Outcome?
    private var settled = false

    init(
        recorder: any ShadowSink, plan: ShadowPlan, requestID: String, query: String?, requestHead: ByteBuffer,
        maxBody: Int, shadowAddress: SocketAddress, shadowHead: ByteBuffer,
        repeatTarget: (upstream: Upstream, address: SocketAddress, head: ByteBuffer)?, span: (any Span)? = nil,
        metrics: ProxyMetrics? = nil
    ) {
        self.span = span
        self.metrics = metrics
        self.recorder = recorder
        self.plan = plan
        self.requestID = requestID
        self.query = query
        self.requestHead = requestHead
        self.maxBody = maxBody
        self.shadowAddress = shadowAddress
        self.shadowHead = shadowHead
        self.repeatTarget = repeatTarget
    }

    // MARK: The request

    func requestBodyBytes(_ slice: ByteBuffer) {
        guard !self.requestTooLarge else { return }
        if self.requestBody.count + slice.readableBytes > self.maxBody {
            self.requestTooLarge = true
            self.requestBody = []
        } else {
            self.requestBody.append(contentsOf: slice.readableBytesView)
        }
    }

    /// The whole request was read: the shadow (and the repeat) go out now, unless the body was too large.
    func launch(pool: UpstreamPool, deadlines: ShadowDeadlines) {
        guard !self.launched, !self.settled else { return }
        self.launched = true
        guard !self.requestTooLarge else {
            self.settle()
            return
        }
        let isHEAD = self.plan.method == "HEAD"
        // Pipelined (and so re-sent after a broken connection): GET and HEAD only, narrower than the safe methods.
        let isSafe = isHEAD || self.plan.method == "GET"
        if self.metrics != nil { self.launchedAt = .now() }
        let call = ShadowCall(
            upstream: self.plan.shadow, address: self.shadowAddress, head: self.shadowHead, body: self.requestBody,
            isHEAD: isHEAD,
            isSafe: isSafe, maxBody: self.maxBody, pool: pool, deadlines: deadlines)
        call.start(timeout: self.plan.policy.timeout, for: self, isRepeat: false)
        if let target = self.repeatTarget {
            let again = ShadowCall(
                upstream: target.upstream, address: target.address, head: target.head, body: self.requestBody,
                isHEAD: isHEAD, isSafe: isSafe,
                maxBody: self.maxBody, pool: pool, deadlines: deadlines)
            again.start(timeout: self.plan.policy.timeout, for: self, isRepeat: true)
        }
    }

    /// A call ended: the shadow's, or the repeat's.
    func callEnded(_ outcome: ShadowCall.Outcome, isRepeat: Bool) {
        if !isRepeat, let metrics = self.metrics, let launchedAt = self.launchedAt {
            let status: UInt? =
                switch outcome {
                case .response(let answer): UInt(answer.status)
                case .failed, .timedOut: 0
                case .tooLarge: nil
                }
            if let status {
                metrics.shadowCompleted(
                    route: self.plan.route.id, side: self.plan.servedBy == .monolith ? "service" : "monolith",
                    status: status, nanoseconds: (NIODeadline.now() - launchedAt).nanoseconds)
            }
        }
        if isRepeat {
            self.repeatOutcome = outcome
        } else {
            self.shadowOutcome = outcome
        }
        self.settle()
        // Still waiting (for the answering side, or the other call): an answer read into the connection's buffer
        // is kept in a buffer of its own instead.
        if !self.settled, case .response(let answer) = outcome {
            if isRepeat {
                self.repeatOutcome = .response(answer.owned)
            } else {
                self.shadowOutcome = .response(answer.owned)
            }
        }
    }

    // MARK: The answering side's answer, as relayed

    func primaryResponse(status: Int, head: HTTPHead, isHEAD: Bool) {
        self.primaryStatus = status
        let headCount = head.bytes.readableBytes
        // Room for a framed body too (within reason: a length is only what the upstream claims).
        let bodyRoom =
            isHEAD || status == 204 || status == 304
            ? 0 : min(head.contentLength ?? 0, self.maxBody, Self.reservedBodyBytes)
        self.primaryBytes.reserveCapacity(headCount + bodyRoom)
        self.primaryBytes.append(contentsOf: head.bytes.readableBytesView)
        self.primaryHeadCount = headCount
        self.primaryFields = head.fields
    }

    /// Body bytes reserved up front, at most, for the answering side's answer.
    static let reservedBodyBytes = 64 * 1024

    func primaryBodyBytes(_ slice: ByteBuffer) {
        guard !self.primaryTooLarge else { return }
        if self.primaryBytes.count - self.primaryHeadCount + slice.readableBytes > self.maxBody {
            self.primaryTooLarge = true
            self.primaryBytes = []
            self.primaryHeadCount = 0
        } else {
            self.primaryBytes.append(contentsOf: slice.readableBytesView)
        }
    }

    /// The client's exchange ended: with its whole answer relayed, or not.
    func primaryEnded(answered: Bool) {
        guard case .pending = self.primary else { return }
        self.primary = answered ? .answered : .failed
        self.settle()
    }

    // MARK: Settling

    private func settle() {
        guard !self.settled else { return }
        if case .pending = self.primary { return }
        // Calls that went out are waited for, so that the in-flight bound covers them until they end.
        if self.launched, !self.requestTooLarge,
            self.shadowOutcome == nil || (self.repeatTarget != nil && self.repeatOutcome == nil)
        {
            return
        }
        guard case .answered = self.primary, self.launched, !self.requestTooLarge, !self.primaryTooLarge,
            let outcome = self.shadowOutcome
        else {
            // Nothing to compare: the answering side failed, the client went away, a body was too large to keep,
            // or the answer came before the request's body ended (the shadow never went out).
            let reason: SkipReason =
                if case .answered = self.primary {
                    self.requestTooLarge || self.primaryTooLarge ? .tooLarge : .earlyAnswer
                } else {
                    .unanswered
                }
            self.finish(.skipped(reason))
            return
        }
        switch outcome {
        case .failed:
            self.finish(.shadowError)
        case .timedOut:
            self.finish(.timeout)
        case .tooLarge:
            self.finish(.skipped(.tooLarge))
        case .response(let answer):
            self.settled = true
            self.recorder.release()
            // Most pairs are identical: same status, same bytes, same compared headers. Those are counted as
            // matched right here, without copying or queueing anything (byte-equal JSON is structurally equal).
            if self.repeatOutcome == nil, self.isSameAsPrimary(answer) {
                self.shadowOutcome = nil
                self.requestBody = []
                self.primaryBytes = []
                self.recorder.count(.matched, route: self.plan.route.id)
                ShadowSpanResult.end(self.span, result: "match", status: answer.status)
                return
            }
            let answered = RawAnswer(
                status: self.primaryStatus, head: Array(self.primaryBytes[..<self.primaryHeadCount]),
                body: Array(self.primaryBytes[self.primaryHeadCount...]))
            let shadow = answer.raw
            var repeated: RawAnswer?
            if case .response(let again) = self.repeatOutcome { repeated = again.raw }
            // The answers' buffers (slices of what their connections read) are not kept past this point.
            self.shadowOutcome = nil
            self.repeatOutcome = nil
            self.recorder.submit(
                ShadowObservation(
                    route: self.plan.route.id, policy: self.plan.policy, servedBy: self.plan.servedBy,
                    requestID: self.requestID,
                    method: self.plan.method,
                    path: self.plan.path, query: self.query, requestHead: Array(self.requestHead.readableBytesView),
                    requestBody: self.requestBody,
                    monolith: self.plan.servedBy == .monolith ? answered : shadow,
                    service: self.plan.servedBy == .monolith ? shadow : answered,
                    repeated: repeated, traceID: Self.traceID(in: self.shadowHead), span: self.span))
        }
    }

    /// Whether the shadow's answer is the answering side's: same status, same body bytes, same values of the
    /// compared headers (from the field ranges both parses found: no scan, no copy).
    private func isSameAsPrimary(_ answer: ShadowCall.Answer) -> Bool {
        guard answer.status == self.primaryStatus,
            answer.body.readableBytes == self.primaryBytes.count - self.primaryHeadCount
        else { return false }
        return self.primaryBytes.withUnsafeBufferPointer { primary in
            let primaryHead = UnsafeBufferPointer(rebasing: primary[..<self.primaryHeadCount])
            let sameBody = answer.body.withUnsafeReadableBytes { body in
                body.isEmpty || memcmp(body.baseAddress!, primary.baseAddress! + self.primaryHeadCount, body.count) == 0
            }
            guard sameBody else { return false }
            return answer.head.withUnsafeReadableBytes { raw in
                let head = raw.assumingMemoryBound(to: UInt8.self)
                return Self.comparedHeaders.allSatisfy {
                    RawAnswer.sameValues(of: $0, head, answer.fields, primaryHead, self.primaryFields)
                }
            }
        }
    }

    /// The headers that the comparison looks at (the diff engine's default).
    static let comparedHeaders = DiffOptions().headers.map { Array($0.lowercased().utf8) }

    private func finish(_ count: ShadowCount) {
        self.settled = true
        self.shadowOutcome = nil
        self.repeatOutcome = nil
        self.requestBody = []
        self.primaryBytes = []
        self.recorder.release()
        self.recorder.count(count, route: self.plan.route.id)
        if let span = self.span {
            let result =
                switch count {
                case .matched: "match"
                case .dropped: "dropped"
                case .skipped(let reason): reason.rawValue
                case .shadowError: "shadow-error"
                case .timeout: "timeout"
                }
            ShadowSpanResult.end(span, result: result)
        }
    }

    /// The trace id of the `traceparent` a head the proxy wrote carries (it always carries one), for the sample.
    static let traceMarker = Array("\r\ntraceparent: 00-".utf8)

    static func traceID(in head: ByteBuffer) -> String? {
        let marker = Self.traceMarker
        return head.withUnsafeReadableBytes { source -> String? in
            var start = 0
            while start + marker.count + 32 <= source.count {
                if source[start] == 0x0D, marker.indices.allSatisfy({ source[start + $0] == marker[$0] }) {
                    let from = start + marker.count
                    return String(decoding: UnsafeRawBufferPointer(rebasing: source[from..<(from + 32)]), as: UTF8.self)
                }
                start += 1
            }
            return nil
        }
    }
}

/// Whether a request is shadowed, and which side answers it.
enum ShadowSampler {
    /// With a key (a path parameter or a header), the decisions are a hash of it, so that an entity's whole
    /// flow is shadowed (or served by the service) or not; without one, they are random per request.
    static func decide(
        _ policy: ShadowPolicy, route: Route, head: HTTPHead, path: Substring, ids: inout IDGenerator
    ) -> (shadow: Bool, serve: Bool) {
        var key: String?
        switch policy.sampleBy {
        case .random:
            break
        case .pathParameter(let name):
            key = route.path.parameters(in: path)[name]
        case .header(let name):
            let lower = name.lowercased()
            key = head.fields.first { head.string($0.name).lowercased() == lower }.map { head.string($0.value) }
        }
        let first: UInt64
        let second: UInt64
        if let key {
            first = Self.fnv1a(key.utf8, seed: 0xcbf2_9ce4_8422_2325)
            second = Self.fnv1a(key.utf8, seed: 0x6c62_272e_07bb_0142)
        } else {
            first = ids.next()
            second = ids.next()
        }
        return (Self.unit(first) < policy.sample, Self.unit(second) < policy.serve)
    }

    /// A 64-bit value as a share in [0, 1).
    static func unit(_ value: UInt64) -> Double {
        Double(value >> 11) / Double(1 << 53)
    }

    static func fnv1a(_ bytes: some Sequence<UInt8>, seed: UInt64) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        // FNV's low bits mix poorly for short keys: finish with a murmur-style avalanche.
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
}
