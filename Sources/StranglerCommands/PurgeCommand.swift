public import ArgumentParser
import ControlPlane
import Diff
import DiffStore
import Foundation
import JSON
import Reports
import SharedStore

/// `strangler purge`: deletes stored diff samples (requests and answers kept as evidence), all of them or
/// one route's, or those recorded before a date; or, with `--subject`, every sample, fixture and HAR file that held
/// one person's value (erasure). Counters and signature counts stay: they hold no request data.
public struct PurgeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract:
            "Delete stored diff samples (all, one route's, those older than a date, or every one that held a value).",
        discussion: """
            Works on <data>/diffs.sqlite directly; the proxy may keep running. Afterwards the store is compacted \
            (VACUUM, then a TRUNCATE checkpoint of its WAL), so the deleted bytes are gone from both files. With \
            --store (or STRANGLER_STORE) it works on the shared store every proxy keeps its samples in instead, and \
            the erasure's audit entry goes to the store's audit log (PostgreSQL reuses the space of deleted rows; \
            its own VACUUM and backups are the operator's, docs/scale-out.md).

            --subject VALUE (an e-mail address, a phone number, an id…) finds the samples that held the value by its \
            keyed hash (samples keep the hashes of what was redacted from them, never the values) or by the value \
            itself (samples stored before redaction, or with the defaults off), deletes them, and deletes every \
            fixture (*.json) and HAR (*.har) file under each --fixtures folder that holds the value's token or the \
            value itself. It prints the counts and appends an entry to <data>/audit.jsonl with the hash, the counts, \
            the time and the actor: never the value.

            Examples:
              strangler purge                                  # every sample
              strangler purge --route contacts.get
              strangler purge --before 2026-11-01              # recorded before that day (UTC)
              strangler purge --before 2026-11-01T12:00:00Z --route deals.list
              strangler purge --subject ada@example.com --fixtures fixtures --reason "erasure request 2026-118"
              printf '%s\\n' "$VALUE" | strangler purge --subject - --fixtures fixtures   # the value not in argv
            """
    )

    @Option(help: "Only this route's samples.")
    public var route: String?

    @Option(
        help: ArgumentHelp(
            "Only samples recorded before this time: YYYY-MM-DD (UTC) or an ISO 8601 timestamp.", valueName: "date"))
    public var before: String?

    @Option(
        help: ArgumentHelp(
            "Erase one subject: every sample, fixture and HAR file that held this value (- reads it from standard "
                + "input).",
            valueName: "value"))
    public var subject: String?

    @Option(
        help: ArgumentHelp(
            "With --subject: a folder of exported fixtures or HAR files to erase it from (repeatable).",
            valueName: "dir"))
    public var fixtures: [String] = []

    @Option(help: "The proxy's data directory (holds diffs.sqlite).")
    public var data: String = ".strangler"

    @Option(
        help: ArgumentHelp(
            "Work on the shared store's samples instead (default STRANGLER_STORE); the password in PGPASSWORD.",
            valueName: "postgres://USER@HOST:PORT/DB"))
    public var store: String?

    @Option(help: "Who is acting, for the audit log (default: $USER).")
    public var actor: String?

    @Option(help: "Why, for the audit log (with --subject).")
    public var reason: String?

    public init() {}

    public func validate() throws {
        if let before, Self.parseDate(before) == nil {
            throw ValidationError(
                "--before must be a date (2026-11-01) or an ISO 8601 timestamp (2026-11-01T12:00:00Z), not "
                    + "\"\(before)\""
            )
        }
        if let route, route.isEmpty { throw ValidationError("--route must not be empty") }
        if let subject {
            guard !subject.isEmpty else { throw ValidationError("--subject must not be empty") }
            guard self.route == nil, self.before == nil else {
                throw ValidationError(
                    "--subject erases every sample that held the value: it takes no --route or --before")
            }
        } else if !self.fixtures.isEmpty {
            throw ValidationError("--fixtures needs --subject (the value to erase from those files)")
        }
        _ = try StoreFlag.optionalLocation(self.store)
    }

    public func run() async throws {
        // Every folder is checked before anything is deleted: a mistyped one must not leave an erasure half done.
        for folder in self.fixtures {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                FileHandle.standardError.write(
                    Data("strangler purge: --fixtures \(folder) is not a folder; nothing was deleted\n".utf8))
                throw ExitCode(2)
            }
        }
        if StoreFlag.url(self.store) != nil {
            try await self.runShared()
            return
        }
        let path = URL(fileURLWithPath: self.data).appendingPathComponent("diffs.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            FileHandle.standardError.write(
                Data("strangler purge: no diff store at \(path) (is --data the proxy's data directory?)\n".utf8))
            throw ExitCode(2)
        }
        let store = try DiffStore.open(path: path)
        guard let subject else {
            let deleted = try store.purge(route: self.route, before: self.before.flatMap(Self.parseDate))
            if deleted > 0 { try store.compact() }
            print("deleted \(deleted) sample\(deleted == 1 ? "" : "s")")
            return
        }
        let erasure = try self.erase(try Self.value(of: subject), store: store)
        print(erasure.text)
    }

    /// The same on the shared store.
    func runShared() async throws {
        let shared: SharedStore
        do {
            guard let connected = try await StoreFlag.connect(self.store) else { return }
            shared = connected
        } catch {
            FileHandle.standardError.write(Data("strangler purge: \(error)\n".utf8))
            throw ExitCode(2)
        }
        defer { shared.close() }
        guard let subject else {
            let deleted = try await shared.purgeSamples(route: self.route, before: self.before.flatMap(Self.parseDate))
            print("deleted \(deleted) sample\(deleted == 1 ? "" : "s") from \(shared.storeDescription)")
            return
        }
        let erasure = try await self.erase(try Self.value(of: subject), shared: shared)
        print(erasure.text)
    }

    /// `--subject`'s value; `-`: the value comes on standard input, so it stays out of the shell's history and the
    /// process list.
    static func value(of subject: String) throws -> String {
        let value = subject == "-" ? Self.firstLine(FileHandle.standardInput.readDataToEndOfFile()) : subject
        guard !value.isEmpty else { throw ValidationError("--subject -: standard input held no value") }
        return value
    }

    /// What an erasure deleted.
    struct Erasure: Equatable {
        var hash: String
        var samples = 0
        var fixtures = 0
        var har = 0

        var text: String {
            func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
            return
                "erased subject \(self.hash): deleted \(count(self.samples, "sample")), "
                + "\(count(self.fixtures, "fixture file")), "
                + "\(count(self.har, "HAR file"))"
        }
    }

    /// The first line of `data`, without its line end.
    static func firstLine(_ data: Data) -> String {
        let text = String(decoding: data, as: UTF8.self)
        return String(
            text.split(maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: \.isNewline).first ?? "")
    }

    /// The keyed hash the store's samples hold for `value`.
    static func hash(_ value: String, store: DiffStore) -> String {
        RedactionKey(bytes: store.redactionKey).hash(Array(value.utf8))
    }

    func erase(_ subject: String, store: DiffStore) throws -> Erasure {
        var erasure = Erasure(hash: Self.hash(subject, store: store))
        erasure.samples = try store.purge(subjectHash: erasure.hash) + store.purge(containing: Array(subject.utf8))
        try store.compact()
        try self.eraseFiles(subject, &erasure)
        try AuditLog.append(self.auditEntry(erasure), dataDirectory: self.data)
        return erasure
    }

    /// The same on the shared store: the value's hash by the store's key (every proxy's), the entry in its audit log.
    func erase(_ subject: String, shared: SharedStore) async throws -> Erasure {
        let key = try await shared.redactionKey()
        var erasure = Erasure(hash: RedactionKey(bytes: key).hash(Array(subject.utf8)))
        erasure.samples = try await shared.eraseSubject(hash: erasure.hash, value: Array(subject.utf8))
        // Samples this proxy kept in its own diff store before it moved to the store (or that were imported from
        // it) hold the value too: erased there as well, by that store's key.
        let path = URL(fileURLWithPath: self.data).appendingPathComponent("diffs.sqlite").path
        if FileManager.default.fileExists(atPath: path) {
            let local = try DiffStore.open(path: path)
            erasure.samples +=
                try local.purge(subjectHash: Self.hash(subject, store: local))
                + local.purge(containing: Array(subject.utf8))
            try local.compact()
        }
        try self.eraseFiles(subject, &erasure)
        try await shared.appendAudit(self.auditEntry(erasure).jsonText)
        return erasure
    }

    /// Deletes the fixture and HAR files under `--fixtures` that hold the value or its token.
    func eraseFiles(_ subject: String, _ erasure: inout Erasure) throws {
        // Files exported since redaction hold the value's token; older ones may hold the value itself.
        var needles = [Array(erasure.hash.utf8), Array(subject.utf8)]
        var escaped: [UInt8] = []
        JSONValue.appendQuoted(subject, to: &escaped)
        needles.append(Array(escaped.dropFirst().dropLast()))
        for folder in self.fixtures {
            for file in Self.files(in: folder) {
                let isHAR = file.hasSuffix(".har")
                guard let data = FileManager.default.contents(atPath: file),
                    needles.contains(where: { data.range(of: Data($0)) != nil })
                else { continue }
                try FileManager.default.removeItem(atPath: file)
                if isHAR { erasure.har += 1 } else { erasure.fixtures += 1 }
            }
        }
    }

    /// The audit entry of an erasure: the hash, the counts, the time and the actor, never the value.
    func auditEntry(_ erasure: Erasure) -> JSONValue {
        let actor =
            self.actor.flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.environment["USER"].flatMap {
                $0.isEmpty ? nil : $0
            } ?? "strangler-cli"
        let entry: JSONValue = .object([
            ("time", .string(ISO8601DateFormatter().string(from: Date()))), ("actor", .string(actor)),
            ("reason", self.reason.map(JSONValue.string) ?? .null),
            ("action", .string("purge")), ("subjectHash", .string(erasure.hash)),
            (
                "deleted",
                .object([
                    ("samples", .number(Double(erasure.samples))), ("fixtures", .number(Double(erasure.fixtures))),
                    ("har", .number(Double(erasure.har))),
                ])
            ),
            ("folders", .array(self.fixtures.map(JSONValue.string))),
        ])
        return entry
    }

    /// Every `*.json` and `*.har` file under `folder` (subfolders included), sorted.
    static func files(in folder: String) -> [String] {
        let base = URL(fileURLWithPath: folder)
        let names = FileManager.default.subpaths(atPath: folder) ?? []
        return names.filter { $0.hasSuffix(".json") || $0.hasSuffix(".har") }.map {
            base.appendingPathComponent($0).path
        }.sorted()
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
