import ArgumentParser
import ServiceKit
import Testing

@testable import StranglerCommands

@Suite("strangler service")
struct ServiceCommandTests {
    @Test func defaultsArePerServicePortAndDatabase() throws {
        let command = try #require(try Strangler.parseAsRoot(["service", "contacts"]) as? ServiceCommand)
        let configuration = command.serviceConfiguration
        #expect(configuration.name == "contacts" && configuration.port == 8082)
        #expect(configuration.databasePath == ".strangler/contacts.sqlite")
        #expect(configuration.feed == FeedEndpoint(host: "127.0.0.1", port: 8081))

        let custom = try #require(
            try Strangler.parseAsRoot([
                "service", "contacts", "--port", "9000", "--db", "/tmp/c.sqlite", "--feed", "http://localhost:9001",
            ]) as? ServiceCommand)
        #expect(custom.serviceConfiguration.port == 9000 && custom.serviceConfiguration.databasePath == "/tmp/c.sqlite")
        #expect(custom.serviceConfiguration.feed == FeedEndpoint(host: "localhost", port: 9001))
        #expect(ServiceConfiguration.defaultPorts == ["contacts": 8082, "leads": 8083, "deals": 8084])
    }

    @Test func refusesBadFlagsWithAMessageNamingThem() throws {
        let cases: [([String], String)] = [
            (["widgets"], "<name> must be one of: contacts, deals, leads"),
            (["contacts", "--port", "70000"], "--port"),
            (["contacts", "--port", "eighty"], "port"),
            (["contacts", "--db", ""], "--db"),
            (["contacts", "--feed", "ftp://127.0.0.1:8081"], "--feed"),
            (["contacts", "--feed", "http://127.0.0.1:8081/events"], "--feed"),
            (["contacts", "--feed-page-size", "0"], "--feed-page-size"),
            (["contacts", "--colour"], "--colour"),
        ]
        for (arguments, fragment) in cases {
            do {
                _ = try Strangler.parseAsRoot(["service"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                let message = Strangler.message(for: error)
                #expect(message.contains(fragment), "\(arguments): \(message)")
                #expect(Strangler.exitCode(for: error) != .success)
            }
        }
    }
}
