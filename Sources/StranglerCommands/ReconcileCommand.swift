public import ArgumentParser
import ControlPlane
import Diff
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import Reports
import ServiceKit

/// `strangler reconcile <name>`: pages through the monolith's and a service's lists of one entity and reports
/// the records missing from the service, extra in it, and different (with the diff engine's pointers).
public struct ReconcileCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare a service's records with the monolith's: missing, extra and differing records.",
        discussion: """
            Pages through GET /<name> on both sides (200 records a page) and compares every record by id. The result \
            is kept in <data>/reconcile/<name>.json (time, clean, counts): the eliminate gate needs the last one \
            clean. --ignore leaves a field out of the comparison (a difference you accepted, such as one triaged with \
            `strangler triage --accept`); the kept result names what it ignored. --output json prints the whole result \
            as one JSON object.

            Exit status: 0 when both hold the same records, 1 when they differ, 2 when a side cannot be read.

            Examples:
              strangler reconcile contacts --monolith http://127.0.0.1:8081 --service http://127.0.0.1:8082
              strangler reconcile deals --output json
              strangler reconcile contacts --ignore /title
            """
    )

    @Argument(help: ArgumentHelp("The entity to reconcile: contacts, leads or deals.", valueName: "name"))
    public var name: String

    @Option(help: "The monolith's base URL.")
    public var monolith: String = "http://127.0.0.1:8081"

    @Option(help: "The service's base URL (default http://127.0.0.1:<its port>).")
    public var service: String?

    @Option(help: "The data directory, where the result is kept for the gates (<data>/reconcile/<name>.json).")
    public var data: String = ".strangler"

    @Option(help: ArgumentHelp("table or json.", valueName: "format"))
    public var output: OutputFormat = .table

    @Option(
        help: ArgumentHelp(
            "Leave this field out of the comparison (a JSON pointer into a record, * for one segment; repeatable).",
            valueName: "pointer"))
    public var ignore: [String] = []

    public init() {}

    public func validate() throws {
        guard ServiceConfiguration.defaultPorts[self.name] != nil else {
            throw ValidationError(
                "<name> must be one of: \(ServiceConfiguration.defaultPorts.keys.sorted().joined(separator: ", ")), "
                    + "not \"\(self.name)\""
            )
        }
        guard FeedEndpoint(url: self.monolith) != nil else {
            throw ValidationError(
                "--monolith must be an http URL such as http://127.0.0.1:8081, not \"\(self.monolith)\"")
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
    }

    public func run() async throws {
        let monolith = FeedEndpoint(url: self.monolith)!
        let service =
            self.service.flatMap { FeedEndpoint(url: $0) }
            ?? FeedEndpoint(host: "127.0.0.1", port: ServiceConfiguration.defaultPorts[self.name]!)
        let report: ReconcileReport
        do {
            report = try await Reconciler(path: "/\(self.name)", ignore: self.ignore).reconcile(
                monolith: monolith, service: service)
        } catch {
            FileHandle.standardError.write(Data("strangler reconcile \(self.name): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let record = ReconcileRecord(
            service: self.name, clean: report.isClean, compared: report.compared, missing: report.missing.count,
            extra: report.extra.count,
            differing: report.differing.count, ignored: self.ignore)
        let kept = ReconcileRecord.path(service: self.name, dataDirectory: self.data)
        var keptError: String?
        do {
            try record.write(dataDirectory: self.data)
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
    /// Pointers (with `*`) left out of the comparison of two records.
    var ignore: [String] = []

    func reconcile(monolith: FeedEndpoint, service: FeedEndpoint) async throws -> ReconcileReport {
        let expected = try await self.records(at: monolith)
        let actual = try await self.records(at: service)
        var report = ReconcileReport(compared: expected.count)
        for (id, record) in expected.sorted(by: { $0.key < $1.key }) {
            guard let other = actual[id] else {
                report.missing.append(id)
                continue
            }
            let result = JSONDiff.diff(record, other, options: DiffOptions(ignore: self.ignore))
            if !result.isEqual {
                report.differing.append((id, result.differences.map { "\($0.pointer) \($0.kind.rawValue)" }))
            }
        }
        report.extra = actual.keys.filter { expected[$0] == nil }.sorted()
        return report
    }

    /// Every record of the list at `endpoint`, by id.
    func records(at endpoint: FeedEndpoint) async throws -> [String: JSONValue] {
        let client = OneShotHTTPClient(host: endpoint.host, port: endpoint.port)
        var records: [String: JSONValue] = [:]
        try await ListPages.read(
            self.path, send: { uri in try await client.send(.GET, uri) },
            refused: { uri, answer in
                Failure(
                    description:
                        "GET \(endpoint)\(uri) answered \(answer.status): \(String(buffer: answer.body).prefix(200))")
            },
            visit: { items in
                for item in items { if let id = item["id"]?.stringValue { records[id] = item } }
            })
        return records
    }
}
