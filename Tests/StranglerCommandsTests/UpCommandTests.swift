import ArgumentParser
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import PostgresSupport
import ProxyTestSupport
import RouteTable
import ServiceKit
import StranglerTesting
import Synchronization
import Testing

@testable import StranglerCommands

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("strangler up", .loadsTheMachine)
struct UpCommandTests {
    static let repositoryRoutes: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("routes.json"), encoding: .utf8)) ?? ""
    }()

    // MARK: The plan

    /// The plan of `strangler up` with these flags (after `--routes`, which defaults to a copy of the repository's).
    static func plan(_ arguments: [String], routes: String = UpCommandTests.repositoryRoutes) throws -> UpPlan {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-up-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("routes.json").path
        try routes.write(toFile: path, atomically: true, encoding: .utf8)
        let command = try #require(try Strangler.parseAsRoot(["up", "--routes", path] + arguments) as? UpCommand)
        return try command.plan(executable: "/bin/strangler")
    }

    @Test func plansFiveProcessesOnTheRouteTablesPortsWithTheirDataUnderOneDirectory() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-up-\(UUID().uuidString)")
            .path
        let plan = try Self.plan(["--data", data])
        #expect(plan.children.map(\.name) == ["monolith", "contacts", "leads", "deals", "proxy"])
        #expect(plan.steps.map { $0.map(\.name) } == [["monolith"], ["contacts", "leads", "deals"], ["proxy"]])
        #expect(plan.ports.map(\.port) == [8081, 8082, 8083, 8084, 8080, 8090])
        #expect(plan.executable == "/bin/strangler")
        let monolith = Array(plan.monolith.arguments.prefix(7))
        #expect(monolith == ["monolith", "--port", "8081", "--db", "\(data)/monolith.sqlite", "--seed", "1000"])
        #expect(
            Array(plan.monolith.arguments.dropFirst(7)) == [
                "--reverse-sync", "contacts=http://127.0.0.1:8082", "--reverse-sync", "leads=http://127.0.0.1:8083",
                "--reverse-sync",
                "deals=http://127.0.0.1:8084",
            ])
        #expect(
            plan.services[1].arguments == [
                "service", "leads", "--port", "8083", "--db", "\(data)/leads.sqlite", "--feed", "http://127.0.0.1:8081",
            ])
        #expect(Array(plan.proxy.arguments.suffix(6)) == ["--port", "8080", "--admin-port", "8090", "--data", data])
        #expect(!plan.reusesData)

        let summary = plan.summary(tokenFromEnvironment: false)
        for expected in [
            "http://127.0.0.1:8080", "http://127.0.0.1:8090", "http://127.0.0.1:8081", "http://127.0.0.1:8082",
            "http://127.0.0.1:8083",
            "http://127.0.0.1:8084", "token in \(data)/admin-token", "swift run strangler traffic ",
            "swift run strangler routes --data \(data) ",
            "first run: 1000 demo contacts seeded",
        ] {
            #expect(summary.contains(expected), "\(expected) in:\n\(summary)")
        }
    }

    /// `--postgres`: the proxy on the shared store, leads on PostgreSQL, both told the URL without its password.
    @Test func postgresPutsTheProxysStoreAndTheLeadsServiceThere() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-up-\(UUID().uuidString)")
            .path
        let plan = try Self.plan(["--data", data, "--postgres", "postgres://crm:s3cret@db.internal:6543/crm"])
        let url = "postgres://crm@db.internal:6543/crm"
        #expect(plan.postgres?.description == url)
        #expect(
            plan.services.map { $0.arguments[5] } == ["\(data)/contacts.sqlite", url, "\(data)/deals.sqlite"])
        #expect(Array(plan.proxy.arguments.suffix(2)) == ["--store", url])
        #expect(!plan.children.flatMap(\.arguments).joined(separator: " ").contains("s3cret"))
        #expect(plan.summary(tokenFromEnvironment: false).contains(url))
        for bad in ["mysql://u@h/db", "postgres://h/db"] {
            #expect(throws: (any Error).self, "\(bad)") { try Self.plan(["--postgres", bad]) }
        }
    }

    @Test func aSecondRunReusesTheDataAndTheSummarySaysHowToReachNonDefaultPorts() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: data) }
        _ = FileManager.default.createFile(
            atPath: data.appendingPathComponent("monolith.sqlite").path, contents: Data())
        let plan = try Self.plan(["--data", data.path + "/", "--port", "9080", "--admin-port", "9090", "--seed", "10"])
        #expect(plan.reusesData)
        #expect(plan.services[0].database == data.path + "/contacts.sqlite")
        let summary = plan.summary(tokenFromEnvironment: true)
        #expect(summary.contains("reusing the data in \(data.path)/"))
        #expect(summary.contains("strangler traffic --target http://127.0.0.1:9080"))
        #expect(summary.contains("strangler routes --admin http://127.0.0.1:9090 --data \(data.path)/"))
        #expect(summary.contains("token from STRANGLER_ADMIN_TOKEN"))
    }

    @Test func refusesARouteTableThatSendsTrafficElsewhereOrTwoProcessesOnOnePort() throws {
        let remote = Self.repositoryRoutes.replacingOccurrences(
            of: "http://127.0.0.1:8083", with: "http://10.0.0.7:8083")
        #expect {
            _ = try Self.plan([], routes: remote)
        } throws: { "\($0)".contains("the leads service is http://10.0.0.7:8083, not on 127.0.0.1") }
        #expect {
            _ = try Self.plan(["--port", "8082"])
        } throws: { "\($0)".contains("the proxy (--port) and the contacts service would both listen on port 8082") }
        #expect {
            _ = try Self.plan([], routes: "{}")
        } throws: { "\($0)".contains("routes.json: ") }
    }

    @Test func refusesBadFlagsWithAMessageNamingThem() throws {
        let cases: [([String], String)] = [
            (["--port", "0"], "--port"),
            (["--admin-port", "70000"], "--admin-port"),
            (["--port", "9000", "--admin-port", "9000"], "must differ"),
            (["--seed", "-1"], "--seed"),
            (["--startup-timeout", "10x"], "--startup-timeout"),
            (["--startup-timeout", "0s"], "--startup-timeout"),
            (["--data", ""], "--data"),
        ]
        for (arguments, fragment) in cases {
            do {
                _ = try Strangler.parseAsRoot(["up"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(
                    Strangler.message(for: error).contains(fragment), "\(arguments): \(Strangler.message(for: error))")
                #expect(Strangler.exitCode(for: error) != .success)
            }
        }
        let defaults = try #require(try Strangler.parseAsRoot(["up"]) as? UpCommand)
        #expect(defaults.routes == "routes.json" && defaults.data == ".strangler" && defaults.seed == 1000)
        #expect(defaults.port == 8080 && defaults.adminPort == 8090)
    }

    @Test func instancesAreWrittenIntoTheTableAndEachRunsAsAProcessOnTheServicesDatabase() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-up-instances-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("routes.json").path
        try Self.repositoryRoutes.write(toFile: path, atomically: true, encoding: .utf8)
        func plan(_ arguments: [String]) throws -> UpPlan {
            let command = try #require(
                try Strangler.parseAsRoot(["up", "--routes", path, "--data", "d"] + arguments) as? UpCommand)
            return try command.plan(executable: "/bin/strangler")
        }

        let scaled = try plan(["--instances", "leads=3"])
        #expect(
            scaled.children.map(\.name) == ["monolith", "contacts", "leads", "leads-2", "leads-3", "deals", "proxy"])
        #expect(scaled.services.filter { $0.arguments[1] == "leads" }.map(\.port) == [8083, 8183, 8283])
        #expect(scaled.services.filter { $0.arguments[1] == "leads" }.allSatisfy { $0.database == "d/leads.sqlite" })
        #expect(
            scaled.monolith.arguments.filter { $0.hasPrefix("leads=") } == ["leads=http://127.0.0.1:8083"],
            "the first instance's feed: they share one database")
        let table = try RouteTable.parse(try String(contentsOfFile: path, encoding: .utf8))
        #expect(
            table.groups["leads"]?.instances.map(\.url)
                == ["http://127.0.0.1:8083", "http://127.0.0.1:8183", "http://127.0.0.1:8283"])
        #expect(table.routes.count == (try RouteTable.parse(Self.repositoryRoutes)).routes.count)

        // Without the flag, the table's instances run; leads=1 goes back to one URL.
        #expect(try plan([]).services.count == 5)
        #expect(try plan(["--instances", "leads=1"]).services.map(\.name) == ["contacts", "leads", "deals"])
        let back = try RouteTable.parse(try String(contentsOfFile: path, encoding: .utf8))
        #expect(back.document["services"]?["leads"]?["url"] == .string("http://127.0.0.1:8083"))
        #expect(back.document["services"]?["leads"]?["instances"] == nil)
        #expect(back.document["services"]?["leads"]?["entities"] != nil, "the rest of the declaration stays")
    }

    @Test func badInstanceCountsAreRefused() {
        for (value, fragment) in [
            ("leads", "NAME=N"), ("leads=0", "from 1 to 16"), ("leads=17", "from 1 to 16"),
            ("billing=2", "not a service `up` runs"), ("leads=2,leads=3", "names leads twice"),
        ] {
            do {
                _ = try Strangler.parseAsRoot(["up", "--instances", value])
                Issue.record("\(value) was accepted")
            } catch {
                #expect(Strangler.message(for: error).contains(fragment), "\(value): \(Strangler.message(for: error))")
            }
        }
    }

    @Test func linesAreCutAtNewlinesWithTheLastPartialLineKeptForTheEnd() {
        var splitter = UpLineSplitter()
        #expect(splitter.lines(in: Array("one\ntw".utf8)) == ["one"])
        #expect(splitter.lines(in: Array("o\r\nthree\n\nfo".utf8)) == ["two", "three", ""])
        #expect(splitter.finish() == "fo")
        #expect(splitter.finish() == nil)
    }

    // MARK: Live: the real executable, five real processes

    @Test(.needsExecutableAndProc)
    func upStartsAllFiveAndStopsThemOnSIGTERMThenASecondUpReusesTheData() async throws {
        let stack = try LiveStack()
        defer { stack.cleanUp() }

        // First run: seeded, all five answer, five children, one write through the proxy.
        let first = try stack.launch()
        defer { first.killAll() }
        #expect(await first.waitForOutput("Strangler is up (first run: 40 demo contacts seeded)"), "\(first.output)")
        let children = first.children()
        #expect(children.count == 5, "\(children)")
        #expect(
            Set(children.map(\.role)) == ["monolith", "service contacts", "service leads", "service deals", "proxy"])
        let id: String
        do {
            try await stack.expectAllAnswer()
            let contacts = try await stack.get(stack.proxyPort, "/contacts?limit=200")
            #expect(contacts.json?["items"]?.arrayValue?.count == 40)
            id = try #require(contacts.json?["items"]?.arrayValue?.first?["id"]?.stringValue)
            let patched = try await OneShotHTTPClient(host: "127.0.0.1", port: stack.proxyPort)
                .send(
                    .PATCH, "/contacts/\(id)", headers: ["Content-Type": "application/json"],
                    body: ByteBuffer(string: #"{"title":"Survives restarts"}"#))
            #expect(patched.status == 200)
        } catch {
            // What the five processes said is the only clue to a failure here.
            Issue.record("\(error); up's output so far:\n\(first.output)")
            throw error
        }

        kill(first.process.pid, SIGTERM)
        #expect(await eventually(within: .seconds(30)) { !first.process.isRunning }, "up did not stop: \(first.output)")
        #expect(first.process.terminationStatus == 0, "\(first.output)")
        #expect(
            children.allSatisfy { !LiveStack.exists($0.pid) },
            "left running: \(children.filter { LiveStack.exists($0.pid) })")
        #expect(first.output.contains("proxy stopped (cleanly"))
        #expect(first.output.contains("monolith stopped (cleanly"))
        #expect(first.output.contains("[up]") && first.output.contains("all stopped"))
        // Every child's output came through, under its name.
        for name in ["[monolith]", "[contacts]", "[leads]", "[deals]", "[proxy]"] {
            #expect(first.output.contains(name), "\(name)")
        }

        // Second run on the same data: not seeded again, the write is still there; SIGINT stops it too.
        let second = try stack.launch()
        defer { second.killAll() }
        #expect(await second.waitForOutput("Strangler is up (reusing the data in"), "\(second.output)")
        #expect(second.output.contains("reusing the data"))
        let again = try await stack.get(stack.proxyPort, "/contacts?limit=200")
        #expect(again.json?["items"]?.arrayValue?.count == 40)
        #expect(
            try await stack.get(stack.proxyPort, "/contacts/\(id)").json?["title"]?.stringValue == "Survives restarts")
        let secondChildren = second.children()
        #expect(secondChildren.count == 5)
        kill(second.process.pid, SIGINT)
        #expect(await eventually(within: .seconds(30)) { !second.process.isRunning })
        #expect(second.process.terminationStatus == 0, "\(second.output)")
        #expect(secondChildren.allSatisfy { !LiveStack.exists($0.pid) })
    }

    /// `up --postgres` against a real server: the proxy routes by the table on the store, leads answers from its
    /// tables there, and a lead written through the proxy (eliminated) reaches the monolith.
    @Test(.needsExecutableAndProc)
    func upOnPostgreSQLRunsTheProxyOnTheStoreAndLeadsOnItsTables() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        let stack = try LiveStack()
        defer { stack.cleanUp() }
        let run = try stack.launch(seed: 10, extra: ["--postgres", url])
        defer { run.killAll() }
        #expect(await run.waitForOutput("Strangler is up"), "\(run.output)")
        do {
            try await stack.expectAllAnswer()
            let token = try String(contentsOfFile: stack.dataPath + "/admin-token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let status = try await stack.get(
                stack.adminPort, "/admin/status", headers: ["Authorization": "Bearer \(token)"])
            #expect(status.json?["store"]?["reachable"]?.boolValue == true, "\(status.json?["store"] ?? .null)")
            // The leads service's own tables are in the schema leads of that database, synced from the monolith.
            let leadsPort = stack.servicePorts[1]
            let direct = try await stack.get(leadsPort, "/leads?limit=200")
            let monolith = try await stack.get(stack.monolithPort, "/leads?limit=200")
            #expect(
                await eventually(within: .seconds(30)) {
                    (try? await stack.get(leadsPort, "/leads?limit=200"))?.json == monolith.json
                }, "\(direct.json ?? .null)")
            let schema = try await PostgresServer.shared().query(
                url, "SELECT count(*)::text FROM leads.leads")
            #expect(schema == ["\(monolith.json?["items"]?.arrayValue?.count ?? -1)"])
        } catch {
            Issue.record("\(error); up's output so far:\n\(run.output)")
            throw error
        }
        kill(run.process.pid, SIGTERM)
        #expect(await eventually(within: .seconds(30)) { !run.process.isRunning }, "up did not stop: \(run.output)")
        #expect(run.process.terminationStatus == 0, "\(run.output)")
    }

    @Test(.needsExecutableAndProc)
    func whenAChildDiesUpNamesItStopsTheOthersAndExitsOne() async throws {
        let stack = try LiveStack()
        defer { stack.cleanUp() }
        let run = try stack.launch(seed: 0)
        defer { run.killAll() }
        #expect(await run.waitForOutput("Strangler is up"), "\(run.output)")
        let children = run.children()
        let deals = try #require(children.first { $0.role == "service deals" })
        kill(deals.pid, SIGKILL)
        #expect(await eventually(within: .seconds(30)) { !run.process.isRunning }, "\(run.output)")
        #expect(run.process.terminationStatus == 1)
        #expect(
            run.output.contains("deals (pid \(deals.pid)) died: killed by SIGKILL; stopping the others"),
            "\(run.output)")
        #expect(children.allSatisfy { !LiveStack.exists($0.pid) })
    }

    @Test(.needsExecutableAndProc)
    func whenUpIsKilledItsChildrenStopOnTheirOwn() async throws {
        let stack = try LiveStack()
        defer { stack.cleanUp() }
        let run = try stack.launch(seed: 0)
        defer { run.killAll() }
        #expect(await run.waitForOutput("Strangler is up"), "\(run.output)")
        let children = run.children()
        defer { for child in children where LiveStack.exists(child.pid) { kill(child.pid, SIGKILL) } }
        #expect(children.count == 5)
        // SIGKILL gives `up` no chance to stop anything: each child notices that its parent is gone and stops itself.
        kill(run.process.pid, SIGKILL)
        #expect(
            await eventually(within: .seconds(30)) { children.allSatisfy { !LiveStack.exists($0.pid) } }, "\(children)")
    }

    @Test(.enabled(if: StranglerExecutable.url != nil, "needs .build/debug/strangler"))
    func aProcessThatFailsToStartStopsUpWithItsReason() async throws {
        let stack = try LiveStack()
        defer { stack.cleanUp() }
        // The monolith cannot open a database that is a directory.
        try FileManager.default.createDirectory(
            atPath: stack.dataPath + "/monolith.sqlite", withIntermediateDirectories: true)
        let run = try stack.launch()
        defer { run.killAll() }
        #expect(await eventually(within: .seconds(60)) { !run.process.isRunning }, "\(run.output)")
        #expect(run.process.terminationStatus == 1)
        #expect(run.output.contains("monolith exited during startup (exit status 1)"), "\(run.output)")
        #expect(run.output.contains("[monolith] "))
        #expect(!run.output.contains("starting contacts") && !run.output.contains("Strangler is up"))
    }

    @Test(.enabled(if: StranglerExecutable.url != nil, "needs .build/debug/strangler"))
    func aBusyPortStopsUpBeforeAnythingStartsNamingThePortAndItsHolder() async throws {
        let stack = try LiveStack()
        defer { stack.cleanUp() }
        // This test process holds the proxy's admin port.
        let holder = try LiveStack.listening(port: stack.adminPort)
        defer { close(holder) }
        let run = try stack.launch()
        defer { run.killAll() }
        #expect(await eventually(within: .seconds(30)) { !run.process.isRunning })
        #expect(run.process.terminationStatus == 1)
        #expect(run.output.contains("port \(stack.adminPort) (the proxy's admin API) is in use by"), "\(run.output)")
        #if os(Linux)
        #expect(run.output.contains("pid \(getpid())"), "\(run.output)")
        #endif
        #expect(run.output.contains("nothing started"))
        #expect(!run.output.contains("starting monolith"))
    }
}

/// A temporary data directory and route table on free ports, for `strangler up` runs of the built executable.
extension Trait where Self == ConditionTrait {
    /// The live tests run the built executable and read its children from /proc.
    static var needsExecutableAndProc: Self {
        .enabled(
            if: StranglerExecutable.url != nil && FileManager.default.fileExists(atPath: "/proc/self/stat"),
            "needs .build/debug/strangler and /proc")
    }
}

struct LiveStack {
    let directory: URL
    let routesPath: String
    let dataPath: String
    let monolithPort: Int
    let servicePorts: [Int]
    let proxyPort: Int
    let adminPort: Int

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let ports = try Self.freePorts(6)
        (self.monolithPort, self.servicePorts, self.proxyPort, self.adminPort) = (
            ports[0], Array(ports[1...3]), ports[4], ports[5]
        )
        var routes = UpCommandTests.repositoryRoutes
        for (old, new) in zip([8081, 8082, 8083, 8084], [self.monolithPort] + self.servicePorts) {
            routes = routes.replacingOccurrences(of: "http://127.0.0.1:\(old)", with: "http://127.0.0.1:\(new)")
        }
        self.routesPath = self.directory.appendingPathComponent("routes.json").path
        try routes.write(toFile: self.routesPath, atomically: true, encoding: .utf8)
        self.dataPath = self.directory.appendingPathComponent("data").path
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Runs `strangler up` with its output (both streams) in a file.
    func launch(seed: Int = 40, extra: [String] = []) throws -> LiveRun {
        let log = self.directory.appendingPathComponent("up-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        var environment = ProcessInfo.processInfo.environment
        environment["STRANGLER_ADMIN_TOKEN"] = nil
        let process = try ChildProcess(
            executable: try #require(StranglerExecutable.url).path,
            arguments: [
                "up", "--routes", self.routesPath, "--data", self.dataPath, "--port", "\(self.proxyPort)",
                "--admin-port", "\(self.adminPort)",
                "--seed", "\(seed)",
            ] + extra,
            environment: environment, output: log.path)
        return LiveRun(process: process, log: log)
    }

    func get(_ port: Int, _ path: String, headers: HTTPHeaders = [:]) async throws -> (status: Int, json: JSONValue?) {
        let answer = try await OneShotHTTPClient(host: "127.0.0.1", port: port).send(.GET, path, headers: headers)
        return (answer.status, try? JSONParser.parse(Array(answer.body.readableBytesView)))
    }

    /// The monolith and the services answer their health checks, the proxy forwards, its admin API takes the token.
    func expectAllAnswer(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for port in [self.monolithPort] + self.servicePorts + [self.proxyPort] {
            let health = try await self.get(port, "/healthz")
            #expect(
                health.status == 200 && health.json?["status"]?.stringValue == "ok", "port \(port)",
                sourceLocation: sourceLocation)
        }
        let token = try String(contentsOfFile: self.dataPath + "/admin-token", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let status = try await self.get(self.adminPort, "/admin/status", headers: ["Authorization": "Bearer \(token)"])
        #expect(status.status == 200, sourceLocation: sourceLocation)
        for port in self.servicePorts {
            #expect(try await self.get(port, "/sync/status").status == 200, sourceLocation: sourceLocation)
        }
    }

    /// Distinct ports that were free a moment ago (each held until all are chosen), below Linux's ephemeral range
    /// (32768 and up) so that the outgoing connections of tests running meanwhile cannot take them, and never one
    /// handed to another stack of this test run: a stack's processes bind their ports seconds after they were
    /// chosen, and another stack starting meanwhile would find them free.
    static func freePorts(_ count: Int) throws -> [Int] {
        var descriptors: [Int32] = []
        defer { for descriptor in descriptors { close(descriptor) } }
        var ports: [Int] = []
        for _ in 0..<1000 where ports.count < count {
            let port = Int.random(in: 20_000..<32_000)
            guard !ports.contains(port), !Self.handedOut.withLock({ $0.contains(port) }),
                let descriptor = try? Self.listening(port: port)
            else { continue }
            descriptors.append(descriptor)
            ports.append(port)
        }
        guard ports.count == count else { throw POSIXError(.EADDRINUSE) }
        Self.handedOut.withLock { $0.formUnion(ports) }
        return ports
    }

    /// Every port `freePorts` chose in this process.
    static let handedOut = Mutex<Set<Int>>([])

    /// A listening socket on 127.0.0.1:`port`.
    static func listening(port: Int) throws -> Int32 {
        #if canImport(Glibc)
        // Close-on-exec: a process another test starts meanwhile must not inherit the socket (and be named its holder).
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard descriptor >= 0, bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        return descriptor
    }

    /// Whether a process with this pid exists (a zombie counts as gone).
    static func exists(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return !stat[close...].hasPrefix(") Z")
    }
}

/// One `strangler up` process of a test.
struct LiveRun {
    struct Child: CustomStringConvertible {
        var pid: pid_t
        /// `monolith`, `service contacts`, …, `proxy`.
        var role: String
        var description: String { "\(self.pid) \(self.role)" }
    }

    let process: ChildProcess
    let log: URL

    var output: String { (try? String(contentsOf: self.log, encoding: .utf8)) ?? "" }

    func waitForOutput(_ text: String) async -> Bool {
        await eventually(within: .seconds(120)) { self.output.contains(text) || !self.process.isRunning }
            && self.output.contains(text)
    }

    /// The processes whose parent is this `up` (from /proc), by their subcommand.
    func children() -> [Child] {
        let parent = self.process.pid
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var children: [Child] = []
        for entry in entries {
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After the command name in parentheses: state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, pid_t(fields[1]) == parent, fields[0] != "Z" else { continue }
            let arguments = (FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") ?? Data()).split(
                separator: 0
            ).map {
                String(decoding: $0, as: UTF8.self)
            }
            let role =
                arguments.count > 2 && arguments[1] == "service"
                ? "service \(arguments[2])" : arguments.count > 1 ? arguments[1] : "?"
            children.append(Child(pid: pid, role: role))
        }
        return children
    }

    /// Leaves nothing running, whatever the test's outcome.
    func killAll() {
        for child in self.children() { kill(child.pid, SIGKILL) }
        if self.process.isRunning { self.process.kill() }
    }
}
