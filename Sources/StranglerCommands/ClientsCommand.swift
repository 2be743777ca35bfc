public import ArgumentParser
import ControlPlane
import Crypto
import Foundation
import JSON
import NIOHTTP1
import Reports
import RouteTable

/// `strangler clients add NAME` and `strangler clients list`: the gateway's clients (routes.json `"clients"`).
public struct ClientsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "clients",
        abstract: "Add API keys for the gateway's clients, and list the clients.",
        subcommands: [ClientsAddCommand.self, ClientsListCommand.self]
    )

    public init() {}
}

/// `strangler clients add NAME`: a new API key for a client (created if new), printed once; only its SHA-256 is kept.
public struct ClientsAddCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Make a new API key for a client and print it once (routes.json keeps only its SHA-256).",
        discussion: """
            Adds "sha256:<digest>" to clients.NAME.keys (the client is created if it is new), through the running \
            proxy's admin API (If-Match: the table as read) or, when no proxy runs, in --routes itself, with the same \
            validation and audit log. The key is printed on standard output, once: it is not stored anywhere. The \
            client presents it as `X-Api-Key: KEY` or `Authorization: Bearer KEY`. A service calling through the \
            gateway is a client named service:NAME.

            Exit status: 0 added, 2 usage error (an invalid name, an invalid table), 3 proxy unreachable, 4 the table \
            changed meanwhile (run it again).

            Examples:
              strangler clients add web
              strangler clients add service:billing --reason "billing calls orders through the gateway"
            """
    )

    @Argument(help: "The client's name: letters, digits, '.', '_', '-', or service:NAME.")
    public var name: String

    @Option(help: "Why, for the audit log.")
    public var reason: String?

    @OptionGroup public var control: ControlOptions

    public init() {}

    public func validate() throws {
        guard ClientRegistry.isClientName(self.name) else {
            throw ValidationError(
                "\"\(self.name)\" is not a client name (letters, digits, '.', '_', '-', or service:NAME)")
        }
    }

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome(key: String = Self.newKey()) async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(self.control)
            let live = try await session.table()
            let document = Self.adding(digest: Self.digest(of: key), toClient: self.name, in: live.table.document)
            let reason = self.reason ?? "new API key for client \(self.name)"
            let change = try await session.replace(
                document: document, expectedHash: live.contentHash, reason: reason)
            return CommandOutcome(
                output: key + "\n",
                error:
                    "added a key for client \(self.name) (table version \(change.table.version), via "
                    + "\(session.target)); it is shown once: keep it now\n")
        } catch {
            return CommandOutcome(error: "strangler clients add: \(error.message)\n", status: error.status)
        }
    }

    /// 32 random bytes as base64url, after `stk_`.
    static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "stk_" + text
    }

    /// `sha256:` and the key's digest in hex.
    static func digest(of key: String) -> String {
        ClientRegistry.digestPrefix + SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The table with `digest` appended to `clients.NAME.keys` (each created when missing).
    static func adding(digest: String, toClient name: String, in table: JSONValue) -> JSONValue {
        var members = table.objectValue ?? []
        var clients = members.first { $0.key == "clients" }?.value.objectValue ?? []
        var client = clients.first { $0.key == name }?.value.objectValue ?? []
        var keys = client.first { $0.key == "keys" }?.value.arrayValue ?? []
        keys.append(.string(digest))
        Self.set("keys", .array(keys), in: &client)
        Self.set(name, .object(client), in: &clients)
        Self.set("clients", .object(clients), in: &members)
        return .object(members)
    }

    private static func set(_ key: String, _ value: JSONValue, in members: inout [(key: String, value: JSONValue)]) {
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = value
        } else {
            members.append((key, value))
        }
    }
}

/// `strangler clients list`: the declared clients and how many keys each has.
public struct ClientsListCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the gateway's clients and how many keys each has.",
        discussion: """
            Exit status: 0 shown, 2 usage error, 3 proxy unreachable.
            """
    )

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @OptionGroup public var control: ReadingOptions

    public init() {}

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        do {
            let session = try await ControlSession.open(self.control.control)
            let clients = try await session.table().table.gateway.clients.clients
            let names = clients.keys.sorted()
            if self.output == .json {
                let list = JSONValue.array(
                    names.map { .object([("name", .string($0)), ("keys", .number(Double(clients[$0]!.count)))]) })
                return CommandOutcome(output: JSONValue.object([("clients", list)]).prettyJSONText + "\n")
            }
            guard !names.isEmpty else {
                return CommandOutcome(output: "no clients declared (strangler clients add NAME makes one)\n")
            }
            var table = TextTable(headers: ["CLIENT", "KEYS"])
            for name in names { table.rows.append([name, "\(clients[name]!.count)"]) }
            return CommandOutcome(output: table.render(style: .plain))
        } catch {
            return CommandOutcome(error: "strangler clients list: \(error.message)\n", status: error.status)
        }
    }
}

/// `strangler access`: the declared access map and the calls the proxy saw, flagging those the map would refuse.
public struct AccessCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "access",
        abstract: "Show who may call which route, and who did: the calls the running proxy saw, client × route.",
        discussion: """
            Reads GET /admin/access of the running proxy: each route's allow and deny lists, and every client × route \
            pair the proxy saw since it started, with its count and what the map says of it. A pair the map would \
            refuse is marked REFUSED when the route enforces its rule, WOULD REFUSE when it only observes \
            ("enforce": false): the tangle to untie before enforcing. Anonymous callers show as "anonymous", \
            requests no route matched as "unmatched".

            Exit status: 0 shown, 1 some observed call the map would refuse, 2 usage error, 3 proxy unreachable.

            Examples:
              strangler access
              strangler access --output json
            """
    )

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @OptionGroup public var endpoint: AdminOptions

    public init() {}

    public func run() async throws {
        try await self.outcome().finish()
    }

    func outcome() async -> CommandOutcome {
        let body: JSONValue
        switch await self.endpoint.read("/admin/access", command: "access") {
        case .success(let value): body = value
        case .failure(let outcome): return outcome.outcome
        }
        let observed = body["observed"]?.arrayValue ?? []
        let refused = observed.filter { $0["verdict"]?.stringValue != "allowed" }
        let status: Int32 = refused.isEmpty ? 0 : 1
        if self.output == .json { return CommandOutcome(output: body.prettyJSONText + "\n", status: status) }
        var text =
            "declared (\(body["enforce"]?.boolValue == false ? "observe only by default" : "enforced by default")):\n"
        let declared = body["declared"]?.arrayValue ?? []
        if declared.isEmpty {
            text += "  no route declares allow or deny\n"
        } else {
            var table = TextTable(headers: ["ROUTE", "ALLOW", "DENY", "MODE"])
            for entry in declared {
                let allow = entry["allow"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? "anyone"
                let deny = entry["deny"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? ""
                table.rows.append([
                    entry["route"]?.stringValue ?? "", allow, deny.isEmpty ? "-" : deny,
                    entry["enforce"]?.boolValue == false ? "observe" : "enforce",
                ])
            }
            text += table.render(style: .plain).split(separator: "\n", omittingEmptySubsequences: false).map {
                "  " + $0
            }
            .joined(separator: "\n")
            if !text.hasSuffix("\n") { text += "\n" }
        }
        text += "observed since the proxy started:\n"
        if observed.isEmpty {
            text += "  no calls yet\n"
        } else {
            var table = TextTable(headers: ["CLIENT", "ROUTE", "CALLS", "MAP"])
            for entry in observed {
                let verdict = entry["verdict"]?.stringValue ?? "allowed"
                let mark =
                    verdict == "allowed"
                    ? "allowed"
                    : entry["enforced"]?.boolValue == true ? "REFUSED (\(verdict))" : "WOULD REFUSE (\(verdict))"
                table.rows.append([
                    entry["client"]?.stringValue ?? "", entry["route"]?.stringValue ?? "",
                    "\(Int(entry["count"]?.numberValue ?? 0))", mark,
                ])
            }
            text += table.render(style: .plain).split(separator: "\n", omittingEmptySubsequences: false).map {
                "  " + $0
            }
            .joined(separator: "\n")
            if !text.hasSuffix("\n") { text += "\n" }
        }
        if !refused.isEmpty {
            text += "\(refused.count) observed pair\(refused.count == 1 ? "" : "s") the map refuses\n"
        }
        return CommandOutcome(output: text, status: status)
    }
}
