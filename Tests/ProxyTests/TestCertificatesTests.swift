import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ProxyTestSupport
import StranglerTesting
import Testing

/// The certificates `StranglerTesting` makes: a plain NIOSSL server on port 0 with the server certificate, and clients
/// that trust the right CA (the handshake completes, mutual TLS included) or an unrelated one (refused, and the error
/// says why).
@Suite struct TestCertificatesTests {
    /// A TLS server that answers every read with `ok` and closes; the port arrives once it listens.
    private static func withServer(
        _ configuration: TLSConfiguration, _ body: (Int) async throws -> Void
    ) async throws {
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(Answer())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(channel.localAddress?.port ?? 0)
        } catch {
            try? await channel.close()
            throw error
        }
        try await channel.close()
    }

    private final class Answer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "ok")), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private static func serverConfiguration(_ certificates: TestCertificates) throws -> TLSConfiguration {
        try Self.serverConfiguration(certificates.server)
    }

    private static func serverConfiguration(_ leaf: TestCertificate) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(leaf.chainPEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(leaf.privateKeyPEM.utf8), format: .pem)))
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
    }

    @Test func aClientTrustingTheCAConnectsAndSeesTheServerCertificate() async throws {
        let certificates = try TestCertificates()
        try await Self.withServer(try Self.serverConfiguration(certificates)) { port in
            let connection = try await TLSConnection.open(port: port, trusting: certificates.authority.certificatePEM)
            let handshake = try await connection.handshake()
            #expect(handshake.negotiatedProtocol == "http/1.1")
            #expect(handshake.peerCertificate?.serialNumber == certificates.server.serialNumber)
            #expect(try handshake.peerCertificate?.toDERBytes() == certificates.server.derBytes())
            await connection.write("hello")
            #expect(await eventually { connection.text == "ok" })
            await connection.close()
        }
    }

    @Test func theServerCertificateNamesTheLoopbackAddress() async throws {
        let certificates = try TestCertificates()
        try await Self.withServer(try Self.serverConfiguration(certificates)) { port in
            // By address: no SNI can carry one, so the IP address SAN is what is checked.
            let byAddress = try await TLSConnection.open(
                port: port, trusting: certificates.authority.certificatePEM, serverName: nil)
            _ = try await byAddress.handshake()
            await byAddress.close()
        }
    }

    @Test func aNameTheCertificateDoesNotCarryIsRefused() async throws {
        let certificates = try TestCertificates()
        // Without the address SAN, the name alone decides (NIOSSL accepts a certificate for the peer's address too).
        let byName = try certificates.authority.issueServer(ipAddresses: [])
        try await Self.withServer(try Self.serverConfiguration(byName)) { port in
            let localhost = try await TLSConnection.open(port: port, trusting: certificates.authority.certificatePEM)
            _ = try await localhost.handshake()
            await localhost.close()
            let other = try await TLSConnection.open(
                port: port, trusting: certificates.authority.certificatePEM, serverName: "example.com")
            await #expect(throws: NIOSSLExtraError.self) { try await other.handshake() }
        }
    }

    @Test func aClientTrustingAnUnrelatedCAIsRefusedWithACertificateError() async throws {
        let certificates = try TestCertificates()
        try await Self.withServer(try Self.serverConfiguration(certificates)) { port in
            let connection = try await TLSConnection.open(
                port: port, trusting: certificates.otherAuthority.certificatePEM)
            let refusal = try #require(await connection.handshakeError())
            #expect(refusal is NIOSSLError)
            #expect("\(refusal)".contains("CERTIFICATE_VERIFY_FAILED"), "\(refusal)")
        }
    }

    @Test func mutualTLSAcceptsTheClientCertificateAndRefusesNone() async throws {
        let certificates = try TestCertificates()
        var server = try Self.serverConfiguration(certificates)
        server.certificateVerification = .noHostnameVerification
        server.trustRoots = .certificates(
            try NIOSSLCertificate.fromPEMBytes(Array(certificates.authority.certificatePEM.utf8)))
        try await Self.withServer(server) { port in
            var client = try TLSConnection.client(trusting: certificates.authority.certificatePEM)
            client.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificates.client.chainPEM.utf8)).map {
                .certificate($0)
            }
            client.privateKey = .privateKey(
                try NIOSSLPrivateKey(bytes: Array(certificates.client.privateKeyPEM.utf8), format: .pem))
            let withCertificate = try await TLSConnection.open(port: port, configuration: client)
            _ = try await withCertificate.handshake()
            await withCertificate.write("hello")
            #expect(await eventually { withCertificate.text == "ok" })
            await withCertificate.close()

            // TLS 1.3: the client's handshake ends before the server judged its (missing) certificate; the refusal
            // arrives as the connection's first read.
            let without = try await TLSConnection.open(
                port: port, trusting: certificates.authority.certificatePEM)
            _ = try? await without.handshake()
            await without.write("hello")
            #expect(await without.waitForClose())
            #expect(without.text.isEmpty)
        }
    }

    @Test func filesAreWrittenWithKeysPrivate() throws {
        let certificates = try TestCertificates()
        let files = try certificates.writeToTemporaryDirectory()
        defer { files.remove() }
        let chain = try NIOSSLCertificate.fromPEMFile(files.serverChain)
        #expect(chain.count == 2)
        #expect(chain.first?.serialNumber == certificates.server.serialNumber)
        _ = try NIOSSLPrivateKey(file: files.serverKey, format: .pem)
        let mode = try FileManager.default.attributesOfItem(atPath: files.serverKey)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(
            try String(contentsOfFile: files.otherCACertificate, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE"))
    }
}
