import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import RouteTable

/// GETs a small JSON document with a deadline: the health, sync and reverse-sync probes behind the gates.
/// The answer is read whole (up to 1 MiB).
struct ProbeClient: Sendable {
    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer
    }

    /// Why a probe has no answer, in words for a gate's reason.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var timeout: Duration = .seconds(2)

    /// The process's client for probes: HTTP/1.1, no redirects followed (a probe asks one service), bodies as sent,
    /// and a refused connection reported at once instead of retried until the deadline. It lives as long as the
    /// process (a global is never deinitialised), like `HTTPClient.shared`, so it is never shut down.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    func get(_ upstream: Upstream, _ path: String) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: "http://\(upstream.authority)\(path)")
        request.headers.add(name: "Accept", value: "application/json")
        do {
            let response = try await Self.client.execute(request, timeout: TimeAmount(self.timeout))
            let body = try await response.body.collect(upTo: 1 << 20)
            return Answer(status: Int(response.status.code), body: body)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw Failure(description: "GET \(upstream)\(path): no answer within \(DurationText.format(self.timeout))")
        } catch is NIOTooManyBytesError {
            throw Failure(description: "GET \(upstream)\(path): answer over 1 MiB")
        } catch {
            throw Failure(description: "GET \(upstream)\(path): \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            let reasons = connection.connectionErrors.map { "\($0.error)" }
            if reasons.contains(where: { $0.contains("refused") }) { return "connection refused" }
            return reasons.first ?? "cannot connect"
        }
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed {
            return "the connection closed before a whole answer"
        }
        let text = "\(error)"
        return text.contains("refused") ? "connection refused" : text
    }
}
