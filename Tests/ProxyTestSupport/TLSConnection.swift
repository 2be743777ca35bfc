import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
package import NIOSSL
import NIOTLS

/// One TLS connection a test keeps open (as ``RawConnection`` for plain TCP): the handshake's outcome (ALPN, the
/// certificate the server presented, or the error that refused it), then bytes written when the test likes and what
/// came back so far.
///
/// ```swift
/// let connection = try await TLSConnection.open(port: port, trusting: certificates.authority.certificatePEM)
/// let handshake = try await connection.handshake()     // throws the verification error when refused
/// await connection.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
/// let responses = await connection.waitForResponses(1)
/// ```
package final class TLSConnection: Sendable {
    /// What a completed handshake agreed.
    package struct Handshake: Sendable {
        /// The ALPN protocol, if the server chose one.
        package var negotiatedProtocol: String?
        /// The leaf the server presented.
        package var peerCertificate: NIOSSLCertificate?
    }

    private struct State {
        var received: [UInt8] = []
        var closed = false
        /// The first error the connection saw (a handshake refused, an unclean shutdown).
        var error: (any Error)?
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<State>
        let handshake: EventLoopPromise<String?>

        init(state: NIOLockedValueBox<State>, handshake: EventLoopPromise<String?>) {
            self.state = state
            self.handshake = handshake
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted(let negotiated) = event { self.handshake.succeed(negotiated) }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            self.state.withLockedValue { $0.received += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
            self.handshake.fail(ChannelError.ioOnClosedChannel)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.state.withLockedValue { state in if state.error == nil { state.error = error } }
            self.handshake.fail(error)
            context.close(promise: nil)
        }
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>
    private let handshakeResult: EventLoopFuture<String?>

    private init(channel: any Channel, state: NIOLockedValueBox<State>, handshake: EventLoopFuture<String?>) {
        self.channel = channel
        self.state = state
        self.handshakeResult = handshake
    }

    /// Connects to 127.0.0.1:`port` with `configuration` (a client configuration), sending `serverName` as SNI and
    /// checking the certificate against it.
    package static func open(
        port: Int, configuration: TLSConfiguration, serverName: String? = "localhost"
    ) async throws -> TLSConnection {
        let context = try NIOSSLContext(configuration: configuration)
        let state = NIOLockedValueBox(State())
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let handshake = loop.makePromise(of: String?.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(Collector(state: state, handshake: handshake))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TLSConnection(channel: channel, state: state, handshake: handshake.futureResult)
    }

    /// Connects trusting only the CA certificate(s) in `trusting` (PEM), offering ALPN `protocols`.
    package static func open(
        port: Int, trusting pem: String, protocols: [String] = ["http/1.1"], serverName: String? = "localhost"
    ) async throws -> TLSConnection {
        try await Self.open(
            port: port, configuration: Self.client(trusting: pem, protocols: protocols), serverName: serverName)
    }

    /// A client configuration that trusts only the CA certificate(s) in `pem` and offers ALPN `protocols`.
    package static func client(trusting pem: String, protocols: [String] = ["http/1.1"]) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
        configuration.applicationProtocols = protocols
        return configuration
    }

    /// Waits for the handshake: what it agreed, or the error that ended it (a certificate the client does not trust:
    /// `NIOSSLError.handshakeFailed`, naming `CERTIFICATE_VERIFY_FAILED`).
    package func handshake() async throws -> Handshake {
        let negotiated = try await self.handshakeResult.get()
        let certificate = try await self.channel.nioSSL_peerCertificate().get()
        return Handshake(negotiatedProtocol: negotiated, peerCertificate: certificate)
    }

    /// The error that ended the handshake; nil when it completed.
    package func handshakeError() async -> (any Error)? {
        do {
            _ = try await self.handshake()
            return nil
        } catch {
            return error
        }
    }

    /// One request on a new connection trusting `pem`: its answer (nil if none came), the connection closed after.
    package static func exchange(_ request: String, port: Int, trusting pem: String) async throws -> RawResponse? {
        let connection = try await TLSConnection.open(port: port, trusting: pem)
        await connection.write(request)
        let answer = await connection.waitForResponses(1).first
        await connection.close()
        return answer
    }

    /// Writes `text`; a write to a connection the server closed is not an error here (the test looks at `isClosed`).
    package func write(_ text: String) async {
        try? await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Every byte received so far, decrypted.
    package var text: String { String(decoding: self.state.withLockedValue { $0.received }, as: UTF8.self) }
    /// The server closed the connection.
    package var isClosed: Bool { self.state.withLockedValue { $0.closed } }
    /// The first error the connection saw, if any.
    package var error: (any Error)? { self.state.withLockedValue { $0.error } }
    /// The responses received so far.
    package var responses: [RawResponse] { RawHTTP.parse(self.text) }

    /// Waits until `count` responses came (or the connection closed, or `timeout` passed).
    package func waitForResponses(_ count: Int, within timeout: Duration = .seconds(30)) async -> [RawResponse] {
        _ = await eventually(within: timeout) { self.responses.count >= count || self.isClosed }
        return self.responses
    }

    /// Waits until the server closed the connection, or `timeout` passed; returns whether it closed.
    package func waitForClose(within timeout: Duration = .seconds(30)) async -> Bool {
        await eventually(within: timeout) { self.isClosed }
    }

    /// Half-closes: sends close_notify and shuts the write side, and keeps reading (a request, then end of input).
    package func closeOutput() async {
        try? await self.channel.close(mode: .output)
    }

    /// Closes from this side (with close_notify).
    package func close() async {
        try? await self.channel.close()
    }
}
