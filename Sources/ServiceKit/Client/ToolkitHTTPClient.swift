public import AsyncHTTPClient
import NIOCore
import NIOPosix
public import ServiceLifecycle

extension HTTPClient.Configuration {
    /// How the toolkit's pieces call each other: HTTP/1.1, redirects not followed, bodies as sent (no decompression,
    /// so no `Accept-Encoding` is added), a refused connection reported at once (no retries), 5 s to connect, and 2 min
    /// at most without a byte while an answer is read (longer than any long poll of a feed).
    public static var toolkit: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .minutes(2)),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }
}

extension HTTPClient {
    /// A new client with the ``AsyncHTTPClient/HTTPClient/Configuration/toolkit`` configuration on NIO's shared event
    /// loops; its owner shuts it down (``HTTPClientService`` does in a service group).
    public static func makeToolkitClient() -> HTTPClient {
        HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: .toolkit)
    }

    /// The process's client for calls that no long-running component owns (the CLI's commands, tests): like
    /// `HTTPClient.shared`, it lives as long as the process (a global is never deinitialised), so it is never shut
    /// down.
    public static let toolkit: HTTPClient = .makeToolkitClient()
}

/// Shuts an `HTTPClient` down when its service group shuts down. List it before the services that use the client:
/// a group stops its services in reverse order, so the client goes last.
///
/// ```swift
/// let client = HTTPClient.makeToolkitClient()
/// let group = ServiceGroup(services: [HTTPClientService(client), consumer, app], logger: logger)
/// ```
public struct HTTPClientService: Service {
    public let client: HTTPClient

    public init(_ client: HTTPClient) {
        self.client = client
    }

    public func run() async throws {
        // Cancelled instead of shut down gracefully: the client goes all the same.
        try? await gracefulShutdown()
        try await self.client.shutdown()
    }
}
