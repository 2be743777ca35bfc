public import RouteTable
public import Tracing

/// What a shadowed exchange ended as, when it is not a pair to compare.
public enum ShadowCount: Sendable, Equatable {
    /// Compared on the event loop and found identical (same status, bytes and compared headers).
    case matched
    /// Not shadowed: too many shadows in flight.
    case dropped
    /// Shadowed (or chosen to be) but not compared, and why.
    case skipped(SkipReason)
    case shadowError, timeout
}

/// Why a shadow was not compared. Every reason is a counter of its own (`RouteCounts`) and a label of
/// `strangler_shadows_not_compared_total{route, reason}`.
public enum SkipReason: String, Sendable, CaseIterable {
    /// A body (the request's, or either answer's) over the comparison limit (`--max-compare-bytes`).
    case tooLarge = "too-large"
    /// A protocol upgrade (WebSocket): it goes to the answering side only.
    case upgrade
    /// No instance of the shadow side was available (all unhealthy or ejected).
    case unhealthy
    /// The answering side failed, or the client went away before its answer was relayed.
    case unanswered
    /// The answer came before the request's body ended: the shadow never went out.
    case earlyAnswer = "early-answer"
    /// Too many shadows were in flight (counted as `dropped`).
    case inFlight = "in-flight"
    /// Too many pairs were waiting to be compared (counted as `dropped`).
    case overflow
}

/// Where the data plane hands its shadow outcomes (the gateway's recorder compares the pairs and writes the diff store;
/// a test can count them). Called on event loops: every call returns at once.
public protocol ShadowSink: Sendable {
    /// Reserves room for one shadow; false when too many are in flight (then the caller counts it `.dropped`).
    func tryAcquire() -> Bool
    /// Gives back the room of a shadow once it ended (answered, failed or timed out).
    func release()
    /// Counts an outcome that is not a pair to compare.
    func count(_ count: ShadowCount, route: String)
    /// Hands over a pair to compare.
    func submit(_ observation: ShadowObservation)
}

/// A pair of answers to compare, as the event loop hands it over: which side answered, the request, both answers.
public struct ShadowObservation: Sendable {
    public enum Side: String, Sendable {
        case monolith, service
    }

    public var route: String
    public var policy: ShadowPolicy
    public var servedBy: Side
    public var requestID: String
    public var method: String
    public var path: String
    public var query: String?
    public var requestHead: [UInt8]
    public var requestBody: [UInt8]
    public var monolith: RawAnswer
    public var service: RawAnswer
    /// The answering side asked a second time (noise learning).
    public var repeated: RawAnswer?
    /// The trace the request belongs to (the 32 hex digits of the `traceparent` the proxy forwarded), kept with a
    /// mismatch's sample.
    public var traceID: String?
    /// The shadow's span (tracing on), for whoever compares the pair to end with the outcome
    /// (`ShadowSpanResult.end`).
    public var span: (any Span)?

    /// What it holds in memory, roughly: heads and bodies.
    public var byteCount: Int {
        self.requestHead.count + self.requestBody.count + self.monolith.head.count + self.monolith.body.count
            + self.service.head.count
            + self.service.body.count + (self.repeated.map { $0.head.count + $0.body.count } ?? 0)
    }
}
