import AdminAPI
import ControlPlane
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
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

    /// Where the admin API is: `http` or `https`, host and port.
    struct Address: Equatable {
        var scheme: String
        var host: String
        var port: Int

        /// `scheme://host:port`, as messages name it.
        var url: String { "\(self.scheme)://\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(self.port)" }
    }

    let address: Address
    let token: String
    /// For `https`: a PEM file of the CA the admin API's certificate is checked against (`--admin-ca`,
    /// `STRANGLER_ADMIN_CA`); nil: the system's trust store.
    var caFile: String?
    /// `X-Strangler-Actor` of every request (who the audit log names).
    var actor = "strangler-cli"

    var host: String { self.address.host }
    var port: Int { self.address.port }

    /// `--admin URL` (http://host:port or https://host:port) and the token: `token` (from `--token-file` or
    /// `--token-stdin`), else STRANGLER_ADMIN_TOKEN, else `<data>/admin-token`; `caFile` for https.
    init(
        url: String, named name: String = "--admin", token: String?, dataDirectory: String, caFile: String? = nil
    ) throws(Failure) {
        let address = try Self.parse(url: url, named: name)
        guard let token = Self.resolveToken(token, dataDirectory: dataDirectory) else {
            throw Failure(
                description:
                    "no admin token: set STRANGLER_ADMIN_TOKEN, pass --token-file or --token-stdin, or point --data at "
                    + "the proxy's data directory (\(AdminToken.path(dataDirectory: dataDirectory)) is missing)"
            )
        }
        self.init(address: address, token: token, caFile: caFile)
    }

    init(address: Address, token: String, caFile: String? = nil) {
        self.address = address
        self.token = token
        self.caFile = caFile
    }

    init(host: String, port: Int, token: String) {
        self.init(address: Address(scheme: "http", host: host, port: port), token: token)
    }

    /// Scheme, host and port of an `http://host:port` or `https://host:port` URL; `name` says where it came from, for
    /// the refusal.
    static func parse(url: String, named name: String = "--admin") throws(Failure) -> Address {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.path.isEmpty || components.path == "/"
        else {
            throw Failure(
                description:
                    "\(name) must be an http or https URL such as http://127.0.0.1:8090, not \"\(url)\"")
        }
        return Address(scheme: scheme, host: host, port: components.port ?? (scheme == "https" ? 443 : 80))
    }

    /// How an https admin API's certificate is checked: against `caFile` when given (read now, so that a bad file is
    /// named), else the system's trust store; the host's name (or address) must be the certificate's.
    func tlsConfiguration() throws(Failure) -> TLSConfiguration? {
        guard self.address.scheme == "https" else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        if let caFile = self.caFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw Failure(description: "the admin CA \(caFile) is not a readable PEM certificate (\(error))")
            }
        }
        return configuration
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
        let tls = try self.tlsConfiguration()
        do {
            let answer = try await OneShotHTTPClient(
                host: self.host, port: self.port, scheme: self.address.scheme, tlsConfiguration: tls
            )
            .send(method, path, headers: headers, body: body.map { ByteBuffer(string: $0) })
            return Answer(status: answer.status, headers: answer.headers, body: String(buffer: answer.body))
        } catch is OneShotHTTPClient.IncompleteAnswer {
            let hint = self.address.scheme == "http" ? " (if it serves https, use an https:// admin URL)" : ""
            throw Failure(description: "the admin API closed the connection before answering\(hint)")
        } catch {
            if Self.isUntrusted(error) {
                let trusted = self.caFile.map { "the CA in \($0)" } ?? "the system's trust store"
                throw Failure(
                    description:
                        "the admin API at \(self.address.url) presented a certificate that \(trusted) does not "
                        + "verify (\(error)); pass its CA with --admin-ca FILE or STRANGLER_ADMIN_CA")
            }
            let refused = Self.isRefused(error)
            let why = refused ? "connection refused" : "\(error)"
            throw Failure(
                description:
                    "cannot reach the admin API at \(self.address.url) (\(why)); is `strangler proxy` running?",
                refused: refused)
        }
    }

    /// Whether the TLS handshake failed on the server's certificate (not trusted, or not for this host).
    static func isUntrusted(_ error: any Error) -> Bool {
        let text = "\(error)"
        return text.contains("CERTIFICATE_VERIFY_FAILED") || (error as? NIOSSLExtraError) == .failedToValidateHostname
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
