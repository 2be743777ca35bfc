public import ArgumentParser
import ControlPlane
import DiffStore
import Foundation
import JSON
import Logging
import PostgresSupport
import RouteTable
import SharedStore

/// `strangler store import|export`: moves a route table and its evidence between the file default (routes.json and
/// `--data`) and a shared store on PostgreSQL.
public struct StoreCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Move a route table and its evidence between routes.json/--data and a shared store (PostgreSQL).",
        discussion: """
            What moves: the route table, its audit log (<data>/audit.jsonl), each route's evidence since its last \
            stage change (the stage, when it began, the comparisons, matches, mismatches and mismatch signatures \
            counted since: what the gates read), every triage decision, the kept samples with the hashes of what \
            was redacted from them, the differing and noise pointers' counts, the minute buckets (<data>/diffs.sqlite), \
            the key of the redaction hashes (<data>/redaction.key) and each entity's latest reconcile record \
            (<data>/reconcile/). Counts from before a route's last stage change stay where they are \
            (docs/scale-out.md).

            import writes into an empty store, in one transaction (a store that holds a table is refused and nothing \
            is written); export writes into a fresh place (a --routes file, <data>/audit.jsonl or <data>/diffs.sqlite \
            that exists is refused, and so are <data>/redaction.key and <data>/reconcile/), routes.json last, and removes what it wrote if a step fails.

            Examples:
              strangler store import --store postgres://strangler@db:5432/strangler --routes routes.json --data .strangler
              strangler store export --store postgres://strangler@db:5432/strangler --routes out/routes.json --data out
            """,
        subcommands: [StoreImportCommand.self, StoreExportCommand.self]
    )

    public init() {}
}

/// The flags both directions share.
public struct StoreMoveOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The shared store (default STRANGLER_STORE); the password in PGPASSWORD.",
            valueName: "postgres://USER@HOST:PORT/DB"))
    public var store: String?

    @Option(help: "The route table file.")
    public var routes: String = "routes.json"

    @Option(help: "The data directory: audit.jsonl and diffs.sqlite.")
    public var data: String = ".strangler"

    public init() {}

    public func validate() throws {
        _ = try self.location()
        guard !self.routes.isEmpty else { throw ValidationError("--routes must name a file") }
        guard !self.data.isEmpty else { throw ValidationError("--data must name a directory") }
    }

    /// `--store`, else `STRANGLER_STORE`, read.
    func location() throws -> StoreLocation {
        guard let text = StoreFlag.url(self.store) else {
            throw ValidationError(
                "--store (or STRANGLER_STORE) must name the shared store: postgres://USER@HOST:PORT/DB")
        }
        return try StoreFlag.location(text, flag: self.store == nil ? "STRANGLER_STORE" : "--store")
    }

    var auditPath: String { AuditLog.path(dataDirectory: self.data) }
    var diffsPath: String { URL(fileURLWithPath: self.data).appendingPathComponent("diffs.sqlite").path }
    var keyPath: String { URL(fileURLWithPath: self.data).appendingPathComponent(DiffStore.keyFileName).path }
    var reconcilePath: String { URL(fileURLWithPath: self.data).appendingPathComponent("reconcile").path }

    /// The route ids of a table's text.
    static func routeIDs(_ text: String) throws -> [String] {
        try RouteTable.parse(text).routes.map(\.id)
    }

    func connect() async throws -> SharedStore {
        try await SharedStore.connect(
            try self.location(), logger: Logger(label: "strangler.store"), timeout: .seconds(30))
    }
}

/// A failure of a move, said as it is (exit 1).
struct StoreMoveFailure: Error, CustomStringConvertible {
    var description: String
}

/// `strangler store import`.
public struct StoreImportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Write routes.json, its audit log and its evidence into an empty shared store.")

    @OptionGroup public var options: StoreMoveOptions

    public init() {}

    /// What the files hold, read and checked (nothing is written before all of it reads). (Never inlined: Swift 6.3's
    /// optimizer crashes splitting `move()`'s coroutine with it inside.)
    @inline(never)
    func bundle() throws -> StoreBundle {
        let text: String
        do {
            text = try String(contentsOfFile: self.options.routes, encoding: .utf8)
        } catch {
            throw StoreMoveFailure(description: "cannot read \(self.options.routes): \(error.localizedDescription)")
        }
        let routes: [String]
        do {
            routes = try StoreMoveOptions.routeIDs(text)
        } catch {
            throw StoreMoveFailure(description: "\(self.options.routes): \(error)")
        }
        var audit: [String] = []
        if FileManager.default.fileExists(atPath: self.options.auditPath) {
            let lines = try String(contentsOfFile: self.options.auditPath, encoding: .utf8).split(
                separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let entry = try? JSONParser.parse(Array(line.utf8)), entry.objectValue != nil else {
                    throw StoreMoveFailure(
                        description: "\(self.options.auditPath) line \(index + 1) is not one JSON object; nothing moved"
                    )
                }
                audit.append(entry.jsonText)
            }
        }
        var bundle = StoreBundle(table: text, audit: audit, evidence: [], triage: [])
        if FileManager.default.fileExists(atPath: self.options.diffsPath) {
            // The key is moved only when there is one: opening the store would make one.
            let hadKey = FileManager.default.fileExists(atPath: self.options.keyPath)
            let diffs = try DiffStore.open(path: self.options.diffsPath, maxSamplesPerSignature: .max)
            for route in routes {
                bundle.evidence.append(.init(route: route, counts: try diffs.epochCounts(route: route)))
            }
            bundle.triage = try diffs.triageDecisions()
            bundle.diffs = try diffs.pointerCounts()
            bundle.diffs.samples = try diffs.allSamples()
            bundle.noiseChecks = try diffs.noiseChecks()
            bundle.buckets = try diffs.buckets()
            if hadKey { bundle.redactionKey = diffs.redactionKey }
        }
        bundle.reconcile = try self.reconcileRecords()
        return bundle
    }

    /// The records under `<data>/reconcile/`, each read and checked.
    func reconcileRecords() throws -> [ReconcileRecord] {
        let folder = self.options.reconcilePath
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var records: [ReconcileRecord] = []
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            let entity = String(name.dropLast(5))
            guard ReconcileRecord.isEntityName(entity), let text = try? String(contentsOfFile: path, encoding: .utf8),
                let record = ReconcileRecord(text: text, service: entity)
            else {
                throw StoreMoveFailure(description: "\(path) is not a reconcile record; nothing moved")
            }
            // The file names the entity, as the gates read it.
            guard record.service == entity else {
                throw StoreMoveFailure(
                    description: "\(path) holds the record of \"\(record.service)\", not of \(entity); nothing moved")
            }
            records.append(record)
        }
        return records
    }

    public func run() async throws {
        do {
            try await self.move()
        } catch {
            FileHandle.standardError.write(Data("strangler store import: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func move() async throws {
        let bundle = try self.bundle()
        let summary = StoreSummary(bundle)
        let store = try await self.options.connect()
        let actor = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        let entry = JSONValue.object([
            ("time", .string(ISO8601DateFormatter().string(from: Date()))), ("actor", .string(actor)),
            ("reason", .string("imported from \(self.options.routes) and \(self.options.data)")),
            ("action", .string("import")), ("file", .string(self.options.routes)),
        ])
        let written = await Self.write(bundle, into: store, actor: actor, entry: entry.jsonText)
        store.close()
        try written.get()
        print(summary.text(verb: "imported into \(store.location)"))
    }

    /// The import's one transaction, its outcome as a value. (A function of its own: Swift 6.3's optimizer crashes
    /// splitting `move()`'s coroutine with the bundle and this typed-throws call in one frame.)
    @inline(never)
    static func write(
        _ bundle: StoreBundle, into store: SharedStore, actor: String, entry: String
    ) async -> Result<Void, SharedStoreFailure> {
        do {
            try await store.importBundle(
                bundle, contentHash: RouteTable.contentHash(of: bundle.table), actor: actor, entry: entry)
            return .success(())
        } catch {
            return .failure(error)
        }
    }
}

/// `strangler store export`.
public struct StoreExportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the shared store's table, audit log and evidence into routes.json and a fresh data directory.")

    @OptionGroup public var options: StoreMoveOptions

    public init() {}

    public func run() async throws {
        do {
            try await self.export()
        } catch {
            FileHandle.standardError.write(Data("strangler store export: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func export() async throws {
        try self.refuseExisting()
        let location = try self.options.location()
        let bundle = try await Self.read(location)
        guard let bundle else { throw StoreMoveFailure(description: "the store at \(location) holds no route table") }
        // A record's entity names its file: one that could not (a store written by hand) moves nothing.
        for record in bundle.reconcile where !ReconcileRecord.isEntityName(record.service) {
            throw StoreMoveFailure(
                description: "the store holds a reconcile record of \"\(record.service)\", which is not an entity "
                    + "name (letters, digits, '.', '_' and '-'); nothing written")
        }
        try self.write(bundle)
        print(StoreSummary(bundle).text(verb: "exported from \(location)"))
    }

    /// Export writes only into a fresh place.
    func refuseExisting() throws {
        for path in [
            self.options.routes, self.options.auditPath, self.options.diffsPath, self.options.keyPath,
            self.options.reconcilePath,
        ] {
            if FileManager.default.fileExists(atPath: path) {
                throw StoreMoveFailure(description: "\(path) exists: export writes into a fresh place; nothing written")
            }
        }
    }

    /// What the store at `location` holds (nil: no table).
    static func read(_ location: StoreLocation) async throws -> StoreBundle? {
        let store = try await SharedStore.connect(
            location, logger: Logger(label: "strangler.store"), timeout: .seconds(30))
        defer { store.close() }
        return try await store.exportBundle(routes: Self.routes(of:))
    }

    static func routes(of text: String) -> [String] {
        (try? StoreMoveOptions.routeIDs(text)) ?? []
    }

    /// Writes the diff store and the audit log, then the table; on a failure, removes what it wrote.
    func write(_ bundle: StoreBundle) throws {
        let written = [
            self.options.diffsPath, self.options.diffsPath + "-wal", self.options.diffsPath + "-shm",
            self.options.auditPath, self.options.keyPath, self.options.reconcilePath,
        ]
        do {
            try FileManager.default.createDirectory(
                atPath: self.options.data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // The key before the diff store (which would make one): the samples' hashes are by the store's.
            if let key = bundle.redactionKey { try Self.writeKey(key, to: self.options.keyPath) }
            try Self.writeEvidence(bundle, to: self.options.diffsPath)
            for record in bundle.reconcile { try record.write(dataDirectory: self.options.data) }
            try AtomicFile.write(bundle.audit.map { $0 + "\n" }.joined(), to: self.options.auditPath)
            try AtomicFile.write(bundle.table, to: self.options.routes)
        } catch {
            for path in written { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
    }

    /// Writes the key into a new file that only the owner can read from its first byte (never over one).
    static func writeKey(_ key: [UInt8], to path: String) throws {
        let descriptor = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw StoreMoveFailure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        fchmod(descriptor, 0o600)
        let written = key.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard written == key.count, fsync(descriptor) == 0 else {
            throw StoreMoveFailure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func writeEvidence(_ bundle: StoreBundle, to path: String) throws {
        let diffs = try DiffStore.open(path: path, maxSamplesPerSignature: .max)
        let now = Date()
        for evidence in bundle.evidence where bundle.moves(evidence) {
            if let since = evidence.counts.since {
                try diffs.startEpoch(route: evidence.route, stage: evidence.counts.stage ?? "transform", at: since)
            }
            try diffs.apply(bundle.batch(evidence, at: now))
        }
        for decision in bundle.triage { try diffs.recordTriage(decision) }
        try diffs.apply(bundle.diffs)
        // The buckets as the store kept them, not the minute of the export the counts above were added in.
        try diffs.replaceBuckets(with: bundle.buckets)
    }
}

/// What a move moved, in one line.
struct StoreSummary {
    let bundle: StoreBundle

    init(_ bundle: StoreBundle) {
        self.bundle = bundle
    }

    func text(verb: String) -> String {
        let routes = (try? StoreMoveOptions.routeIDs(self.bundle.table).count) ?? 0
        let evidence = self.bundle.evidence.filter { !$0.isEmpty }
        let compared = evidence.reduce(0) { $0 + $1.counts.compared }
        return
            "\(verb): the table (\(routes) routes), \(self.bundle.audit.count) audit entries, the evidence of "
            + "\(evidence.count) routes (\(compared) comparisons since their last stage change), "
            + "\(self.bundle.triage.count) triage decisions, \(self.bundle.diffs.samples.count) samples, "
            + "\(self.bundle.reconcile.count) reconcile records"
    }
}
