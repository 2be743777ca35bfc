import HTTP1
import NIOCore
import RouteTable

/// What to shadow for one request in `coexist`, to where, with which body: worked out from the route, its policy and
/// the sampler before the exchange starts, apart from the connection handling it.
///
/// ```swift
/// let decision = ShadowPlan.decide(route: route, snapshot: snapshot, head: head, method: "GET", path: path, ...)
/// upstream = decision.answering          // the service, for a canary share
/// if let plan = decision.plan { ... }    // a shadow copy goes to plan.shadow
/// ```
struct ShadowPlan {
    var route: Route
    var policy: ShadowPolicy
    /// Where the copy goes: an instance of the side that does not answer, and its address.
    var shadow: Upstream
    var shadowAddress: SocketAddress
    var servedBy: ShadowObservation.Side
    var method: String
    /// Not a safe method: shadowed only as a dry run (`Strangler-Dry-Run: 1`).
    var write: Bool
    /// The path as forwarded (canonical).
    var path: String

    /// Who answers a request, and its shadow plan if it is shadowed (a slot of the recorder's in-flight bound is
    /// taken for it: `release` it if the exchange does not start). Transform and eliminate routes, or coexist without a
    /// service or a recorder, answer from `answering` with no plan.
    static func decide(
        route: Route?, snapshot: RouteTableStore.Snapshot, head: HTTPHead, method: String, path: () -> String,
        recorder: (any ShadowSink)?, now: NIODeadline, ids: inout IDGenerator
    ) -> (answering: Balancer, plan: ShadowPlan?) {
        let balancer = snapshot.balancer(for: route)
        guard let route, route.stage == .coexist, let service = snapshot.serviceBalancer(for: route), let recorder
        else {
            return (balancer, nil)
        }
        // coexist: both sides run; the sampler decides whether this request is shadowed and who answers it.
        let policy = route.shadow ?? ShadowPolicy.defaults
        let path = path()
        let decision = ShadowSampler.decide(policy, route: route, head: head, path: Substring(path), ids: &ids)
        let answering = decision.serve ? service : balancer
        let write = HTTPMethodRules.isWrite(method)
        guard decision.shadow, !write || policy.writes == .dryRun else { return (answering, nil) }
        // A protocol upgrade goes to the answering side only: a tunnel has nothing to compare.
        guard !head.isUpgrade else {
            recorder.count(.skipped(.upgrade), route: route.id)
            return (answering, nil)
        }
        let side = decision.serve ? snapshot.monolithBalancer : service
        guard let index = side.pick(now: now, random: &ids) else {
            recorder.count(.skipped(.unhealthy), route: route.id)
            return (answering, nil)
        }
        guard recorder.tryAcquire() else {
            recorder.count(.dropped, route: route.id)
            return (answering, nil)
        }
        let plan = ShadowPlan(
            route: route, policy: policy, shadow: side.instances[index].upstream, shadowAddress: side.addresses[index],
            servedBy: decision.serve ? .service : .monolith, method: method, write: write, path: path)
        return (answering, plan)
    }

    /// The tap that copies the exchange for the comparison. The answering request's pieces come one by one, borrowed
    /// (a struct of them would retain each per shadowed request): its `head`, `upstream` and `address`, the head sent
    /// there (`upstreamHead`, which the copy re-addresses), its request id, the path the shadow side gets (canonical,
    /// with its prefix; nil: as the client sent it) and the query.
    func makeTap(
        head: HTTPHead, upstream: Upstream, address: SocketAddress, upstreamHead: ByteBuffer, requestID: String,
        shadowPath: HeadRewriter.PathRewrite?, query: String?, clientAddress: String, secure: Bool,
        recorder: any ShadowSink,
        noiseShare: Double, maxCompareBytes: Int, ids: inout IDGenerator, allocator: ByteBufferAllocator,
        trace: ExchangeTrace? = nil, metrics: ProxyMetrics? = nil
    ) -> ShadowTap {
        // With tracing on, the shadow's own span (a sibling of the answering side's), whose traceparent its head
        // carries.
        let traced = trace.map {
            $0.shadow(to: self.shadow, method: self.method, route: self.route, byMonolith: self.servedBy == .service)
        }
        // The answering request's head, re-addressed (a second rewrite from the client's head when that fails, or
        // when the sides' path prefixes differ). The client's head, kept for a sample, goes in the same buffer, after
        // it: one allocation for both.
        let shadowHead: ByteBuffer
        let requestHead: ByteBuffer
        if upstream.pathPrefix == self.shadow.pathPrefix,
            var both = HeadRewriter.retarget(
                upstreamHead, to: self.shadow.authority, dryRun: self.write, reserving: head.bytes.readableBytes,
                allocator: allocator)
        {
            if let fields = traced?.1 { HeadRewriter.replaceTraceparent(in: &both, with: fields.traceparent) }
            let shadowCount = both.readableBytes
            both.writeImmutableBuffer(head.bytes)
            shadowHead = both.getSlice(at: both.readerIndex, length: shadowCount)!
            requestHead = both.getSlice(at: both.readerIndex + shadowCount, length: head.bytes.readableBytes)!
        } else {
            shadowHead =
                HeadRewriter.upstreamRequest(
                    head, upstreamAuthority: self.shadow.authority, clientAddress: clientAddress, ids: &ids,
                    allocator: allocator, requestID: requestID, dryRun: self.write,
                    path: shadowPath, secure: secure,
                    // The answering request's trace (its span's, or the one its head carries): the shadow is in the
                    // same trace, and its sample names it.
                    trace: traced?.1 ?? HeadRewriter.traceFields(in: upstreamHead)
                ).0
            requestHead = head.bytes
        }
        // Noise learning: a share of GETs is asked of the answering side a second time.
        var repeatTarget: (upstream: Upstream, address: SocketAddress, head: ByteBuffer)?
        if self.method == "GET", noiseShare > 0, ShadowSampler.unit(ids.next()) < noiseShare {
            repeatTarget = (upstream, address, upstreamHead)
        }
        return ShadowTap(
            recorder: recorder, plan: self, requestID: requestID, query: query, requestHead: requestHead,
            maxBody: maxCompareBytes, shadowAddress: self.shadowAddress, shadowHead: shadowHead,
            repeatTarget: repeatTarget, span: traced?.0, metrics: metrics)
    }
}
