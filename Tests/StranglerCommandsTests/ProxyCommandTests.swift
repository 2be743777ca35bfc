import ArgumentParser
import Proxy
import ProxyTestSupport
import Testing

@testable import StranglerCommands

@Suite("strangler proxy: flags")
struct ProxyCommandTests {
    @Test func theProxyCommandsFlagsSetTheBounds() throws {
        let command = try #require(
            try Strangler.parseAsRoot([
                "proxy", "--max-connections", "100", "--admin-max-connections", "8", "--head-timeout", "2s",
                "--min-body-rate", "0",
                "--body-rate-window", "500ms",
            ]) as? ProxyCommand)
        let configuration = command.proxyConfiguration
        #expect(configuration.maxConnections == 100 && configuration.adminMaxConnections == 8)
        #expect(
            configuration.headTimeout == .seconds(2) && configuration.minBodyRate == 0
                && configuration.bodyRateWindow == .milliseconds(500))
        let defaults = try #require(try Strangler.parseAsRoot(["proxy"]) as? ProxyCommand).proxyConfiguration
        #expect(defaults.maxConnections == nil && defaults.adminMaxConnections == 64)
        #expect(
            defaults.headTimeout == .seconds(10) && defaults.minBodyRate == 1024
                && defaults.bodyRateWindow == .seconds(10))
        for (arguments, message) in [
            (["--head-timeout", "soon"], #"--head-timeout must be a duration such as "10s" or "500ms", not "soon""#),
            (
                ["--body-rate-window", "0s"],
                #"--body-rate-window must be a duration such as "10s" or "500ms", not "0s""#
            ),
            (["--max-connections", "0"], "--max-connections must be 1 or more, not 0"),
            (["--admin-max-connections", "0"], "--admin-max-connections must be 1 or more, not 0"),
            (["--min-body-rate=-1"], "--min-body-rate must be 0 or more, not -1"),
        ] {
            do {
                _ = try Strangler.parseAsRoot(["proxy"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Strangler.fullMessage(for: error).contains(message), "\(Strangler.fullMessage(for: error))")
            }
        }
    }
}
