public import ArgumentParser
import ControlPlane
import Diff
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import Reports
import RouteTable
import ServiceKit
import SharedStore

/// `strangler reconcile <entity>`: pages through the monolith's and a service's lists of one entity (declared in
/// routes.json: `services.NAME.entities`) and reports the records missing from the service, extra in it, and
/// different (with the diff engine's pointers).
public struct ReconcileCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare a service's records with the monolith's: missing, extra and differing records.",
        discussion: """
            The entity is one that routes.json declares under a service ("services": {"orders": {"url": …, \
            "entities": {"orders": {"path": "/orders", "key": "id"}}}}); a service given as a URL string has one, \
            named as the service, at /NAME, keyed by id. Both sides' lists are read from the monolith's and the \
            service's URLs in the table (--monolith and --service override them), page by page: a Link rel="next" \
            header, a "next" or "nextCursor" field, or one page. Records are matched by the key and compared with \
            the diff rules (ignore, arrays) of the table's GET route for one record (PATH/{id}).

            The result is kept in <data>/reconcile/<entity>.json (time, clean, counts), or with --store (or \
            STRANGLER_STORE) in the shared store, where every proxy's gate reads it: the eliminate gate needs \
            the last one of each of the service's entities clean. --ignore leaves a field out of the comparison (a \
            difference you accepted, such as one triaged with `strangler triage --accept`); the kept result names \
            what it ignored. --output json prints the whole result as one JSON object.

            Exit status: 0 when both hold the same records, 1 when they differ, 2 when a side cannot be read or \
            the entity is not declared.

            Examples:
              strangler reconcile orders
              strangler reconcile orders --routes shop/routes.json --data shop/.strangler
              strangler reconcile contacts --monolith http://127.0.0.1:8081 --service http://127.0.0.1:8082
              strangler reconcile contacts --ignore /title --output json
            """
    )

    @Argument(help: ArgumentHelp("The entity to reconcile, as routes.json declares it.", valueName: "entity"))
    public var name: String

    @Option(help: "The route table that declares the entity and the URLs.")
    public var routes: String = "routes.json"

    @Option(help: "The monolith's base URL (default: the table's).")
    public var monolith: String?

    @Option(help: "The service's base URL (default: the table's URL of the service that declares the entity).")
    public var service: String?

    @Option(help: "The data directory, where the result is kept for the gates (<data>/reconcile/<entity>.json).")
    public var data: String = ".strangler"

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @Option(
        help: ArgumentHelp(
            "Keep the result in the shared store instead (default STRANGLER_STORE); the password in PGPASSWORD.",
            valueName: "postgres://USER@HOST:PORT/DB"))
    public var store: String?

    @Option(
        help: ArgumentHelp(
            "Leave this field out of the comparison (a JSON pointer into a record, * for one segment; repeatable).",
            valueName: "pointer"))
    public var ignore: [String] = []

    public init() {}

    public func validate() throws {
        guard ReconcileRecord.isEntityName(self.name) else {
            throw ValidationError("<entity> \"\(self.name)\" is not an entity name (letters, digits, '.', '_' and '-')")
        }
        if let monolith, FeedEndpoint(url: monolith) == nil {
            throw ValidationError("--monolith must be an http URL such as http://127.0.0.1:8081, not \"\(monolith)\"")
        }
        for pointer in self.ignore {
            guard PointerPattern.isValid(pointer), !pointer.isEmpty else {
                throw ValidationError(
                    "--ignore \(pointer): not a JSON pointer into a record (it must start with /, and ~ must be ~0 or "
                        + "~1)"
                )
            }
            // A clean reconcile that compared nothing would pass the gate on no evidence.
            guard PointerPattern.segments(pointer) != ["*"] else {
                throw ValidationError("--ignore \(pointer) would leave every field out: name the fields to leave out")
            }
        }
        if let service, FeedEndpoint(url: service) == nil {
            throw ValidationError("--service must be an http URL such as http://127.0.0.1:8082, not \"\(service)\"")
        }
        _ = try StoreFlag.optionalLocation(self.store)
    }

    /// What to compare, from the table and the flags.
    struct Plan {
        var monolith: FeedEndpoint
        var service: FeedEndpoint
        var entity: Entity
        var options: DiffOptions
    }

    func plan() throws(CommandFailure) -> Plan {
        let table: RouteTable
        do {
            try RouteFile.refuseLink(self.routes)
            table = try RouteTable.parse(try String(contentsOfFile: self.routes, encoding: .utf8))
        } catch let error as RouteTableError {
            throw CommandFailure(message: "\(self.routes): \(error)", status: 2)
        } catch {
            // No table: both URLs given by hand reconcile GET /NAME by id.
            if let monolith = self.monolith.flatMap(FeedEndpoint.init(url:)),
                let service = self.service.flatMap(FeedEndpoint.init(url:))
            {
                return Plan(
                    monolith: monolith, service: service, entity: Entity(name: self.name, path: "/\(self.name)"),
                    options: DiffOptions(ignore: self.ignore))
            }
            throw CommandFailure(
                message:
                    "cannot read \(self.routes) (\(error.localizedDescription)): pass --routes, or both --monolith and "
                    + "--service",
                status: 2)
        }
        guard let (owner, entity) = table.entity(named: self.name) else {
            let declared = table.declarations.values.flatMap(\.entities).map(\.name).sorted()
            throw CommandFailure(
                message:
                    "\(self.routes) declares no entity \"\(self.name)\" ("
                    + (declared.isEmpty ? "it declares none" : "declared: \(declared.joined(separator: ", "))")
                    + "); declare it under its service: \"entities\": {\"\(self.name)\": {\"path\": \"/\(self.name)\", "
                    + "\"key\": \"id\"}}",
                status: 2)
        }
        let upstream = table.services[owner]!
        let monolith =
            self.monolith.flatMap(FeedEndpoint.init(url:))
            ?? FeedEndpoint(host: table.monolith.host, port: table.monolith.port)
        let service =
            self.service.flatMap(FeedEndpoint.init(url:)) ?? FeedEndpoint(host: upstream.host, port: upstream.port)
        // The rules of the route that answers one record: they apply to a record as it is.
        var options = DiffOptions(ignore: self.ignore)
        if let policy = table.match(method: "GET", path: entity.path + "/\u{2}")?.shadow {
            options = DiffOptions(ignore: policy.ignore + self.ignore, arrays: policy.arrays)
        }
        return Plan(monolith: monolith, service: service, entity: entity, options: options)
    }

    public func run() async throws {
        let plan: Plan
        do {
            plan = try self.plan()
        } catch {
            FileHandle.standardError.write(Data("strangler reconcile \(self.name): \(error.message)\n".utf8))
            throw ExitCode(error.status)
        }
        // The store first: a reconcile whose result cannot be kept where the gates read it is not run.
        let shared: SharedStore?
        do {
            shared = try await StoreFlag.connect(self.store)
        } catch {
            FileHandle.standardError.write(Data("strangler reconcile \(self.name): \(error)\n".utf8))
            throw ExitCode(2)
        }
        defer { shared?.close() }
        let report: ReconcileReport
        do {
            report = try await Reconciler(path: plan.entity.path, key: plan.entity.key, options: plan.options)
                .reconcile(monolith: plan.monolith, service: plan.service)
        } catch {
            FileHandle.standardError.write(Data("strangler reconcile \(self.name): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let record = ReconcileRecord(
            service: self.name, clean: report.isClean, compared: report.compared, missing: report.missing.count,
            extra: report.extra.count,
            differing: report.differing.count, ignored: self.ignore)
        let kept =
            shared.map { "the shared store \($0.storeDescription)" }
            ?? ReconcileRecord.path(service: self.name, dataDirectory: self.data)
        var keptError: String?
        do {
            if let shared {
                try await shared.recordReconcile(record)
            } else {
                try record.write(dataDirectory: self.data)
            }
        } catch {
            keptError = "\(error)"
            FileHandle.standardError.write(
                Data("strangler reconcile \(self.name): the result could not be kept in \(kept): \(error)\n".utf8))
        }
        switch self.output {
        case .table: print(report.text(name: self.name))
        case .json: print(report.json(name: self.name, kept: keptError == nil ? kept : nil).prettyJSONText)
        }
        if !report.isClean { throw ExitCode(1) }
    }
}

/// What a reconciliation found.
struct ReconcileReport: Sendable {
    var compared = 0
    /// Ids the monolith has and the service does not.
    var missing: [String] = []
    /// Ids the service has and the monolith does not.
    var extra: [String] = []
    /// Ids on both sides with different records, and what differs (`/title changed`).
    var differing: [(id: String, differences: [String])] = []

    var isClean: Bool { self.missing.isEmpty && self.extra.isEmpty && self.differing.isEmpty }

    /// `{ name, compared, clean, missing: [id], extra: [id], differing: [{ id, differences }], kept }` (every id, not
    /// the first 50 as in the text).
    func json(name: String, kept: String?) -> JSONValue {
        .object([
            ("name", .string(name)),
            ("compared", .number(Double(self.compared))),
            ("clean", .bool(self.isClean)),
            ("missing", .array(self.missing.map(JSONValue.string))),
            ("extra", .array(self.extra.map(JSONValue.string))),
            (
                "differing",
                .array(
                    self.differing.map {
                        .object([("id", .string($0.id)), ("differences", .array($0.differences.map(JSONValue.string)))])
                    })
            ),
            ("kept", kept.map(JSONValue.string) ?? .null),
        ])
    }

    func text(name: String) -> String {
        var lines = [
            "\(name): \(self.compared) in the monolith; \(self.missing.count) missing, \(self.extra.count) extra, "
                + "\(self.differing.count) differing"
        ]
        lines += self.missing.prefix(50).map { "  missing    \($0)" }
        lines += self.extra.prefix(50).map { "  extra      \($0)" }
        lines += self.differing.prefix(50).map { "  differing  \($0.id): \($0.differences.joined(separator: ", "))" }
        return lines.joined(separator: "\n")
    }
}

/// Pages through one list endpoint on both sides and compares the records by id.
struct Reconciler {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let path: String
    /// The field that identifies a record.
    var key = "id"
    /// How two records are compared (pointers left out, arrays compared as sets or by key).
    var options = DiffOptions()

    init(path: String, key: String = "id", options: DiffOptions = DiffOptions()) {
        self.path = path
        self.key = key
        self.options = options
    }

    init(path: String, ignore: [String]) {
        self.init(path: path, options: DiffOptions(ignore: ignore))
    }

    func reconcile(monolith: FeedEndpoint, service: FeedEndpoint) async throws -> ReconcileReport {
        let expected = try await self.records(at: monolith)
        let actual = try await self.records(at: service)
        var report = ReconcileReport(compared: expected.count)
        for (id, record) in expected.sorted(by: { $0.key < $1.key }) {
            guard let other = actual[id] else {
                report.missing.append(id)
                continue
            }
            let result = JSONDiff.diff(record, other, options: self.options)
            if !result.isEqual {
                report.differing.append((id, result.differences.map { "\($0.pointer) \($0.kind.rawValue)" }))
            }
        }
        report.extra = actual.keys.filter { expected[$0] == nil }.sorted()
        return report
    }

    /// Every record of the list at `endpoint`, by key (a string, or a number written as JSON writes it). A record
    /// without the key, or two with the same, is a list that cannot be reconciled.
    func records(at endpoint: FeedEndpoint) async throws -> [String: JSONValue] {
        let client = OneShotHTTPClient(host: endpoint.host, port: endpoint.port)
        var records: [String: JSONValue] = [:]
        var problem: String?
        try await ListPages.read(
            self.path, origin: endpoint, send: { uri in try await client.send(.GET, uri) },
            refused: { uri, why in Failure(description: "GET \(endpoint)\(uri) \(why)") },
            visit: { items in
                for item in items {
                    let value = item[self.key]
                    guard let id = value?.stringValue ?? value.flatMap({ $0.numberValue != nil ? $0.jsonText : nil })
                    else {
                        problem =
                            problem
                            ?? "a record has no \"\(self.key)\" (a string or number): \(item.jsonText.prefix(120))"
                        continue
                    }
                    if records.updateValue(item, forKey: id) != nil {
                        problem = problem ?? "two records have \(self.key) \(id)"
                    }
                }
            })
        if let problem { throw Failure(description: "GET \(endpoint)\(self.path): \(problem)") }
        return records
    }
}
