public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import PostgresSupport
import RouteTable
import ServiceKit
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strangler up`: the whole demo stack in one command: the monolith, the three extracted services and the
/// proxy, as child processes of this executable, with their data under one directory.
public struct UpCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "up",
        abstract:
            "Run the whole demo stack: the monolith, the contacts, leads and deals services, and the proxy in front.",
        discussion: """
            Starts five processes of this executable, each once the one before answers its health check: the monolith \
            (seeded with --seed demo contacts on first run), the three services (each following the monolith's event \
            feed), then the proxy. Their output is prefixed with their name. Everything they keep is under --data: \
            monolith.sqlite, contacts.sqlite, leads.sqlite, deals.sqlite, and the proxy's admin token, audit log and \
            diffs.sqlite; a second `up` carries on with the same data.

            The monolith and the services listen where routes.json sends traffic (8081, 8082, 8083 and 8084 in the \
            repository's table); the proxy listens on --port and its admin API on --admin-port. A busy port stops `up` \
            before anything starts, naming what holds it.

            A service whose group in routes.json lists several local instances ("instances") runs as one process per \
            instance, all on the service's one database; the proxy spreads requests over them. --instances NAME=N \
            writes N instances for a service into routes.json first (ports P, P+100, P+200…, P being its first \
            instance's port), and --instances NAME=1 goes back to one.

            --postgres URL (postgres://USER@HOST:PORT/DB) runs the stack on PostgreSQL: the proxy keeps its route \
            table, audit log and evidence there (--store, seeded from --routes when the store holds no table yet; \
            docs/scale-out.md) and the leads service its tables (in the schema leads); the monolith and the other \
            services stay on SQLite under --data. A password in the URL is handed to the children in PGPASSWORD, never \
            on their command lines.

            Ctrl-C or SIGTERM stops the proxy, then the services, then the monolith, each given 10 s before SIGKILL (a \
            second Ctrl-C kills at once). If one of them dies, `up` stops the others and exits with status 1.

            Example:
              strangler up
              strangler up --routes routes.json --data .strangler --seed 5000
              strangler up --instances leads=3
              strangler up --postgres postgres://strangler@127.0.0.1:5432/strangler
            """
    )

    @Option(help: "The route table the proxy serves (and where the monolith's and services' ports come from).")
    public var routes: String = "routes.json"

    @Option(help: "Data directory: the databases, the admin token, the audit log and the diff store.")
    public var data: String = ".strangler"

    @Option(
        help: ArgumentHelp(
            "Demo contacts seeded into an empty monolith (with proportionate accounts, leads and deals); 0 for none.",
            valueName: "N"))
    public var seed: Int = 1000

    @Option(help: "The proxy's port for client traffic.")
    public var port: Int = 8080

    @Option(help: "The proxy's admin API port (127.0.0.1 only).")
    public var adminPort: Int = 8090

    @Option(
        help: ArgumentHelp(
            "How long each process may take to answer its health check (e.g. 60s, 2m).", valueName: "duration"))
    public var startupTimeout: String = "60s"

    @Option(
        help: ArgumentHelp(
            "A PostgreSQL database for the proxy's shared store and the leads service's tables.",
            valueName: "postgres://USER@HOST:PORT/DB"))
    public var postgres: String?

    public init() {}

    /// `--postgres`, read (nil without it).
    func postgresLocation() throws(ValidationError) -> StoreLocation? {
        guard let postgres else { return nil }
        return try StoreFlag.location(postgres, flag: "--postgres")
    }

    @Option(
        help: ArgumentHelp(
            "Run N instances of a service (written into routes.json first; repeat, or leads=3,deals=2).",
            valueName: "name=N"))
    public var instances: [String] = []

    /// `--instances`, read: service name → instance count.
    func instanceCounts() throws(ValidationError) -> [(name: String, count: Int)] {
        var counts: [(name: String, count: Int)] = []
        for item in self.instances.flatMap({ $0.split(separator: ",") }) {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, let count = Int(parts[1]), (1...16).contains(count) else {
                throw ValidationError("--instances takes NAME=N with N from 1 to 16, such as leads=3, not \"\(item)\"")
            }
            let name = String(parts[0])
            guard UpPlan.serviceNames.contains(name) else {
                throw ValidationError(
                    "--instances: \"\(name)\" is not a service `up` runs (\(UpPlan.serviceNames.joined(separator: ", ")))"
                )
            }
            guard !counts.contains(where: { $0.name == name }) else {
                throw ValidationError("--instances names \(name) twice")
            }
            counts.append((name, count))
        }
        return counts
    }

    public func validate() throws {
        _ = try self.instanceCounts()
        _ = try self.postgresLocation()
        try PortFlags.validate([("--port", self.port), ("--admin-port", self.adminPort)], in: 1...65535)
        guard self.port != self.adminPort else {
            throw ValidationError("--port and --admin-port must differ (both are \(self.port))")
        }
        guard self.seed >= 0 else { throw ValidationError("--seed must be 0 or more, not \(self.seed)") }
        guard !self.data.isEmpty else { throw ValidationError("--data must name a directory") }
        guard !self.routes.isEmpty else { throw ValidationError("--routes must name a file") }
        guard let timeout = DurationText.parse(self.startupTimeout), timeout > .zero else {
            throw ValidationError(
                "--startup-timeout must be a duration such as 60s, 2m or 500ms, not \"\(self.startupTimeout)\"")
        }
    }

    public func run() async throws {
        let plan: UpPlan
        do {
            plan = try self.plan(executable: UpPlan.currentExecutable())
        } catch {
            FileHandle.standardError.write(Data("strangler up: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // The children inherit the environment: a password in --postgres reaches them there, not in their arguments
        // (which `ps` and `up`'s own output show).
        if let password = (try? self.postgresLocation())??.password { setenv("PGPASSWORD", password, 1) }
        // Output to a closed pipe fails as an error, not as a SIGPIPE that would leave the children running.
        signal(SIGPIPE, SIG_IGN)
        // Trapped before the first child starts, so a Ctrl-C during startup stops what has started.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let status = await UpStack(plan: plan, console: UpConsole()).run(signals: signals)
        if status != 0 { throw ExitCode(status) }
    }

    /// What `up` starts, from the flags and routes.json.
    func plan(executable: String) throws(UpPlan.Failure) -> UpPlan {
        guard FileManager.default.fileExists(atPath: self.routes) else {
            throw UpPlan.Failure(
                description: "no route table at \(self.routes) (run from the repository, or pass --routes)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: self.routes, encoding: .utf8)
        } catch {
            throw UpPlan.Failure(description: "cannot read \(self.routes): \(error.localizedDescription)")
        }
        var table: RouteTable
        do {
            table = try RouteTable.parse(text)
        } catch {
            throw UpPlan.Failure(description: "\(self.routes): \(error)")
        }
        let counts = (try? self.instanceCounts()) ?? []
        if let scaled = try UpPlan.scaling(table, text: text, to: counts, routesPath: self.routes) {
            do {
                try AtomicFile.write(scaled.text, to: self.routes)
            } catch {
                throw UpPlan.Failure(description: "cannot write \(self.routes): \(error)")
            }
            print(scaled.note)
            table = scaled.table
        }
        return try UpPlan(
            executable: executable, routesPath: self.routes, table: table, dataDirectory: self.data, seed: self.seed,
            proxyPort: self.port, adminPort: self.adminPort,
            startupTimeout: DurationText.parse(self.startupTimeout) ?? .seconds(60),
            postgres: try? self.postgresLocation())
    }
}

/// The processes `up` runs, with their arguments and ports: a pure value, decided before anything starts.
struct UpPlan: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One child process.
    struct Child: Sendable, Equatable {
        enum Role: Sendable, Equatable {
            case monolith, service, proxy
        }

        /// `monolith`, `contacts`, `leads`, `deals` or `proxy`: the prefix of its output lines.
        var name: String
        var role: Role
        /// The arguments after the executable (`monolith --port 8081 …`).
        var arguments: [String]
        /// Where it answers `GET /healthz` (the proxy: its client port).
        var port: Int
        /// Its SQLite file, or its PostgreSQL database (nil for the proxy).
        var database: String?

        /// What it runs: `monolith`, the service's name (`leads` for `leads-2` too), or `proxy`; its `Server` header
        /// says `strangler-<program>`.
        var program: String { self.role == .service ? self.arguments[1] : self.name }
    }

    /// The extracted services, in start order.
    static let serviceNames = ["contacts", "leads", "deals"]

    var executable: String
    var routesPath: String
    var dataDirectory: String
    var seed: Int
    var monolith: Child
    var services: [Child]
    var proxy: Child
    var adminPort: Int
    var startupTimeout: Duration
    /// The PostgreSQL database of the proxy's store and the leads service (`--postgres`), if any.
    var postgres: StoreLocation?
    /// Whether the monolith's database already existed (so nothing is seeded).
    var reusesData: Bool
    /// The route table's size and stages, for the summary.
    var routeCount: Int
    var stageCounts: [(stage: String, count: Int)]

    /// Every child in start order.
    var children: [Child] { [self.monolith] + self.services + [self.proxy] }

    /// The start steps: the monolith, the three services together, the proxy. Stopping walks them backwards.
    var steps: [[Child]] { [[self.monolith], self.services, [self.proxy]] }

    init(
        executable: String, routesPath: String, table: RouteTable, dataDirectory: String, seed: Int, proxyPort: Int,
        adminPort: Int,
        startupTimeout: Duration, postgres: StoreLocation? = nil,
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) throws(Failure) {
        func localPort(_ upstream: Upstream, _ what: String) throws(Failure) -> Int {
            guard ["127.0.0.1", "localhost"].contains(upstream.host.lowercased()) else {
                throw Failure(
                    description:
                        "\(routesPath): \(what) is \(upstream.url), not on 127.0.0.1; `up` starts every process on "
                        + "this machine, so point it at http://127.0.0.1:PORT"
                )
            }
            return upstream.port
        }
        func child(_ file: String) -> String { Self.dataFile(file, in: dataDirectory) }

        guard table.monolithGroup.instances.count == 1 else {
            throw Failure(
                description:
                    "\(routesPath): the monolith has \(table.monolithGroup.instances.count) instances; `up` runs one "
                    + "monolith (its database is a single file)")
        }
        let monolithPort = try localPort(table.monolith, "the monolith")
        // One process per instance of each service: the first keeps the service's name, the others are NAME-2, ….
        var servicePorts: [(service: String, name: String, port: Int)] = []
        for name in Self.serviceNames {
            guard let group = table.groups[name] else {
                servicePorts.append((name, name, ServiceConfiguration.defaultPorts[name]!))
                continue
            }
            for (index, instance) in group.instances.enumerated() {
                let what = index == 0 ? "the \(name) service" : "instance \(index + 1) of the \(name) service"
                guard instance.pathPrefix.isEmpty, !instance.isTLS else {
                    throw Failure(
                        description:
                            "\(routesPath): \(what) is \(instance.url); `up` runs services on plain http://127.0.0.1:PORT "
                            + "without a path")
                }
                servicePorts.append((name, index == 0 ? name : "\(name)-\(index + 1)", try localPort(instance, what)))
            }
        }
        let ports =
            [("the monolith", monolithPort)]
            + servicePorts.map { ($0.service == $0.name ? "the \($0.name) service" : $0.name, $0.port) } + [
                ("the proxy (--port)", proxyPort), ("the admin API (--admin-port)", adminPort),
            ]
        for (index, (what, port)) in ports.enumerated() {
            if let other = ports[..<index].first(where: { $0.1 == port }) {
                throw Failure(
                    description: "\(what) and \(other.0) would both listen on port \(port); give each its own port")
            }
        }

        let feed = "http://127.0.0.1:\(monolithPort)"
        let monolithDatabase = child("monolith.sqlite")
        var monolithArguments = [
            "monolith", "--port", "\(monolithPort)", "--db", monolithDatabase, "--seed", "\(seed)",
        ]
        // The monolith follows each service's own event feed (reverse sync: the writes clients make on a service
        // reach the monolith's tables); it retries until the services, started after it, answer.
        // Instances of one service share its database, so the first one's feed has all of their writes.
        for (service, name, port) in servicePorts where service == name {
            monolithArguments += ["--reverse-sync", "\(name)=http://127.0.0.1:\(port)"]
        }
        self.executable = executable
        self.routesPath = routesPath
        self.dataDirectory = dataDirectory
        self.seed = seed
        self.monolith = Child(
            name: "monolith", role: .monolith, arguments: monolithArguments, port: monolithPort,
            database: monolithDatabase)
        self.services = servicePorts.map { service, name, port in
            // Without its password, which the children find in PGPASSWORD.
            let database =
                service == "leads" ? postgres?.description ?? child("leads.sqlite") : child("\(service).sqlite")
            return Child(
                name: name, role: .service,
                arguments: ["service", service, "--port", "\(port)", "--db", database, "--feed", feed],
                port: port, database: database)
        }
        self.proxy = Child(
            name: "proxy", role: .proxy,
            arguments: [
                "proxy", "--routes", routesPath, "--port", "\(proxyPort)", "--admin-port", "\(adminPort)", "--data",
                dataDirectory,
            ] + (postgres.map { ["--store", $0.description] } ?? []),
            port: proxyPort, database: postgres?.description)
        self.postgres = postgres
        self.adminPort = adminPort
        self.startupTimeout = startupTimeout
        self.reusesData = fileExists(monolithDatabase)
        self.routeCount = table.routes.count
        self.stageCounts = Stage.allCases.map { stage in
            (stage.rawValue, table.routes.filter { $0.stage == stage }.count)
        }.filter { $0.count > 0 }
    }

    /// The table with `counts` instances for the services named (ports P, P+100, P+200… from the first instance's
    /// port P), as text to write and a note to print; nil when every count is already the table's. The rest of the
    /// file is kept (its formatting too when only values change).
    static func scaling(
        _ table: RouteTable, text: String, to counts: [(name: String, count: Int)], routesPath: String
    ) throws(Failure) -> (table: RouteTable, text: String, note: String)? {
        var document = table.document
        var notes: [String] = []
        for (name, count) in counts {
            let first = table.groups[name]?.primary
            guard count != (table.groups[name]?.instances.count ?? 1) else { continue }
            guard let first else {
                throw Failure(description: "--instances: \(routesPath) does not declare the \(name) service")
            }
            guard first.port + 100 * (count - 1) <= 65535 else {
                throw Failure(description: "--instances \(name)=\(count): ports past 65535 from \(first.port)")
            }
            let urls = (0..<count).map { index in "http://\(first.host):\(first.port + 100 * index)" }
            guard case .object(var top) = document, let at = top.firstIndex(where: { $0.key == "services" }),
                case .object(var services) = top[at].value, let index = services.firstIndex(where: { $0.key == name })
            else { continue }
            let instances: JSONValue = count == 1 ? .string(urls[0]) : .array(urls.map(JSONValue.string))
            var members: [(key: String, value: JSONValue)]
            switch services[index].value {
            case .object(let fields):
                members = fields.filter { $0.key != "url" && $0.key != "instances" }
                members.insert((count == 1 ? "url" : "instances", instances), at: 0)
            default:
                members = [(count == 1 ? "url" : "instances", instances)]
            }
            services[index].value = count == 1 && members.count == 1 ? .string(urls[0]) : .object(members)
            top[at].value = .object(services)
            document = .object(top)
            notes.append("\(name): \(count) instance\(count == 1 ? "" : "s") (\(urls.joined(separator: ", ")))")
        }
        guard !notes.isEmpty else { return nil }
        let edited = JSONTextEdit.editing(text, into: document) ?? document.prettyJSONText
        let scaled: RouteTable
        do {
            scaled = try RouteTable.parse(edited)
        } catch {
            throw Failure(description: "--instances: the scaled table is invalid: \(error)")
        }
        return (scaled, edited, "\(routesPath): " + notes.joined(separator: "; "))
    }

    /// A file in the data directory. Relative paths stay relative (the children share this working directory)
    /// and read as typed.
    static func dataFile(_ name: String, in directory: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    func dataFile(_ name: String) -> String { Self.dataFile(name, in: self.dataDirectory) }

    /// This executable's path: `up`'s children are this same program with other subcommands.
    static func currentExecutable() throws(Failure) -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        if let path = Bundle.main.executablePath, FileManager.default.isExecutableFile(atPath: path) { return path }
        let argument = CommandLine.arguments[0]
        if argument.contains("/") { return URL(fileURLWithPath: argument).standardizedFileURL.path }
        throw Failure(
            description: "cannot tell where this executable is (run it by its path, e.g. .build/debug/strangler up)")
    }

    /// The lines `up` prints once everything answers: every URL, where the token is, and what to try next.
    func summary(tokenFromEnvironment: Bool) -> String {
        let local = "http://127.0.0.1"
        let defaultData = self.dataDirectory == ".strangler"
        let tokenPath = self.dataFile("admin-token")
        var rows: [(String, String, String)] = [
            (
                "proxy", "\(local):\(self.proxy.port)",
                "send client traffic here (\(self.routeCount) routes: "
                    + "\(self.stageCounts.map { "\($0.count) \($0.stage)" }.joined(separator: ", ")))"
            ),
            (
                "admin API", "\(local):\(self.adminPort)",
                tokenFromEnvironment ? "token from STRANGLER_ADMIN_TOKEN" : "token in \(tokenPath)"
            ),
            ("monolith", "\(local):\(self.monolith.port)", self.monolith.database ?? ""),
        ]
        for service in self.services {
            rows.append(
                (service.name, "\(local):\(service.port)", "\(service.database ?? "")  (sync: GET /sync/status)"))
        }
        let first = rows.map(\.0.count).max() ?? 0
        let second = rows.map(\.1.count).max() ?? 0
        var lines = [
            "",
            "Strangler is up ("
                + (self.reusesData
                    ? "reusing the data in \(self.dataDirectory)"
                    : self.seed > 0 ? "first run: \(self.seed) demo contacts seeded" : "first run: empty database")
                + "):",
        ]
        for (name, url, note) in rows {
            lines.append(
                "  \(name.padding(toLength: first, withPad: " ", startingAt: 0))  "
                    + "\(url.padding(toLength: second, withPad: " ", startingAt: 0))  \(note)"
            )
        }
        let target = self.proxy.port == 8080 ? "" : " --target \(local):\(self.proxy.port)"
        var admin = self.adminPort == 8090 ? "" : " --admin \(local):\(self.adminPort)"
        if !defaultData { admin += " --data \(self.dataDirectory)" }
        let token = tokenFromEnvironment ? "$STRANGLER_ADMIN_TOKEN" : "$(cat \(tokenPath))"
        // A route in coexist first, so that the traffic sent next is compared.
        let next = [
            (
                "swift run strangler stage contacts.get coexist --reason \"shadow reads\"\(admin)",
                "the service gets a copy of every read"
            ),
            ("swift run strangler traffic\(target)", "realistic CRM traffic through the proxy"),
            ("swift run strangler routes\(admin)", "every route: stage, compared samples, match rate"),
        ]
        let width = next.map(\.0.count).max() ?? 0
        lines += ["", "Next, in another terminal:"]
        lines += next.map { command, note in
            "  \(command.padding(toLength: width, withPad: " ", startingAt: 0))  # \(note)"
        }
        lines.append("  curl -s -H \"Authorization: Bearer \(token)\" \(local):\(self.adminPort)/admin/diffs")
        lines += ["Ctrl-C stops everything.", ""]
        return lines.joined(separator: "\n")
    }
}
