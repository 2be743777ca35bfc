import Foundation
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy

/// A small client of the proxy's admin API for the CLI: one request per connection, the whole answer read.
struct AdminClient {
    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        /// The body as JSON (nil when it is not).
        var json: JSONValue? { try? JSONParser.parse(self.body) }

        /// The message of the admin API's error envelope, or the raw body.
        var errorMessage: String {
            self.json?["error"]?["message"]?.stringValue ?? self.body.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let host: String
    let port: Int
    let token: String

    /// `--admin URL` (http://host:port) and the token: `--token`, else STRANGLER_ADMIN_TOKEN, else `<data>/admin-token`.
    init(url: String, token: String?, dataDirectory: String) throws(Failure) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty,
            components.path.isEmpty || components.path == "/"
        else {
            throw Failure(description: "--admin must be an http URL such as http://127.0.0.1:8090, not \"\(url)\"")
        }
        self.host = host
        self.port = components.port ?? 80
        if let token, !token.isEmpty {
            self.token = token
        } else if let token = ProcessInfo.processInfo.environment["STRANGLER_ADMIN_TOKEN"], !token.isEmpty {
            self.token = token
        } else if let text = try? String(contentsOfFile: AdminToken.path(dataDirectory: dataDirectory), encoding: .utf8),
            !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        {
            self.token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            throw Failure(
                description: "no admin token: pass --token, set STRANGLER_ADMIN_TOKEN, or point --data at the proxy's data directory (\(AdminToken.path(dataDirectory: dataDirectory)) is missing)")
        }
    }

    func send(_ method: HTTPMethod, _ path: String, headers extra: [(String, String)] = [], body: String? = nil) async throws(Failure) -> Answer {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: self.host, port: self.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                var headers = HTTPHeaders([
                    ("Host", "\(self.host):\(self.port)"), ("Authorization", "Bearer \(self.token)"), ("Connection", "close"),
                    ("X-Strangler-Actor", "strangler-cli"),
                ])
                headers.add(contentsOf: extra)
                if let body {
                    headers.add(name: "Content-Type", value: "application/json")
                    headers.add(name: "Content-Length", value: String(body.utf8.count))
                }
                try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)))
                if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
                try await outbound.write(.end(nil))
                var answer = Answer(status: 0, headers: [:], body: "")
                var collected = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        answer.status = Int(head.status.code)
                        answer.headers = head.headers
                    case .body(var bytes):
                        collected.writeBuffer(&bytes)
                    case .end:
                        answer.body = String(buffer: collected)
                        return answer
                    }
                }
                throw Failure(description: "the admin API closed the connection before answering")
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot reach the admin API at http://\(self.host):\(self.port) (\(error)); is `strangler proxy` running?")
        }
    }
}
