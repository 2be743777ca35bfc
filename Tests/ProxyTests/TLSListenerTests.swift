import Foundation
import Gateway
import Logging
import NIOSSL
import Proxy
import ProxyTestSupport
import StranglerTesting
import Testing

/// The data plane's TLS listener: HTTPS to a plain upstream, ALPN, a client that trusts another CA, plain and TLS side
/// by side, and the certificate reloaded from its files without touching connections already open.
@Suite("Proxy: TLS listener")
struct TLSListenerTests {
    /// A proxy whose client traffic speaks TLS with `certificates.server` (on `--port`, or on a second port with
    /// `sideBySide`), its files in the harness's directory.
    static func run(
        _ certificates: TestCertificates, sideBySide: Bool = false,
        _ body: (ProxyHarness, _ files: TestCertificateFiles, _ tlsPort: Int) async throws -> Void
    ) async throws {
        let files = try certificates.writeToTemporaryDirectory()
        defer { files.remove() }
        try await ProxyHarness.run(configure: { configuration in
            configuration.tls = TLSCertificateFiles(certificatePath: files.serverChain, keyPath: files.serverKey)
            if sideBySide { configuration.tlsPort = 0 }
            configuration.certificateWatchInterval = .milliseconds(50)
        }) { harness in
            let tlsPort = try #require(await harness.proxy.listeningTLSPort())
            try await body(harness, files, tlsPort)
        }
    }

    static let get = "GET /contacts/con_1 HTTP/1.1\r\nHost: shop.example\r\n\r\n"

    @Test func anHTTPSRequestReachesAPlainUpstreamOverHTTP1() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, _, tlsPort in
            #expect(tlsPort == harness.proxyPort, "without --tls-port, --port speaks TLS")
            let connection = try await TLSConnection.open(
                port: tlsPort, trusting: certificates.authority.certificatePEM)
            let handshake = try await connection.handshake()
            #expect(handshake.negotiatedProtocol == "http/1.1")
            #expect(handshake.peerCertificate?.serialNumber == certificates.server.serialNumber)
            // Two requests on one connection: keep-alive works through TLS.
            await connection.write(Self.get)
            let first = await connection.waitForResponses(1)
            await connection.write("POST /contacts HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 2\r\n\r\n{}")
            let answers = await connection.waitForResponses(2)
            #expect(answers.map(\.status) == [200, 200])
            #expect(first.first.map { json($0.body)["upstream"] as? String } == "monolith")
            #expect(answers.last.map { json($0.body)["bodyLength"] as? Int } == 2)
            #expect(!connection.isClosed)
            await connection.close()
        }
    }

    @Test func aClientThatOffersOnlyAnotherProtocolGetsNoALPNAndStillHTTP1() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, _, tlsPort in
            let connection = try await TLSConnection.open(
                port: tlsPort, trusting: certificates.authority.certificatePEM, protocols: ["h2"])
            #expect(try await connection.handshake().negotiatedProtocol == nil)
            await connection.write(Self.get)
            #expect(await connection.waitForResponses(1).first?.status == 200)
            await connection.close()
        }
    }

    @Test func aClientLimitedToTLS11IsRefused() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, _, tlsPort in
            var old = try TLSConnection.client(trusting: certificates.authority.certificatePEM)
            old.minimumTLSVersion = .tlsv1
            old.maximumTLSVersion = .tlsv11
            let connection = try await TLSConnection.open(port: tlsPort, configuration: old)
            #expect(await connection.handshakeError() is NIOSSLError)
        }
    }

    @Test func aClientTrustingAnotherCAIsRefusedAndOthersAreServed() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, _, tlsPort in
            let stranger = try await TLSConnection.open(
                port: tlsPort, trusting: certificates.otherAuthority.certificatePEM)
            let refusal = try #require(await stranger.handshakeError())
            #expect(refusal is NIOSSLError)
            #expect("\(refusal)".contains("CERTIFICATE_VERIFY_FAILED"), "\(refusal)")
            // Plain HTTP on a TLS port is not answered (it is not a TLS record): the connection closes.
            let plain = try await RawHTTP.send(Self.get + "Connection: close\r\n\r\n", port: tlsPort)
            #expect(plain.closedByServer)
            #expect(!plain.text.hasPrefix("HTTP/1.1 200"))
            let friend = try await TLSConnection.exchange(
                Self.get, port: tlsPort, trusting: certificates.authority.certificatePEM)
            #expect(friend?.status == 200)
        }
    }

    @Test func plainAndTLSListenersServeTheSameTableSideBySide() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates, sideBySide: true) { harness, _, tlsPort in
            #expect(tlsPort != harness.proxyPort)
            let plain = try await RawHTTP.get("/contacts/con_1", port: harness.proxyPort)
            #expect(plain.status == 200)
            #expect(json(plain.body)["upstream"] as? String == "monolith")
            let answer = try #require(
                try await TLSConnection.exchange(
                    Self.get, port: tlsPort, trusting: certificates.authority.certificatePEM))
            #expect(answer.status == 200)
            #expect(json(answer.body)["upstream"] as? String == "monolith")
            // The upstream is told how the client came in.
            #expect((json(answer.body)["headers"] as? [String: String])?["x-forwarded-proto"] == "https")
            #expect((json(plain.body)["headers"] as? [String: String])?["x-forwarded-proto"] == "http")
        }
    }

    @Test func aClientThatHalfClosesAfterItsRequestIsAnswered() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, _, tlsPort in
            let connection = try await TLSConnection.open(
                port: tlsPort, trusting: certificates.authority.certificatePEM)
            _ = try await connection.handshake()
            await connection.write(Self.get)
            // close_notify and FIN: the request is still answered, then the proxy closes.
            await connection.closeOutput()
            #expect(await connection.waitForClose())
            #expect(connection.responses.first?.status == 200)
        }
    }

    /// Opens a connection and returns the serial number of the certificate the proxy presented.
    static func presentedSerial(port: Int, trusting pem: String) async throws -> [UInt8]? {
        let connection = try await TLSConnection.open(port: port, trusting: pem)
        let serial = try await connection.handshake().peerCertificate?.serialNumber
        await connection.close()
        return serial
    }

    @Test func aChangedCertificateReachesNewConnectionsWhileOpenOnesKeepTheirs() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, files, tlsPort in
            let ca = certificates.authority.certificatePEM
            let open = try await TLSConnection.open(port: tlsPort, trusting: ca)
            #expect(try await open.handshake().peerCertificate?.serialNumber == certificates.server.serialNumber)
            await open.write(Self.get)
            #expect(await open.waitForResponses(1).first?.status == 200)

            let renewed = try certificates.authority.issueServer(commonName: "localhost renewed")
            // The key first, then the chain: in between, the pair does not match and is refused (the old one stays).
            try TestCertificates.write(renewed.privateKeyPEM, to: files.serverKey, secret: true)
            try TestCertificates.write(renewed.chainPEM, to: files.serverChain)
            #expect(
                try await eventually {
                    try await Self.presentedSerial(port: tlsPort, trusting: ca) == renewed.serialNumber
                })

            // The connection opened before the reload still works, with its own certificate.
            await open.write(Self.get)
            #expect(await open.waitForResponses(2).map(\.status) == [200, 200])
            #expect(!open.isClosed)
            await open.close()
        }
    }

    @Test func aBadReplacementIsRefusedAndTheCertificateInForceStays() async throws {
        let certificates = try TestCertificates()
        try await Self.run(certificates) { harness, files, tlsPort in
            let ca = certificates.authority.certificatePEM
            let original = certificates.server.serialNumber
            // Not PEM at all.
            try TestCertificates.write("not a certificate\n", to: files.serverChain)
            #expect(!harness.proxy.reloadCertificates())
            #expect(try await Self.presentedSerial(port: tlsPort, trusting: ca) == original)
            // A real certificate with another certificate's key.
            let other = try certificates.authority.issueServer()
            try TestCertificates.write(other.chainPEM, to: files.serverChain)
            #expect(!harness.proxy.reloadCertificates())
            #expect(try await Self.presentedSerial(port: tlsPort, trusting: ca) == original)
            // A missing key file.
            try TestCertificates.write(certificates.server.chainPEM, to: files.serverChain)
            try FileManager.default.removeItem(atPath: files.serverKey)
            #expect(!harness.proxy.reloadCertificates())
            #expect(try await Self.presentedSerial(port: tlsPort, trusting: ca) == original)
            // The pair made whole again loads.
            try TestCertificates.write(other.privateKeyPEM, to: files.serverKey, secret: true)
            try TestCertificates.write(other.chainPEM, to: files.serverChain)
            #expect(harness.proxy.reloadCertificates())
            #expect(try await Self.presentedSerial(port: tlsPort, trusting: ca) == other.serialNumber)
        }
    }
}

/// The TLS files a proxy is given are checked before it starts.
@Suite("Proxy: TLS files at start")
struct TLSStartTests {
    /// What the proxy says when it is made with the TLS files `configure` sets ("" when it starts).
    static func refusal(
        _ configure: (inout ProxyConfiguration, TestCertificateFiles) throws -> Void
    ) async throws -> String {
        let certificates = try TestCertificates()
        let files = try certificates.writeToTemporaryDirectory()
        defer { files.remove() }
        let routes = URL(fileURLWithPath: files.directory).appendingPathComponent("routes.json").path
        try ProxyHarness.routes(monolith: 1, service: 1).write(toFile: routes, atomically: true, encoding: .utf8)
        var configuration = ProxyConfiguration.testing(
            routesPath: routes, dataDirectory: files.directory + "/data", token: "t")
        configuration.tls = TLSCertificateFiles(certificatePath: files.serverChain, keyPath: files.serverKey)
        try configure(&configuration, files)
        do {
            let proxy = try ProxyApplication(configuration: configuration, logger: .init(label: "test"))
            try await proxy.shutdown()
            return ""
        } catch let error as TLSCertificateError {
            return error.description
        }
    }

    @Test func anUnservableCertificateOrKeyStopsTheStartNamingTheFile() async throws {
        #expect(try await Self.refusal { _, _ in } == "", "the good pair starts")
        let missing = try await Self.refusal { configuration, files in
            configuration.tls?.certificatePath = files.directory + "/nope.pem"
        }
        #expect(missing.hasSuffix("/nope.pem does not exist"), "\(missing)")
        let notPEM = try await Self.refusal { configuration, files in
            try TestCertificates.write("hello\n", to: files.serverChain)
        }
        #expect(notPEM.contains(" is not a PEM certificate") && notPEM.contains("server-chain.pem"), "\(notPEM)")
        let keyNotPEM = try await Self.refusal { configuration, files in
            try TestCertificates.write("hello\n", to: files.serverKey)
        }
        #expect(keyNotPEM.contains("server-key.pem is not a PEM private key"), "\(keyNotPEM)")
        let mismatch = try await Self.refusal { configuration, files in
            configuration.tls?.keyPath = files.clientKey
        }
        #expect(
            mismatch.hasPrefix("the key in ") && mismatch.contains("client-key.pem does not match the certificate in")
                && mismatch.contains("server-chain.pem"),
            "\(mismatch)")
        let adminMissing = try await Self.refusal { configuration, files in
            configuration.adminTLS = TLSCertificateFiles(
                certificatePath: files.serverChain, keyPath: files.directory + "/none.pem")
        }
        #expect(adminMissing.hasSuffix("/none.pem does not exist"), "\(adminMissing)")
    }
}
