import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Reads one page of an extracted service's own event feed (`GET /events?after=&limit=&wait=`) through a long-lived
/// `HTTPClient`. A request's deadline is the long poll's wait plus ``answerTimeout``; an answer larger than
/// ``maxAnswerBytes`` is refused. Cancelling the calling task cancels the request, so a long poll ends at once on
/// shutdown.
struct FeedClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// How the monolith calls the services: HTTP/1.1, no redirects followed, bodies as sent, a refused connection
    /// reported at once, 5 s to connect, 2 min at most without a byte while an answer is read.
    static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .minutes(2)),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// A new client for the feeds; its owner shuts it down (``FeedHTTPClientService`` in the application).
    static func makeHTTPClient() -> HTTPClient {
        HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: Self.configuration)
    }

    /// The process's client where no application owns one (a ``ReverseSync`` made by a test or a script): like
    /// `HTTPClient.shared`, it lives as long as the process (a global is never deinitialised), so it is never shut
    /// down.
    static let processClient = FeedClient.makeHTTPClient()

    let host: String
    let port: Int
    /// How long an answer may take beyond the long poll's wait.
    var answerTimeout: TimeAmount = .seconds(30)
    /// The largest answer read.
    var maxAnswerBytes = 32 << 20

    /// `http://host:port` (no path, query or TLS); nil otherwise.
    init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), !rest.contains("/"), !rest.contains("?") else { return nil }
        let host = String(rest[..<colon])
        guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        self.host = host
        self.port = port
    }

    /// The answer's status and body to `GET path`, long-polling up to `wait` seconds.
    func get(_ path: String, wait: Int, client: HTTPClient, logger: Logger) async throws -> (status: Int, body: [UInt8])
    {
        var request = HTTPClientRequest(url: "http://\(self.host):\(self.port)\(path)")
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await client.execute(
            request, timeout: .seconds(Int64(wait)) + self.answerTimeout, logger: logger)
        do {
            let body = try await response.body.collect(upTo: self.maxAnswerBytes)
            return (Int(response.status.code), Array(body.readableBytesView))
        } catch is NIOTooManyBytesError {
            throw Failure(description: "the answer is larger than \(self.maxAnswerBytes) bytes")
        }
    }
}

/// Shuts the feeds' `HTTPClient` down when the application shuts down; listed before ``ReverseSync``, so it stops
/// after it.
struct FeedHTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        // Cancelled instead of shut down gracefully: the client goes all the same.
        try? await gracefulShutdown()
        try await self.client.shutdown()
    }
}
