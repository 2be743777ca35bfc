import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ProxyTestSupport
import RouteTable
import StranglerTesting
import Testing

@testable import Proxy

/// `https://` instances: verified against the CA routes.json names (a wrong one refused), SNI from the host name,
/// client certificates for mutual TLS, and `insecure` only when written out.
@Suite("Proxy: TLS to upstreams")
struct UpstreamTLSTests {
    static func table(_ group: String) -> String {
        #"{ "monolith": \#(group), "routes": [] }"#
    }

    /// A TLS origin with the test server certificate; with `clientCA`, it asks for a client certificate signed by it.
    /// The server names clients sent (SNI) go to `serverNames`.
    static func origin(
        _ files: TestCertificateFiles, clientCA: String? = nil, serverNames: NIOLockedValueBox<[String?]>,
        host: String = "localhost"
    ) async throws -> InstanceOrigin {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(files.serverChain).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: files.serverKey, format: .pem)))
        if let clientCA {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
        }
        configuration.sslContextCallback = { values, promise in
            serverNames.withLockedValue { $0.append(values.serverHostname) }
            promise.succeed(NIOSSLContextConfigurationOverride())
        }
        return try await InstanceOrigin.start(
            "tls", tls: try NIOSSLContext(configuration: configuration), host: host)
    }

    func withCertificates(_ body: (TestCertificateFiles) async throws -> Void) async throws {
        let files = try TestCertificates().writeToTemporaryDirectory()
        defer { files.remove() }
        try await body(files)
    }

    @Test func anHTTPSInstanceIsVerifiedAgainstTheGivenCAWithSNI() async throws {
        try await self.withCertificates { files in
            let names = NIOLockedValueBox<[String?]>([])
            let origin = try await Self.origin(files, serverNames: names)
            defer { Task { await origin.stop() } }
            let group = #"{ "url": "\#(origin.url)/api", "tls": { "ca": "\#(files.caCertificate)" } }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let response = try await RawHTTP.get("/orders/1", port: harness.proxyPort)
                #expect(response.status == 200, "\(response.body)")
                #expect(origin.served.map(\.target) == ["/api/orders/1"])
                #expect(names.withLockedValue { $0 }.first == "localhost")
            }
        }
    }

    @Test func aCertificateFromAnotherCAIsRefusedWithAClearError() async throws {
        try await self.withCertificates { files in
            let names = NIOLockedValueBox<[String?]>([])
            let origin = try await Self.origin(files, serverNames: names)
            defer { Task { await origin.stop() } }
            let group = #"{ "url": "\#(origin.url)", "tls": { "ca": "\#(files.otherCACertificate)" } }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let response = try await RawHTTP.get("/orders/1", port: harness.proxyPort)
                #expect(response.status == 502)
                #expect(response.body.contains("failed the TLS handshake"), "\(response.body)")
                #expect(response.body.contains("CERTIFICATE_VERIFY_FAILED"), "\(response.body)")
                #expect(origin.served.isEmpty)
            }
        }
    }

    @Test func insecureSkipsVerificationOnlyWhenWrittenOut() async throws {
        try await self.withCertificates { files in
            let names = NIOLockedValueBox<[String?]>([])
            let origin = try await Self.origin(files, serverNames: names, host: "127.0.0.1")
            defer { Task { await origin.stop() } }
            // The system trust store does not know the test CA: refused by default, served when insecure.
            let group = #"{ "url": "\#(origin.url)", "tls": { "insecure": true } }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(group) }) { harness in
                let response = try await RawHTTP.get("/x", port: harness.proxyPort)
                #expect(response.status == 200)
                #expect(names.withLockedValue { $0 } == [nil], "no SNI for an IP address")
            }
            try await ProxyHarness.run(routes: { _, _ in Self.table(#"{ "url": "\#(origin.url)" }"#) }) { harness in
                let response = try await RawHTTP.get("/y", port: harness.proxyPort)
                #expect(response.status == 502)
                #expect(response.body.contains("failed the TLS handshake"), "\(response.body)")
            }
        }
    }

    @Test func aClientCertificateIsPresentedForMutualTLS() async throws {
        try await self.withCertificates { files in
            let names = NIOLockedValueBox<[String?]>([])
            let origin = try await Self.origin(files, clientCA: files.caCertificate, serverNames: names)
            defer { Task { await origin.stop() } }
            let without = #"{ "url": "\#(origin.url)", "tls": { "ca": "\#(files.caCertificate)" } }"#
            try await ProxyHarness.run(routes: { _, _ in Self.table(without) }) { harness in
                let response = try await RawHTTP.get("/m", port: harness.proxyPort)
                #expect(response.status == 502, "no client certificate: the origin hangs up")
            }
            let with = #"""
                { "url": "\#(origin.url)",
                  "tls": { "ca": "\#(files.caCertificate)", "cert": "\#(files.clientChain)",
                           "key": "\#(files.clientKey)" } }
                """#
            try await ProxyHarness.run(routes: { _, _ in Self.table(with) }) { harness in
                let response = try await RawHTTP.get("/m", port: harness.proxyPort)
                #expect(response.status == 200, "\(response.body)")
            }
        }
    }

    @Test func unreadableOrMismatchedFilesRefuseTheTableByTheirPlace() throws {
        let files = try TestCertificates().writeToTemporaryDirectory()
        defer { files.remove() }
        func problems(_ tls: String) -> [String] {
            do {
                let table = try RouteTable.parse(Self.table(#"{ "url": "https://127.0.0.1:1", "tls": \#(tls) }"#))
                _ = try RouteTableStore.prepare(table, text: "")
                return []
            } catch {
                return error.problems.map(\.description)
            }
        }
        let missing = problems(#"{ "ca": "\#(files.directory)/nope.pem" }"#)
        #expect(missing.first?.hasPrefix("$.monolith.tls.ca: \"\(files.directory)/nope.pem\" cannot be read") == true)
        let notPEM = problems(#"{ "ca": "\#(files.serverKey)" }"#)
        #expect(notPEM.first?.hasPrefix("$.monolith.tls.ca:") == true, "\(notPEM)")
        let mismatch = problems(#"{ "cert": "\#(files.clientCertificate)", "key": "\#(files.serverKey)" }"#)
        #expect(mismatch.first?.hasPrefix("$.monolith.tls.key:") == true, "\(mismatch)")
        #expect(problems(#"{ "cert": "\#(files.clientChain)", "key": "\#(files.clientKey)" }"#).isEmpty)
    }
}
