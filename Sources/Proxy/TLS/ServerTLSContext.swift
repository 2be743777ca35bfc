import Foundation
package import Logging
import NIOCore
package import NIOSSL
import Synchronization

/// A certificate (or chain) file and its private key file, both PEM: what a TLS listener serves.
public struct TLSCertificateFiles: Sendable, Equatable {
    /// The certificate, or a chain: the leaf first, then the intermediates (nginx's `ssl_certificate`).
    public var certificatePath: String
    /// The leaf's private key (nginx's `ssl_certificate_key`); not encrypted.
    public var keyPath: String

    /// Names the two files (nothing is read until a listener starts).
    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// A certificate or key that cannot be served, naming the file: unreadable, not PEM, or a key that is not the
/// certificate's.
public struct TLSCertificateError: Error, CustomStringConvertible {
    /// What is wrong, and with which file.
    public let description: String

    package init(description: String) {
        self.description = description
    }
}

/// The TLS context a listener hands each new connection, from a certificate file and its key: loaded (and checked) at
/// start, and swapped for a new one when the files change (``reloadIfChanged()``) or on demand (``reload()``). A
/// connection keeps the context it was accepted with, so a reload never touches connections already open; a
/// replacement that does not load is refused, logged, and the context in force stays.
///
/// ```swift
/// let tls = try ServerTLSContext(files: files, logger: logger)   // throws TLSCertificateError at start
/// channel.pipeline.addHandler(NIOSSLServerHandler(context: tls.current))
/// ```
package final class ServerTLSContext: Sendable {
    /// What a reload found.
    package enum ReloadOutcome: Equatable, Sendable {
        /// The files hold what is already served.
        case unchanged
        /// New connections get the new certificate.
        case reloaded
        /// The files hold something that does not load (already logged); the context in force stays.
        case refused(String)
    }

    /// The files read, byte for byte: a change is any difference.
    private struct Contents: Equatable {
        var certificate: [UInt8]
        var key: [UInt8]
    }

    /// Something refused: what the files held (nil: they could not be read) and why.
    private struct Refusal: Equatable {
        var contents: Contents?
        var reason: String
    }

    private struct State {
        var context: NIOSSLContext
        /// What the context in force was made from.
        var served: Contents
        /// The last refusal, so that a bad file is logged once, not at every look.
        var refused: Refusal?
    }

    /// The files served.
    package let files: TLSCertificateFiles
    /// What this listener is called in logs (`proxy`, `admin`).
    package let listener: String
    private let logger: Logger
    private let state: Mutex<State>

    /// Loads the files: throws ``TLSCertificateError`` naming the file that is unreadable or invalid, or saying that the
    /// key is not the certificate's. ALPN offers `http/1.1` only; TLS 1.2 and 1.3.
    package init(files: TLSCertificateFiles, listener: String, logger: Logger) throws(TLSCertificateError) {
        self.files = files
        self.listener = listener
        self.logger = logger
        let contents = try Self.read(files)
        let context = try Self.makeContext(contents, files: files)
        self.state = Mutex(State(context: context.0, served: contents))
        self.logLoaded(context.1, event: "tls certificate loaded")
    }

    /// The context for a connection accepted now.
    package var current: NIOSSLContext {
        self.state.withLock { $0.context }
    }

    /// Rereads both files; contents that differ from those served are loaded and go live for new connections, or, when
    /// they do not load, are refused (logged once per distinct contents) and the context in force stays.
    @discardableResult
    package func reloadIfChanged() -> ReloadOutcome {
        self.reload(force: false)
    }

    /// Rereads and reloads both files even when they did not change (SIGHUP); refused as ``reloadIfChanged()`` is.
    @discardableResult
    package func reload() -> ReloadOutcome {
        self.reload(force: true)
    }

    private func reload(force: Bool) -> ReloadOutcome {
        let contents: Contents
        do {
            contents = try Self.read(self.files)
        } catch {
            // A file being replaced can be missing for an instant: refused like any other, and looked at again.
            return self.refuse(Refusal(contents: nil, reason: error.description))
        }
        let known = self.state.withLock { state -> ReloadOutcome? in
            guard !force else { return nil }
            if state.served == contents { return .unchanged }
            if let refused = state.refused, refused.contents == contents { return .refused(refused.reason) }
            return nil
        }
        if let known { return known }
        do {
            let (context, leaf) = try Self.makeContext(contents, files: self.files)
            self.state.withLock { state in
                state.context = context
                state.served = contents
                state.refused = nil
            }
            self.logLoaded(leaf, event: "tls certificate reloaded")
            return .reloaded
        } catch {
            return self.refuse(Refusal(contents: contents, reason: error.description))
        }
    }

    private func refuse(_ refusal: Refusal) -> ReloadOutcome {
        let first = self.state.withLock { state in
            defer { state.refused = refusal }
            return state.refused != refusal
        }
        if first {
            self.logger.error(
                "tls certificate refused; the one in force stays",
                metadata: ["listener": "\(self.listener)", "error": "\(refusal.reason)"])
        }
        return .refused(refusal.reason)
    }

    private func logLoaded(_ leaf: NIOSSLCertificate, event: Logger.Message) {
        let expires = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        self.logger.info(
            event,
            metadata: [
                "listener": "\(self.listener)", "certificate": "\(self.files.certificatePath)",
                "serial": "\(leaf.serialNumber.map { String(format: "%02x", $0) }.joined())",
                "notValidAfter": "\(ISO8601DateFormatter().string(from: expires))",
            ])
        if expires < Date() {
            self.logger.warning(
                "tls certificate has expired; clients will refuse it",
                metadata: ["listener": "\(self.listener)", "certificate": "\(self.files.certificatePath)"])
        }
    }

    private static func read(_ files: TLSCertificateFiles) throws(TLSCertificateError) -> Contents {
        Contents(certificate: try Self.readFile(files.certificatePath), key: try Self.readFile(files.keyPath))
    }

    private static func readFile(_ path: String) throws(TLSCertificateError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw TLSCertificateError(description: "\(path) \(why)")
        }
        return Array(data)
    }

    /// A server context for `contents`, and the leaf it serves.
    private static func makeContext(
        _ contents: Contents, files: TLSCertificateFiles
    ) throws(TLSCertificateError) -> (NIOSSLContext, NIOSSLCertificate) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(contents.certificate)
        } catch {
            throw TLSCertificateError(description: "\(files.certificatePath) is not a PEM certificate (\(error))")
        }
        guard let leaf = chain.first else {
            throw TLSCertificateError(description: "\(files.certificatePath) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: contents.key, format: .pem)
        } catch {
            throw TLSCertificateError(
                description: "\(files.keyPath) is not a PEM private key (an encrypted key is not supported) (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = ["http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        // A peer that never answers our close_notify does not hold a closing connection (and a drain) for long.
        configuration.shutdownTimeout = .seconds(1)
        do {
            return (try NIOSSLContext(configuration: configuration), leaf)
        } catch {
            // Both parsed: the context refuses a key that is not the leaf's.
            throw TLSCertificateError(
                description:
                    "the key in \(files.keyPath) does not match the certificate in \(files.certificatePath) (\(error))")
        }
    }
}
