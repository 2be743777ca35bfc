import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Logging
import Monolith
import ProxyTestSupport
import ServiceKit
import Testing

@testable import StranglerCommands

@Suite("strangler traffic", .timingSensitive)
struct TrafficCommandTests {
    /// SplitMix64: the same picks on every run.
    struct SeededRandom: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A live monolith (in memory, on a free port) seeded with `contacts` demo contacts.
    static func withSeededMonolith<T: Sendable>(
        contacts: Int, _ body: @Sendable (any TestClientProtocol, FeedEndpoint) async throws -> T
    )
        async throws -> T
    {
        let app = try await buildMonolithApplication(
            configuration: .init(port: 0, databasePath: nil, seedContacts: contacts),
            logger: Logger(label: "test.monolith"))
        return try await app.test(.live) { client in
            try await body(client, FeedEndpoint(host: "127.0.0.1", port: try #require(client.port)))
        }
    }

    /// Collects what `execute` writes.
    final class Output: Sendable {
        let text = LockedValue(["", ""])
        func write(_ text: String, _ error: Bool) { self.text.withLock { $0[error ? 1 : 0] += text } }
        var standardOutput: String { self.text.value[0] }
        var standardError: String { self.text.value[1] }
    }

    // MARK: Flags

    @Test func refusesBadFlagsWithAMessageNamingThem() throws {
        let cases: [([String], String)] = [
            (["--rps", "0"], "--rps must be from 1"),
            (["--rps", "-5"], "rps"),
            (["--rps", "fast"], "rps"),
            (["--duration", "10x"], "--duration must be a duration such as 60s, 2m or 500ms, not \"10x\""),
            (["--duration", "0s"], "--duration must be more than 0"),
            (["--duration", "60"], "--duration"),
            (["--duration", "1441m"], "--duration"),
            (["--target", "ftp://127.0.0.1:8080"], "--target must be an http URL"),
            (["--target", "http://127.0.0.1:8080/contacts"], "--target"),
            (["--hot-accounts", "0"], "--hot-accounts"),
            (["--max-in-flight", "0"], "--max-in-flight"),
        ]
        for (arguments, fragment) in cases {
            do {
                _ = try Strangler.parseAsRoot(["traffic"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(
                    Strangler.message(for: error).contains(fragment), "\(arguments): \(Strangler.message(for: error))")
                #expect(Strangler.exitCode(for: error) != .success)
            }
        }
    }

    @Test func durationsReadAsPeopleWriteThem() throws {
        let defaults = try #require(try Strangler.parseAsRoot(["traffic"]) as? TrafficCommand).runConfiguration
        #expect(
            defaults.rate == 50 && defaults.duration == .seconds(60)
                && defaults.target == FeedEndpoint(host: "127.0.0.1", port: 8080))
        for (text, duration) in [
            ("2m", Duration.seconds(120)), ("500ms", .milliseconds(500)), ("1.5s", .milliseconds(1500)),
            ("90s", .seconds(90)),
        ] {
            let command = try #require(try Strangler.parseAsRoot(["traffic", "--duration", text]) as? TrafficCommand)
            #expect(command.runConfiguration.duration == duration, "\(text)")
        }
        let run = TrafficRun(
            configuration: .init(
                target: FeedEndpoint(host: "127.0.0.1", port: 1), rate: 50, duration: .milliseconds(500)))
        #expect(run.plannedRequests == 25)
    }

    // MARK: The mix

    @Test func theMixIsMostlyReadsAndMostlyOnTheHotAccounts() {
        var pools = TrafficPools()
        pools.accounts = (0..<50).map { "acc_\($0)" }
        for index in 0..<500 {
            let account = "acc_\(index % 50)"
            pools.contacts.append("con_\(index)")
            pools.contactsByAccount[account, default: []].append("con_\(index)")
        }
        for index in 0..<100 {
            pools.deals.append("deal_\(index)")
            pools.dealsByAccount["acc_\(index % 50)", default: []].append("deal_\(index)")
        }
        pools.leads = (0..<200).map { "led_\($0)" }
        pools.chooseHot(accounts: 5)
        #expect(pools.hotAccounts.count == 5)
        let hotAccounts = Set(pools.hotAccounts)

        var random = SeededRandom(state: 42)
        var operations: [TrafficOperation: Int] = [:]
        var entity = 0
        var hot = 0
        var onHotAccount = 0
        var contactReads = 0
        for _ in 0..<10_000 {
            let request = pools.next(using: &random)
            operations[request.operation, default: 0] += 1
            if request.id != nil && request.operation != .convertLead && request.operation != .deleteContact {
                entity += 1
                if request.hot { hot += 1 }
            }
            if request.operation == .getContact, let id = request.id {
                contactReads += 1
                if hotAccounts.contains(where: { pools.contactsByAccount[$0]?.contains(id) == true }) {
                    onHotAccount += 1
                }
            }
            // Answers as the CRM gives them, so that creations feed conversions and deletions.
            switch request.operation {
            case .createLead:
                pools.learn(
                    from: request, status: 201, body: .object([("id", .string("led_new_\(operations[.createLead]!)"))]))
            case .createContact:
                pools.learn(
                    from: request, status: 201,
                    body: .object([
                        ("id", .string("con_new_\(operations[.createContact]!)")),
                        ("accountId", .string(request.id ?? "")),
                    ]))
            default: break
            }
        }
        let writes = operations.filter { $0.key.isWrite }.map(\.value).reduce(0, +)
        #expect((2500...3100).contains(writes), "\(writes) writes of 10000")
        #expect(Double(hot) / Double(entity) > 0.75, "\(hot) hot of \(entity)")
        #expect(
            Double(onHotAccount) / Double(contactReads) > 0.75,
            "\(onHotAccount) of \(contactReads) contact reads on hot accounts")
        // Every operation of the mix is used, conversions and deletions included (on what the run created).
        #expect(
            Set(operations.keys) == Set(TrafficOperation.allCases),
            "\(Set(TrafficOperation.allCases).subtracting(operations.keys))")
    }

    @Test func withNothingToWorkOnAnOperationGivesWayAndKeepsItsKind() {
        var pools = TrafficPools()
        var random = SeededRandom(state: 7)
        for _ in 0..<500 {
            let request = pools.next(using: &random)
            #expect(
                [.listContacts, .listLeads, .listDeals, .pipeline, .createLead].contains(request.operation),
                "\(request.operation)")
        }
        #expect(pools.request(.convertLead, using: &random) == nil)
        #expect(pools.request(.deleteContact, using: &random) == nil)
    }

    @Test func latencyPercentilesAreWithinFivePercent() throws {
        var histogram = LatencyHistogram()
        #expect(histogram.percentile(0.5) == nil)
        for milliseconds in 1...100 { histogram.record(.milliseconds(milliseconds)) }
        let p50 = try #require(histogram.percentile(0.5))
        let p99 = try #require(histogram.percentile(0.99))
        #expect(p50 >= .milliseconds(50) && p50 <= .microseconds(52_500), "\(p50)")
        #expect(p99 >= .milliseconds(99) && p99 <= .microseconds(104_000), "\(p99)")
    }

    // MARK: Live, against an in-process monolith

    @Test func sendsTheMixAtTheRateAndCountsEveryAnswer() async throws {
        try await Self.withSeededMonolith(contacts: 200) { monolith, target in
            let before = try await monolith.answer(.get, "/events?after=0&limit=1").json?["head"]?.numberValue ?? 0
            let run = TrafficRun(configuration: .init(target: target, rate: 200, duration: .seconds(1)))
            let pools = try await run.discover()
            #expect(
                pools.accounts.count == 40 && pools.contacts.count == 200 && pools.leads.count == 100
                    && pools.deals.count == 50)
            #expect(pools.hotAccounts.count == 5)
            let progress = LockedValue(0)
            let clock = ContinuousClock()
            let started = clock.now
            let snapshot = await run.run(pools: pools, progressEvery: .milliseconds(200)) { _ in
                progress.withLock { $0 += 1 }
            }
            let elapsed = clock.now - started
            let total = snapshot.total
            #expect(total.sent == 200 && total.completed == 200 && snapshot.skipped == 0)
            #expect(total.errors == 0, "\(snapshot.lastError ?? "")")
            #expect(total.classes[5] == 0)
            #expect(total.classes[2] >= 190, "\(total.classes)")
            #expect(snapshot.writes >= 25 && snapshot.writes <= 90, "\(snapshot.writes) writes")
            #expect(total.sent - snapshot.writes >= 110)
            #expect(Double(snapshot.hotRequests) / Double(snapshot.entityRequests) > 0.6)
            // Open loop at the rate: the last request leaves at about 1 s, not as fast as the monolith answers. (The
            // upper bound only catches a hang: with the suite running beside it, the answers can take seconds.)
            #expect(elapsed >= .milliseconds(950) && elapsed < .seconds(30), "\(elapsed)")
            #expect(progress.value >= 2)
            // The writes reached the monolith: its feed has new events.
            let after = try await monolith.answer(.get, "/events?after=0&limit=1").json?["head"]?.numberValue ?? 0
            #expect(after > before)

            let summary = TrafficCommand.summary(snapshot, configuration: run.configuration)
            #expect(summary.hasPrefix("200 requests in "), "\(summary)")
            #expect(summary.contains("GET /contacts/{id}") && summary.contains("PATCH /contacts/{id}"))
            let totalRow = try #require(summary.split(separator: "\n").first { $0.hasPrefix("total") })
            #expect(totalRow.split(separator: " ").prefix(2) == ["total", "200"], "\(totalRow)")
            // --output json: the same counts, as one object.
            let json = TrafficCommand.summaryJSON(snapshot, configuration: run.configuration)
            #expect(json["operations"]?["total"]?["sent"]?.numberValue == 200)
            #expect(
                json["operations"]?["GET /contacts/{id}"]?["sent"]?.numberValue
                    == Double(snapshot.byOperation[.getContact]?.sent ?? -1))
            #expect(json["planned"]?.numberValue == Double(snapshot.planned))
            #expect(json["operations"]?["total"]?["classes"]?["2xx"]?.numberValue == Double(snapshot.total.classes[2]))
        }
    }

    @Test func executeReportsProgressAndTheTableAndCreatesHotAccountsInAnEmptyCRM() async throws {
        try await Self.withSeededMonolith(contacts: 0) { monolith, target in
            let output = Output()
            let status = await TrafficCommand.execute(
                .init(target: target, rate: 100, duration: .milliseconds(600), hotAccounts: 3), terminal: false,
                progressEvery: .milliseconds(200),
                output: output.write)
            #expect(status == 0, "\(output.standardError)")
            #expect(
                output.standardError.contains("traffic: 3 accounts, 0 contacts, 0 leads, 0 deals found"),
                "\(output.standardError)")
            let progressLines = output.standardError.split(separator: "\n").filter {
                $0.contains("sent ") && $0.contains(" rps")
            }
            #expect(progressLines.count >= 2, "\(output.standardError)")
            #expect(progressLines.last?.contains("sent 60/60") == true, "\(output.standardError)")
            #expect(output.standardOutput.hasPrefix("60 requests in "), "\(output.standardOutput)")
            #expect(output.standardOutput.contains("\ntotal "))
            // The three hot accounts it created (conversions of the leads it created add more).
            let accounts = try await monolith.answer(.get, "/accounts?limit=200").json?["items"]?.arrayValue ?? []
            #expect(
                accounts.prefix(3).compactMap { $0["name"]?.stringValue } == ["Traffic 1", "Traffic 2", "Traffic 3"])
        }
    }

    @Test func anUnreachableTargetExitsThreeWithAClearMessage() async throws {
        let port = try LiveStack.freePorts(1)[0]
        let output = Output()
        let status = await TrafficCommand.execute(
            .init(target: FeedEndpoint(host: "127.0.0.1", port: port), rate: 10, duration: .seconds(1)),
            terminal: false,
            progressEvery: .seconds(1), output: output.write)
        #expect(status == 3)
        #expect(
            output.standardError.contains("strangler traffic: cannot reach http://127.0.0.1:\(port)"),
            "\(output.standardError)")
        #expect(output.standardError.contains("is `strangler up` (or the proxy) running?"))
        #expect(output.standardOutput.isEmpty)
    }

    @Test func aTargetThatIsNotTheCRMExitsThree() async throws {
        // A service answers /contacts but has no /accounts list.
        let app = Application(router: Router())
        try await app.test(.live) { client in
            let output = Output()
            let status = await TrafficCommand.execute(
                .init(
                    target: FeedEndpoint(host: "127.0.0.1", port: try #require(client.port)), rate: 10,
                    duration: .seconds(1)), terminal: false,
                progressEvery: .seconds(1), output: output.write)
            #expect(status == 3)
            #expect(output.standardError.contains("GET /accounts?limit=200 answered 404"), "\(output.standardError)")
        }
    }
}
