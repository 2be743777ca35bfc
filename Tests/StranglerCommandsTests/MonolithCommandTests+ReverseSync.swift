import ArgumentParser
import Monolith
import Testing

@testable import StranglerCommands

/// Moved from ServiceTests/ReverseSyncTests.swift: the `strangler monolith` flags of reverse sync.
extension CommandTests {
    @Test func theMonolithCommandRefusesBadReverseSyncArguments() throws {
        let command = try #require(
            try Strangler.parseAsRoot([
                "monolith", "--reverse-sync", "contacts=http://127.0.0.1:8082", "--reverse-sync",
                "deals=http://localhost:8084/",
            ])
                as? MonolithCommand)
        #expect(try command.reverseFeeds().map(\.service) == ["contacts", "deals"])
        let cases: [([String], String)] = [
            (["--reverse-sync", "contacts"], "NAME=URL"),
            (["--reverse-sync", "widgets=http://127.0.0.1:8082"], "unknown service \"widgets\""),
            (["--reverse-sync", "contacts=ftp://127.0.0.1:8082"], "http://host:port"),
            (["--reverse-sync", "contacts=http://127.0.0.1:8082/events"], "http://host:port"),
            (["--reverse-sync", "contacts=http://a:1", "--reverse-sync", "contacts=http://b:2"], "twice"),
        ]
        for (arguments, fragment) in cases {
            do {
                _ = try Strangler.parseAsRoot(["monolith"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(
                    Strangler.message(for: error).contains(fragment), "\(arguments): \(Strangler.message(for: error))")
            }
        }
    }
}
