public import AsyncHTTPClient
import JSON
public import Logging
public import NIOCore
import NIOHTTP1

/// The monolith's `GET /events?after=&limit=&wait=` over HTTP, through a long-lived `HTTPClient`.
///
/// A request's deadline is the long poll's `wait` plus ``answerTimeout``; an answer larger than ``maxAnswerBytes``
/// is refused. Cancelling the calling task cancels the request, so a long poll ends at once on shutdown.
///
/// ```swift
/// let client = HTTPClient.makeToolkitClient()   // shut down by HTTPClientService(client) in the service group
/// let feed = HTTPEventFeed(endpoint, client: client, logger: logger)
/// ```
public struct HTTPEventFeed: EventFeed {
    /// The feed answered something other than a page of events.
    public struct BadAnswer: Error, CustomStringConvertible {
        public var description: String
    }

    public let endpoint: FeedEndpoint
    let client: HTTPClient
    let logger: Logger?
    /// How long an answer may take beyond the long poll's wait.
    public var answerTimeout: TimeAmount
    /// The largest answer read; a page of 1,000 events is far smaller.
    public var maxAnswerBytes: Int

    public init(
        _ endpoint: FeedEndpoint, client: HTTPClient = .toolkit, logger: Logger? = nil,
        answerTimeout: TimeAmount = .seconds(30),
        maxAnswerBytes: Int = 32 << 20
    ) {
        self.endpoint = endpoint
        self.client = client
        self.logger = logger
        self.answerTimeout = answerTimeout
        self.maxAnswerBytes = maxAnswerBytes
    }

    public func events(after: Int64, limit: Int, wait: Int) async throws -> FeedPage {
        var request = HTTPClientRequest(url: "\(self.endpoint)/events?after=\(after)&limit=\(limit)&wait=\(wait)")
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await self.client.execute(
            request, timeout: .seconds(Int64(wait)) + self.answerTimeout, logger: self.logger)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: self.maxAnswerBytes)
        } catch is NIOTooManyBytesError {
            throw BadAnswer(description: "the feed's answer is larger than \(self.maxAnswerBytes) bytes")
        }
        guard response.status == .ok else {
            throw BadAnswer(
                description: "the feed answered \(response.status.code): \(String(buffer: body).prefix(200))")
        }
        guard let page = FeedPage(json: try JSONParser.parse(Array(body.readableBytesView))) else {
            throw BadAnswer(description: "the feed's answer is not a page of events")
        }
        return page
    }
}
