import ArgumentParser
import ControlPlane
import Foundation
import Gateway
import NIOHTTP1
import Proxy
import ProxyTestSupport
import StranglerTesting
import Testing

@testable import StranglerCommands

/// `strangler proxy`'s TLS flags, and the CLI's commands against an admin API that speaks TLS.
@Suite("strangler proxy: TLS flags and an https admin API")
struct TLSCommandTests {
    @Test func theTLSFlagsSetTheListenersAndOneWithoutTheOtherIsRefused() throws {
        let command = try #require(
            try Strangler.parseAsRoot([
                "proxy", "--tls-cert", "chain.pem", "--tls-key", "key.pem", "--tls-port", "8443",
                "--admin-tls-cert", "admin.pem", "--admin-tls-key", "admin-key.pem",
            ]) as? ProxyCommand)
        let configuration = command.proxyConfiguration
        #expect(configuration.tls == TLSCertificateFiles(certificatePath: "chain.pem", keyPath: "key.pem"))
        #expect(configuration.tlsPort == 8443)
        #expect(configuration.adminTLS == TLSCertificateFiles(certificatePath: "admin.pem", keyPath: "admin-key.pem"))
        let plain = try #require(try Strangler.parseAsRoot(["proxy"]) as? ProxyCommand).proxyConfiguration
        #expect(plain.tls == nil && plain.tlsPort == nil && plain.adminTLS == nil)

        for (arguments, message) in [
            (["--tls-cert", "c.pem"], "--tls-cert needs --tls-key (the certificate's private key)"),
            (["--tls-key", "k.pem"], "--tls-key needs --tls-cert (the certificate it is the key of)"),
            (["--tls-port", "8443"], "--tls-port needs --tls-cert and --tls-key"),
            (["--admin-tls-cert", "c.pem"], "--admin-tls-cert needs --admin-tls-key"),
            (["--admin-tls-key", "k.pem"], "--admin-tls-key needs --admin-tls-cert"),
            (
                ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-port", "8080"],
                "--tls-port must differ from --port (8080)"
            ),
            (
                ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-port", "70000"],
                "--tls-port must be from 0 to 65535"
            ),
        ] {
            do {
                _ = try Strangler.parseAsRoot(["proxy"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Strangler.fullMessage(for: error).contains(message), "\(Strangler.fullMessage(for: error))")
                // As every other flag error: a usage error.
                #expect(Strangler.exitCode(for: error) == .validationFailure)
            }
        }
    }

    @Test func theAdminCAComesFromTheFlagThenTheEnvironment() throws {
        let flagged = try #require(
            try Strangler.parseAsRoot(["routes", "--admin-ca", "flag.pem"]) as? RoutesCommand)
        #expect(flagged.control.endpoint.caFile(environment: ["STRANGLER_ADMIN_CA": "env.pem"]) == "flag.pem")
        let unflagged = try #require(try Strangler.parseAsRoot(["routes"]) as? RoutesCommand)
        #expect(unflagged.control.endpoint.caFile(environment: ["STRANGLER_ADMIN_CA": "env.pem"]) == "env.pem")
        #expect(unflagged.control.endpoint.caFile(environment: [:]) == nil)
    }

    @Test func theCLIReachesAnHTTPSAdminAPIThroughItsCAAndRefusesAnotherCA() async throws {
        let certificates = try TestCertificates()
        let files = try certificates.writeToTemporaryDirectory()
        defer { files.remove() }
        try await ProxyHarness.run(configure: { configuration in
            configuration.adminTLS = TLSCertificateFiles(certificatePath: files.serverChain, keyPath: files.serverKey)
        }) { harness in
            let url = "https://127.0.0.1:\(harness.adminPort)"
            #expect(await harness.proxy.adminURL() == url)
            // proxy.json names the https URL, so that the CLI finds it without --admin.
            #expect(
                try await eventually { try ProxyPresence.live(in: harness.dataDirectory)?.admin == url })
            let flags = ["--token-file", harness.tokenFile, "--data", harness.dataDirectory]

            let listed = try await run(["routes", "--admin-ca", files.caCertificate] + flags)
            #expect(listed.status == 0, "\(listed.error)")
            #expect(listed.output.contains("contacts.get"), "\(listed.output)")

            let stranger = try await run(["routes", "--admin-ca", files.otherCACertificate, "--admin", url] + flags)
            #expect(stranger.status != 0)
            #expect(stranger.error.contains("does not verify"), "\(stranger.error)")
            #expect(stranger.error.contains("--admin-ca"), "\(stranger.error)")

            // The system's trust store does not know the test CA either.
            let client = AdminClient(
                address: try AdminClient.parse(url: url), token: ProxyHarness.token, caFile: nil)
            await #expect(throws: AdminClient.Failure.self) { _ = try await client.send(.GET, "/admin/status") }

            // A plain http URL at a TLS port: told what to try.
            let plain = AdminClient(host: "127.0.0.1", port: harness.adminPort, token: ProxyHarness.token)
            do {
                _ = try await plain.send(.GET, "/admin/status")
                Issue.record("plain HTTP was answered on the TLS admin port")
            } catch {
                #expect("\(error)".contains("https"), "\(error)")
            }
        }
    }
}

/// `strangler proxy` as a process: SIGHUP rereads the certificate (and does not end the process).
@Suite("strangler proxy: SIGHUP")
struct TLSSignalTests {
    @Test(.enabled(if: StranglerExecutable.url != nil, "needs .build/debug/strangler"))
    func sighupReloadsTheCertificateAndTheProxyRunsOn() async throws {
        let certificates = try TestCertificates()
        let files = try certificates.writeToTemporaryDirectory()
        defer { files.remove() }
        let directory = URL(fileURLWithPath: files.directory)
        let routes = directory.appendingPathComponent("routes.json").path
        try ProxyHarness.routes(monolith: 1, service: 1).write(toFile: routes, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("data").path
        let log = directory.appendingPathComponent("proxy.log").path
        var environment = ProcessInfo.processInfo.environment
        environment["STRANGLER_ADMIN_TOKEN"] = "t"
        let process = try ChildProcess(
            executable: try #require(StranglerExecutable.url).path,
            arguments: [
                "proxy", "--routes", routes, "--data", data, "--port", "0", "--admin-port", "0", "--tls-cert",
                files.serverChain, "--tls-key", files.serverKey,
            ],
            environment: environment, output: log)
        defer { process.kill() }
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(await eventually { text().contains("tls certificates reload on signals") }, "\(text())")
        #expect(text().contains("tls certificate loaded"))

        process.signal(SIGHUP)
        #expect(await eventually { text().contains("tls certificate reloaded") }, "\(text())")
        #expect(process.termination == nil, "SIGHUP did not end the proxy")

        process.signal(SIGTERM)
        #expect(await eventually { !process.isRunning })
        #expect(process.termination == .exited(0), "\(text())")
    }
}
