public import RouteTable

/// What a shadowed exchange ended as, when it is not a pair to compare.
public enum ShadowCount: Sendable {
    /// Compared on the event loop and found identical (same status, bytes and compared headers).
    case matched
    case dropped, skipped, shadowError, timeout
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

    /// What it holds in memory, roughly: heads and bodies.
    public var byteCount: Int {
        self.requestHead.count + self.requestBody.count + self.monolith.head.count + self.monolith.body.count
            + self.service.head.count
            + self.service.body.count + (self.repeated.map { $0.head.count + $0.body.count } ?? 0)
    }
}
