import ArgumentParser
import PostgresSupport
import ServiceKit
import Testing

@testable import StranglerCommands

@Suite("strangler service")
struct ServiceCommandTests {
    @Test func defaultsArePerServicePortAndDatabase() throws {
        let command = try #require(try Strangler.parseAsRoot(["service", "contacts"]) as? ServiceCommand)
        let configuration = try command.serviceConfiguration
        #expect(configuration.name == "contacts" && configuration.port == 8082)
        #expect(configuration.databasePath == ".strangler/contacts.sqlite")
        #expect(configuration.feed == FeedEndpoint(host: "127.0.0.1", port: 8081))

        let custom = try #require(
            try Strangler.parseAsRoot([
                "service", "contacts", "--port", "9000", "--db", "/tmp/c.sqlite", "--feed", "http://localhost:9001",
            ]) as? ServiceCommand)
        let customConfiguration = try custom.serviceConfiguration
        #expect(customConfiguration.port == 9000 && customConfiguration.databasePath == "/tmp/c.sqlite")
        #expect(customConfiguration.feed == FeedEndpoint(host: "localhost", port: 9001))
        #expect(customConfiguration.postgres == nil)
        #expect(ServiceConfiguration.defaultPorts == ["contacts": 8082, "leads": 8083, "deals": 8084])
    }

    @Test func leadsCanKeepItsTablesOnPostgreSQL() throws {
        let command = try #require(
            try Strangler.parseAsRoot(["service", "leads", "--db", "postgresql://crm:secret@db.internal:6543/crm"])
                as? ServiceCommand)
        let configuration = try command.serviceConfiguration
        #expect(configuration.databasePath == nil)
        #expect(configuration.postgres?.description == "postgres://crm@db.internal:6543/crm")
        #expect(configuration.postgres?.password == "secret")
    }

    @Test func refusesBadFlagsWithAMessageNamingThem() throws {
        let cases: [([String], String)] = [
            (["widgets"], "<name> must be one of: contacts, deals, leads"),
            (["contacts", "--port", "70000"], "--port"),
            (["contacts", "--port", "eighty"], "port"),
            (["contacts", "--db", ""], "--db"),
            (["contacts", "--db", "postgres://u@h/db"], "the contacts service runs on SQLite only"),
            (["deals", "--db", "postgres://u@h/db"], "the deals service runs on SQLite only"),
            (["leads", "--db", "postgres://h/db"], "--db store postgres://h/db: no user before @"),
            (["leads", "--db", "postgres://u:pw@h/db?mode=x"], "unknown parameter mode"),
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
