import ArgumentParser
import Testing

@testable import StranglerCommands

@Suite("strangler monolith")
struct CommandTests {
    @Test func defaultsMatchTheDocumentedPortAndDatabase() throws {
        let command = try MonolithCommand.parse([])
        #expect(command.port == 8081)
        #expect(command.db == ".strangler/monolith.sqlite")
        #expect(command.seed == 0)
    }

    @Test func refusesBadFlagsWithAMessageNamingThem() throws {
        for (arguments, fragment) in [
            (["--port", "70000"], "--port"), (["--seed", "-1"], "--seed"), (["--port", "eighty"], "port"),
            (["--db", ""], "--db"),
        ] {
            do {
                _ = try Strangler.parseAsRoot(["monolith"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                let message = Strangler.message(for: error)
                #expect(message.contains(fragment), "\(arguments): \(message)")
                #expect(Strangler.exitCode(for: error) != .success)
            }
        }
    }
}
