import AdminAPI
import ControlPlane
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import Reports
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
        /// Nothing listens at the admin URL (connection refused): no proxy runs there.
        var refused = false
    }

    let host: String
    let port: Int
    let token: String
    /// `X-Strangler-Actor` of every request (who the audit log names).
    var actor = "strangler-cli"

    /// `--admin URL` (http://host:port) and the token: `token` (from `--token-file` or `--token-stdin`), else
    /// STRANGLER_ADMIN_TOKEN, else `<data>/admin-token`.
    init(url: String, named name: String = "--admin", token: String?, dataDirectory: String) throws(Failure) {
        let (host, port) = try Self.parse(url: url, named: name)
        guard let token = Self.resolveToken(token, dataDirectory: dataDirectory) else {
            throw Failure(
                description:
                    "no admin token: set STRANGLER_ADMIN_TOKEN, pass --token-file or --token-stdin, or point --data at "
                    + "the proxy's data directory (\(AdminToken.path(dataDirectory: dataDirectory)) is missing)"
            )
        }
        self.init(host: host, port: port, token: token)
    }

    init(host: String, port: Int, token: String) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// Host and port of an `http://host:port` URL; `name` says where it came from, for the refusal.
    static func parse(url: String, named name: String = "--admin") throws(Failure) -> (host: String, port: Int) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host,
            !host.isEmpty,
            components.path.isEmpty || components.path == "/"
        else {
            throw Failure(description: "\(name) must be an http URL such as http://127.0.0.1:8090, not \"\(url)\"")
        }
        return (host, components.port ?? 80)
    }

    /// The token: `explicit`, else STRANGLER_ADMIN_TOKEN, else `<data>/admin-token`; nil when there is none.
    static func resolveToken(_ explicit: String?, dataDirectory: String) -> String? {
        if let explicit, !explicit.isEmpty { return explicit }
        if let token = ProcessInfo.processInfo.environment["STRANGLER_ADMIN_TOKEN"], !token.isEmpty { return token }
        if let text = try? String(contentsOfFile: AdminToken.path(dataDirectory: dataDirectory), encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        return nil
    }

    func send(
        _ method: HTTPMethod, _ path: String, headers extra: [(String, String)] = [], body: String? = nil
    ) async throws(Failure) -> Answer {
        var headers = HTTPHeaders([("Authorization", "Bearer \(self.token)"), ("X-Strangler-Actor", self.actor)])
        headers.add(contentsOf: extra)
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        do {
            let answer = try await OneShotHTTPClient(host: self.host, port: self.port)
                .send(method, path, headers: headers, body: body.map { ByteBuffer(string: $0) })
            return Answer(status: answer.status, headers: answer.headers, body: String(buffer: answer.body))
        } catch is OneShotHTTPClient.IncompleteAnswer {
            throw Failure(description: "the admin API closed the connection before answering")
        } catch {
            let refused = Self.isRefused(error)
            let why = refused ? "connection refused" : "\(error)"
            throw Failure(
                description:
                    "cannot reach the admin API at http://\(self.host):\(self.port) (\(why)); is `strangler proxy` "
                    + "running?",
                refused: refused)
        }
    }

    /// Whether connecting failed because nothing listens there.
    static func isRefused(_ error: any Error) -> Bool {
        if let connection = error as? NIOConnectionError {
            return !connection.connectionErrors.isEmpty
                && connection.connectionErrors.allSatisfy {
                    ($0.error as? IOError)?.errnoCode == ECONNREFUSED || "\($0.error)".contains("refused")
                }
        }
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        return "\(error)".localizedCaseInsensitiveContains("connection refused")
    }
}
