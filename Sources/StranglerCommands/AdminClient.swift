import Foundation
import JSON
import NIOCore
import NIOHTTP1
import Proxy
import ServiceKit

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
        var headers = HTTPHeaders([("Authorization", "Bearer \(self.token)"), ("X-Strangler-Actor", "strangler-cli")])
        headers.add(contentsOf: extra)
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        do {
            let answer = try await OneShotHTTPClient(host: self.host, port: self.port)
                .send(method, path, headers: headers, body: body.map { ByteBuffer(string: $0) })
            return Answer(status: answer.status, headers: answer.headers, body: String(buffer: answer.body))
        } catch is OneShotHTTPClient.IncompleteAnswer {
            throw Failure(description: "the admin API closed the connection before answering")
        } catch {
            throw Failure(description: "cannot reach the admin API at http://\(self.host):\(self.port) (\(error)); is `strangler proxy` running?")
        }
    }
}
