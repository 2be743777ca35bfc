import AdminAPI
public import ArgumentParser
import ControlPlane
import DiffStore
import Foundation
import JSON
import Logging
import NIOHTTP1
import Reports
import RouteTable

/// Where the proxy's admin API is, how the command proves it may use it, and the data directory: the flags of every
/// command that talks to the admin API.
public struct AdminOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The proxy's admin API (default: $STRANGLER_ADMIN, else the running proxy that wrote <data>/proxy.json, "
                + "else http://127.0.0.1:8090). Given explicitly, a route command never falls back to routes.json.",
            valueName: "url"))
    public var admin: String?

    @OptionGroup public var token: TokenOptions

    @Option(
        name: .customLong("admin-ca"),
        help: ArgumentHelp(
            "For an https admin API: the CA certificate (PEM) its certificate is checked against (default: "
                + "$STRANGLER_ADMIN_CA, else the system's trust store).",
            valueName: "file"))
    public var adminCA: String?

    @Option(help: "The data directory: admin token, audit log, diff store, reconcile records.")
    public var data: String = ".strangler"

    public init() {}

    static let defaultAdmin = "http://127.0.0.1:8090"
    /// `--admin`, `--admin-ca`, `--token-file` and `--data` as given (each with a leading space), for a command the CLI
    /// suggests.
    var placeFlags: String {
        var flags: [String] = []
        if let admin = self.admin { flags += ["--admin", admin] }
        if let adminCA = self.adminCA { flags += ["--admin-ca", adminCA] }
        if let tokenFile = self.token.tokenFile { flags += ["--token-file", tokenFile] }
        if self.data != ".strangler" { flags += ["--data", self.data] }
        return flags.map { " " + ShellWord.quote($0) }.joined()
    }

    /// The environment variable naming the admin API when `--admin` does not.
    static let environmentVariable = "STRANGLER_ADMIN"
    /// The environment variable naming the admin API's CA when `--admin-ca` does not.
    static let caEnvironmentVariable = "STRANGLER_ADMIN_CA"

    /// The CA an https admin API is checked against: `--admin-ca`, else `STRANGLER_ADMIN_CA`; nil: the system's store.
    func caFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let adminCA, !adminCA.isEmpty { return adminCA }
        if let file = environment[Self.caEnvironmentVariable], !file.isEmpty { return file }
        return nil
    }

    /// Where the admin URL a command uses came from.
    enum Source: Equatable {
        case flag
        case environment
        /// The `proxy.json` a live proxy wrote into the data directory.
        case presence(ProxyPresence)
        /// None of those: the default URL, where no proxy may run.
        case fallback

        /// Where the URL was given, as a refusal of it names the place.
        func name(dataDirectory: String) -> String {
            switch self {
            case .flag: "--admin"
            case .environment: AdminOptions.environmentVariable
            case .presence: "$.admin of \(ProxyPresence.path(in: dataDirectory))"
            case .fallback: "the default admin URL"
            }
        }
    }

    /// A client of the admin API these options name (`resolve`), with its token: for the commands that only ever
    /// ask a running proxy (`noise`, `record`, `routes suggest`). A place that cannot be read is an
    /// `AdminClient.Failure` too.
    func client() throws(AdminClient.Failure) -> AdminClient {
        let (url, source): (String, Source)
        do {
            (url, source) = try self.resolve(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw AdminClient.Failure(description: error.message)
        }
        return try AdminClient(
            url: url, named: source.name(dataDirectory: self.data),
            token: try self.token.resolve(dataDirectory: self.data), dataDirectory: self.data, caFile: self.caFile())
    }

    /// The admin API to ask: `--admin`, else `STRANGLER_ADMIN`, else the running proxy that wrote
    /// `<data>/proxy.json`, else `fallback`.
    func resolve(
        environment: [String: String], fallback: String = Self.defaultAdmin
    ) throws(CommandFailure) -> (url: String, source: Source) {
        if let admin { return (admin, .flag) }
        if let admin = environment[Self.environmentVariable], !admin.isEmpty { return (admin, .environment) }
        if let presence = try Self.presence(in: self.data) { return (presence.admin, .presence(presence)) }
        return (fallback, .fallback)
    }

    /// The live proxy registered in `dataDirectory`, if any.
    static func presence(in dataDirectory: String) throws(CommandFailure) -> ProxyPresence? {
        do {
            return try ProxyPresence.live(in: dataDirectory)
        } catch {
            throw CommandFailure(message: error.description, status: ControlExit.usage)
        }
    }
}

/// The flags every route-table command shares: where the proxy's admin API is, and what to edit when no proxy runs.
public struct ControlOptions: ParsableArguments {
    @OptionGroup public var endpoint: AdminOptions

    @Option(help: "The route table edited when no proxy is running.")
    public var routes: String = "routes.json"

    @Option(help: "Who is acting, for the audit log (default: $USER, else strangler-cli).")
    public var actor: String?

    @Flag(help: "Edit --routes directly (with the same validation, gates and audit), without looking for a proxy.")
    public var file: Bool = false

    public init() {}

    /// The flags a suggested command (`undo with: strangler undo …`) needs to reach the table this one did: the
    /// ones given that say where it is, each with a leading space (none when every default was used). The
    /// environment is the shell's, so `STRANGLER_ADMIN` and `STRANGLER_ADMIN_TOKEN` carry over by themselves.
    var placeFlags: String {
        var flags: [String] = []
        if self.routes != "routes.json" { flags += ["--routes", self.routes] }
        if self.file { flags.append("--file") }
        return self.endpoint.placeFlags + flags.map { " " + ShellWord.quote($0) }.joined()
    }

    var actorName: String {
        if let actor, !actor.isEmpty { return actor }
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
        return "strangler-cli"
    }
}

/// The flags of the route-table commands that only read (`routes`, `history`, `report`): those of ``ControlOptions``
/// without `--actor`, and `--routes` is read, never edited.
public struct ReadingOptions: ParsableArguments {
    @OptionGroup public var endpoint: AdminOptions

    @Option(help: "The route table read when no proxy is running.")
    public var routes: String = "routes.json"

    @Flag(help: "Read --routes and the data directory directly, without looking for a proxy.")
    public var file: Bool = false

    // Accepted, so that scripts written when every route command took it keep working; a reading command records
    // nothing.
    @Option(help: .hidden)
    public var actor: String?

    public init() {}

    /// The same choices as the options of a changing command (which a reading one never uses to change anything).
    var control: ControlOptions {
        // Parsed from nothing, so that every option has its value (an unparsed option group has none to read).
        var options = (try? ControlOptions.parse([])) ?? ControlOptions()
        options.endpoint = self.endpoint
        options.routes = self.routes
        options.file = self.file
        return options
    }
}

/// Where a command reads the admin token. Never from the command line: a flag's value is shown to every user of the
/// machine by `ps`.
public struct TokenOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A file holding the admin token (default: STRANGLER_ADMIN_TOKEN, else <data>/admin-token).",
            valueName: "file"))
    public var tokenFile: String?

    @Flag(help: "Read the admin token from standard input (its first line).")
    public var tokenStdin: Bool = false

    // Removed: kept only to say so, and where the token goes instead.
    @Option(help: .hidden)
    public var token: String?

    public init() {}

    public func validate() throws {
        if self.token != nil {
            throw ValidationError(
                "--token was removed: a token on the command line is visible to every user in `ps`. Set "
                    + "STRANGLER_ADMIN_TOKEN, "
                    + "or pass --token-file FILE or --token-stdin")
        }
        if self.tokenStdin, self.tokenFile != nil {
            throw ValidationError("--token-file and --token-stdin exclude each other")
        }
    }

    /// The token: `--token-file` or `--token-stdin`, else STRANGLER_ADMIN_TOKEN, else `<data>/admin-token`; nil when
    /// there is none.
    func resolve(
        dataDirectory: String, standardInput: () -> String? = { readLine(strippingNewline: true) }
    ) throws(AdminClient.Failure) -> String? {
        var explicit: String?
        if let file = self.tokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw AdminClient.Failure(description: "--token-file \(file): cannot be read")
            }
            explicit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard explicit?.isEmpty == false else {
                throw AdminClient.Failure(description: "--token-file \(file) is empty")
            }
        } else if self.tokenStdin {
            explicit = standardInput()?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard explicit?.isEmpty == false else {
                throw AdminClient.Failure(description: "--token-stdin: no token on standard input")
            }
        }
        return AdminClient.resolveToken(explicit, dataDirectory: dataDirectory)
    }
}

/// Exit statuses of the route-table commands.
enum ControlExit {
    /// Done (also: nothing to change).
    static let done: Int32 = 0
    /// Refused: by a gate, or undo's check that the table is still what the last change left.
    static let refused: Int32 = 1
    /// Usage or validation error: unknown route, invalid table, bad token, missing reason, …
    static let usage: Int32 = 2
    /// The proxy is unreachable (and editing routes.json is not possible or not wanted).
    static let unreachable: Int32 = 3
    /// The table changed between reading it and writing it (412: another operator); read it again and retry.
    static let stale: Int32 = 4

    /// The exit status of a refusal.
    static func status(of error: ControlError) -> Int32 {
        switch error.code {
        case .gateRefused, .nothingToUndo, .undoConflict, .routesFileInvalid: refused
        case .stale: stale
        default: usage
        }
    }
}

/// Why a command stops, with its exit status (and the control plane's refusal, when that is why).
struct CommandFailure: Error {
    var message: String
    var status: Int32
    var refusal: ControlError?

    init(message: String, status: Int32) {
        self.message = message
        self.status = status
    }

    init(_ refusal: ControlError) {
        self.message = refusal.message
        self.status = ControlExit.status(of: refusal)
        self.refusal = refusal
    }
}

/// What a command prints, and its exit status.
struct CommandOutcome {
    var output = ""
    var error = ""
    var status: Int32 = 0

    /// Prints, then exits with the status (through ArgumentParser's `ExitCode`).
    func finish() throws {
        if !self.output.isEmpty { FileHandle.standardOutput.write(Data(self.output.utf8)) }
        if !self.error.isEmpty { FileHandle.standardError.write(Data(self.error.utf8)) }
        if self.status != 0 { throw ExitCode(self.status) }
    }
}

/// The route table's operations, through a running proxy's admin API or, when none runs, on routes.json itself (the
/// same code as the proxy's: validation, gates, atomic write, audit log, diff-store epochs).
///
/// A proxy is looked for at `--admin` (default http://127.0.0.1:8090). When nothing listens there (connection
/// refused) and `--admin` was not given, the command edits `--routes` in place; with `--admin` given, or without a
/// routes file, it stops with exit status 3.
struct ControlSession {
    enum Mode {
        case proxy(AdminClient)
        case file(RouteOperations)
    }

    let mode: Mode
    let actor: String

    /// Where the changes go, for messages.
    var target: String {
        switch self.mode {
        case .proxy(let client): "the proxy at \(client.address.url)"
        case .file(let operations): "\(operations.control.routesPath) (no proxy running)"
        }
    }

    static func open(
        _ options: ControlOptions, defaultAdmin: String = AdminOptions.defaultAdmin,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(CommandFailure) -> ControlSession {
        if options.file {
            guard options.endpoint.admin == nil else {
                throw CommandFailure(message: "--file and --admin exclude each other", status: ControlExit.usage)
            }
            return try Self.openFile(options, lookedAt: nil)
        }
        let (url, source) = try options.endpoint.resolve(environment: environment, fallback: defaultAdmin)
        let explicit = source != .fallback
        let address: AdminClient.Address
        do {
            address = try AdminClient.parse(url: url, named: source.name(dataDirectory: options.endpoint.data))
        } catch {
            throw CommandFailure(message: error.description, status: ControlExit.usage)
        }
        let token: String?
        do {
            token = try options.endpoint.token.resolve(dataDirectory: options.endpoint.data)
        } catch {
            throw CommandFailure(message: error.description, status: ControlExit.usage)
        }
        var client = AdminClient(
            address: address, token: token ?? "", caFile: options.endpoint.caFile(environment: environment))
        client.actor = options.actorName
        let probe: AdminClient.Answer
        do {
            probe = try await client.send(.GET, "/admin/status")
        } catch {
            guard error.refused, !explicit else {
                let whose =
                    switch source {
                    case .presence(let presence):
                        "the proxy that wrote \(ProxyPresence.path(in: options.endpoint.data)) (pid \(presence.pid)) "
                            + "is unreachable"
                    case .environment: "the proxy at \(AdminOptions.environmentVariable)=\(url) is unreachable"
                    default: "the proxy is unreachable"
                    }
                throw CommandFailure(message: "\(whose): \(error.description)", status: ControlExit.unreachable)
            }
            return try Self.openFile(options, lookedAt: url)
        }
        guard probe.status != 401 else {
            let message =
                token == nil
                ? "a proxy runs at \(url) but there is no admin token: set STRANGLER_ADMIN_TOKEN, pass --token-file or "
                    + "--token-stdin, or point --data at its data directory"
                : "the admin API at \(url) refused the token (\(probe.errorMessage))"
            throw CommandFailure(message: message, status: ControlExit.usage)
        }
        return ControlSession(mode: .proxy(client), actor: options.actorName)
    }

    /// The file path: routes.json, `<data>/audit.jsonl` and `<data>/diffs.sqlite`, through the proxy's own
    /// RouteControl.
    static func openFile(_ options: ControlOptions, lookedAt admin: String?) throws(CommandFailure) -> ControlSession {
        // A proxy reloads its file on a change, but would not audit nor gate an edit made behind its back.
        if let presence = try AdminOptions.presence(in: options.endpoint.data), presence.serves(options.routes) {
            throw CommandFailure(
                message:
                    "a proxy (pid \(presence.pid)) serves \(options.routes): change it through that proxy, not the "
                    + "file (leave out --file, or pass --admin \(presence.admin))",
                status: ControlExit.usage)
        }
        guard FileManager.default.fileExists(atPath: options.routes) else {
            if let admin {
                throw CommandFailure(
                    message:
                        "no proxy answers at \(admin), and there is no \(options.routes) to edit instead (pass "
                        + "--routes, or start `strangler proxy`)",
                    status: ControlExit.unreachable)
            }
            throw CommandFailure(message: "there is no \(options.routes) (pass --routes)", status: ControlExit.usage)
        }
        do {
            try RouteFile.refuseLink(options.routes)
            let text = try String(contentsOfFile: options.routes, encoding: .utf8)
            let table: RouteTable
            do {
                table = try RouteTable.parse(text)
            } catch {
                throw CommandFailure(message: "\(options.routes): \(error)", status: ControlExit.usage)
            }
            let store = try StandaloneTable(table: table, text: text)
            let diffStore = try DiffStore.open(
                path: URL(fileURLWithPath: options.endpoint.data).appendingPathComponent("diffs.sqlite").path)
            var logger = Logger(label: "strangler.cli")
            logger.logLevel = .critical
            let control = RouteControl(
                table: store, routesPath: options.routes, dataDirectory: options.endpoint.data, logger: logger,
                diffStore: diffStore)
            return ControlSession(
                mode: .file(RouteOperations(control: control, diffStore: diffStore)), actor: options.actorName)
        } catch let failure as CommandFailure {
            throw failure
        } catch let failure as RouteFile.Failure {
            throw CommandFailure(message: failure.description, status: ControlExit.usage)
        } catch {
            throw CommandFailure(
                message: "cannot open \(options.routes) and \(options.endpoint.data): \(error)",
                status: ControlExit.usage)
        }
    }

    // MARK: Operations (same outcomes on both paths)

    /// Runs an operation in-process, its refusal a failure of the command.
    private static func local<Outcome>(
        _ operation: () async throws(ControlError) -> Outcome
    ) async throws(CommandFailure) -> Outcome {
        do {
            return try await operation()
        } catch {
            throw CommandFailure(error)
        }
    }

    /// Reads an outcome from an admin API answer's body.
    private static func read<Outcome>(
        _ body: JSONValue, _ decode: (JSONValue) throws(ControlError) -> Outcome
    ) throws(CommandFailure) -> Outcome {
        do {
            return try decode(body)
        } catch {
            throw CommandFailure(error)
        }
    }

    func table() async throws(CommandFailure) -> LiveTable {
        switch self.mode {
        case .proxy(let client):
            try Self.read(try await Self.call(client, .GET, "/admin/routes").body) { body throws(ControlError) in
                try LiveTable(json: body)
            }
        case .file(let operations): operations.table()
        }
    }

    /// Every route's evidence (or one's), as `GET /admin/evidence` answers it on both paths.
    func evidence(route: String?) async throws(CommandFailure) -> JSONValue {
        switch self.mode {
        case .proxy(let client):
            try await Self.call(client, .GET, "/admin/evidence" + Self.query(["route": route])).body
        case .file(let operations):
            try await Self.local { () throws(ControlError) in try await operations.evidence(route: route) }.json
        }
    }

    func stage(
        selector: String, to stage: Stage, expectedHash: String, reason: String?, force: Bool
    ) async throws(CommandFailure) -> TableChange {
        switch self.mode {
        case .proxy(let client):
            let body: JSONValue = .object([
                ("routes", .string(selector)), ("stage", .string(stage.rawValue)),
                ("reason", reason.map(JSONValue.string) ?? .null), ("force", .bool(force)),
            ])
            let answer = try await Self.call(client, .POST, "/admin/stage", ifMatch: expectedHash, body: body)
            return try Self.read(answer.body) { body throws(ControlError) in try TableChange(json: body) }
        case .file(let operations):
            return try await Self.local { () throws(ControlError) in
                try await operations.stage(
                    selector: selector, to: stage, expectedHash: expectedHash, actor: self.actor, reason: reason,
                    force: force)
            }
        }
    }

    /// Replaces the whole table with `document` (If-Match: `expectedHash`), as `PUT /admin/routes` does on both paths.
    func replace(document: JSONValue, expectedHash: String, reason: String?) async throws(CommandFailure) -> TableChange
    {
        switch self.mode {
        case .proxy(let client):
            let answer = try await Self.call(
                client, .PUT, "/admin/routes" + Self.query(["reason": reason]), ifMatch: expectedHash, body: document)
            return try Self.read(answer.body) { body throws(ControlError) in try TableChange(json: body) }
        case .file(let operations):
            return try await Self.local { () throws(ControlError) in
                try await operations.replace(
                    text: document.prettyJSONText + "\n", expectedHash: expectedHash, actor: self.actor, reason: reason,
                    force: false)
            }
        }
    }

    func undo(expectedHash: String?, reason: String?) async throws(CommandFailure) -> UndoOutcome {
        switch self.mode {
        case .proxy(let client):
            let answer = try await Self.call(
                client, .POST, "/admin/undo", ifMatch: expectedHash,
                body: .object([("reason", reason.map(JSONValue.string) ?? .null)]))
            return try Self.read(answer.body) { body throws(ControlError) in try UndoOutcome(json: body) }
        case .file(let operations):
            return try await Self.local { () throws(ControlError) in
                try await operations.undo(expectedHash: expectedHash, actor: self.actor, reason: reason)
            }
        }
    }

    func history(route: String?, limit: Int) async throws(CommandFailure) -> HistoryPage {
        switch self.mode {
        case .proxy(let client):
            HistoryPage(
                json: try await Self.call(
                    client, .GET, "/admin/history" + Self.query(["route": route, "limit": String(limit)])
                ).body)
        case .file(let operations):
            try await Self.local { () throws(ControlError) in try await operations.history(route: route, limit: limit) }
        }
    }

    /// The admin API's word for a decision (`accept`, `ignore`, `reset`).
    static func wireDecision(_ decision: TriageDecision.Decision) -> String {
        switch decision {
        case .accepted: "accept"
        case .ignored: "ignore"
        case .reset: "reset"
        case .explained: "explained"
        }
    }

    func triage(
        route: String, signature: String, decision: TriageDecision.Decision, expectedHash: String?, reason: String,
        paths: [String]? = nil, allPaths: Bool = false
    ) async throws(CommandFailure) -> TriageOutcome {
        switch self.mode {
        case .proxy(let client):
            var members: [(key: String, value: JSONValue)] = [
                ("route", .string(route)), ("signature", .string(signature)),
                ("decision", .string(Self.wireDecision(decision))),
                ("reason", .string(reason)),
            ]
            if let paths { members.append(("paths", .array(paths.map(JSONValue.string)))) }
            if allPaths { members.append(("allPaths", .bool(true))) }
            let body: JSONValue = .object(members)
            let answer = try await Self.call(client, .POST, "/admin/triage", ifMatch: expectedHash, body: body)
            return try Self.read(answer.body) { body throws(ControlError) in
                try TriageOutcome(json: body, tableHash: answer.etag)
            }
        case .file(let operations):
            return try await Self.local { () throws(ControlError) in
                try await operations.triage(
                    route: route, signature: signature, decision: decision, expectedHash: expectedHash,
                    actor: self.actor, reason: reason, paths: paths, allPaths: allPaths)
            }
        }
    }

    static func query(_ items: [String: String?]) -> String {
        let parts = items.sorted { $0.key < $1.key }.compactMap { key, value -> String? in
            guard let value else { return nil }
            return
                "\(key)="
                + (value.addingPercentEncoding(
                    withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? value)
        }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    /// Sends one admin API call; an answer with the error envelope is the control plane's refusal, thrown.
    static func call(
        _ client: AdminClient, _ method: HTTPMethod, _ path: String, ifMatch: String? = nil, body: JSONValue? = nil
    ) async throws(CommandFailure) -> (body: JSONValue, etag: String?) {
        let answer: AdminClient.Answer
        do {
            var headers: [(String, String)] = []
            if let ifMatch { headers.append(("If-Match", "\"\(ifMatch)\"")) }
            answer = try await client.send(method, path, headers: headers, body: body?.jsonText)
        } catch {
            throw CommandFailure(message: "the proxy is unreachable: \(error)", status: ControlExit.unreachable)
        }
        guard let json = answer.json else {
            throw CommandFailure(
                message: "\(method) \(path) answered \(answer.status) without JSON: \(answer.body.prefix(200))",
                status: ControlExit.usage)
        }
        guard (200..<300).contains(answer.status) else {
            throw CommandFailure(
                ControlError(json: json) ?? ControlError(.init("http_\(answer.status)"), json.jsonText))
        }
        var etag = answer.headers.first(name: "ETag")
        if let value = etag, value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            etag = String(value.dropFirst().dropLast())
        }
        return (json, etag)
    }
}
