public import DiffStore
public import Foundation
public import JSON
public import Logging
public import RouteTable

/// Every change to the live table goes through here, one at a time: reloads of routes.json, and changes
/// through the admin API, which are written back to routes.json atomically and appended to the audit log.
public actor RouteControl {
    public enum ChangeError: Error, Sendable {
        /// The caller's `If-Match` is not the live table's hash.
        case stale(currentHash: String)
        case invalid(RouteTableError)
        case unknownRoute(String)
        case storage(String)
    }

    /// A reload of routes.json that was refused, with why.
    public struct ReloadFailure: Sendable {
        public var at: Date
        public var message: String
    }

    nonisolated public let store: RouteTableStore
    nonisolated public let routesPath: String
    nonisolated public let dataDirectory: String
    nonisolated public let auditPath: String
    /// Where stage changes start a new epoch (the gates count shadow comparisons since a route's last change).
    nonisolated public let diffStore: DiffStore?
    private let logger: Logger
    /// The file text last looked at by the watcher (valid or not), so that one bad edit is logged once.
    private var lastSeenText: String?
    public private(set) var lastReloadFailure: ReloadFailure?
    public private(set) var loadedAt = Date()

    public init(store: RouteTableStore, routesPath: String, dataDirectory: String, logger: Logger, diffStore: DiffStore? = nil) {
        self.store = store
        self.routesPath = routesPath
        self.dataDirectory = dataDirectory
        self.auditPath = URL(fileURLWithPath: dataDirectory).appendingPathComponent("audit.jsonl").path
        self.diffStore = diffStore
        self.logger = logger
        self.lastSeenText = store.snapshot.text
    }

    /// Reads routes.json and swaps it in if it changed and is valid; an invalid file is refused, logged and
    /// remembered, and the live table stays.
    public func reloadIfChanged() {
        let text: String
        do {
            text = try String(contentsOfFile: self.routesPath, encoding: .utf8)
        } catch {
            self.refuse(text: nil, message: "cannot read \(self.routesPath): \(error.localizedDescription)")
            return
        }
        guard text != self.lastSeenText else { return }
        self.lastSeenText = text
        guard text != self.store.snapshot.text else {
            self.lastReloadFailure = nil
            return
        }
        do {
            let table = try RouteTable.parse(text)
            let previous = self.store.snapshot.table
            let snapshot = try self.store.replace(with: table, text: text)
            self.startEpochs(from: previous, to: table)
            self.lastReloadFailure = nil
            self.loadedAt = Date()
            self.logger.info("routes reloaded", metadata: ["version": "\(snapshot.version)", "routes": "\(table.routes.count)"])
        } catch let error as RouteTableError {
            self.refuse(text: text, message: error.description)
        } catch {
            self.refuse(text: text, message: "\(error)")
        }
    }

    private func refuse(text: String?, message: String) {
        if self.lastReloadFailure?.message != message {
            self.logger.error("routes file refused; the last good table stays live", metadata: ["file": "\(self.routesPath)", "reason": "\(message)"])
        }
        self.lastReloadFailure = ReloadFailure(at: Date(), message: message)
    }

    /// Replaces the whole table with `text`, if the live one still has hash `expectedHash`.
    public func replace(text: String, expectedHash: String, actor: String, reason: String?) throws(ChangeError) -> RouteTableStore.Snapshot {
        let before = self.store.snapshot
        guard before.contentHash == expectedHash else { throw .stale(currentHash: before.contentHash) }
        let table: RouteTable
        do {
            table = try RouteTable.parse(text)
        } catch {
            throw .invalid(error)
        }
        return try self.commit(table: table, text: text, before: before, actor: actor, reason: reason, detail: [("action", .string("replace"))])
    }

    /// Replaces the table with `document` (validated as a whole), if the live one still has hash `expectedHash`;
    /// `detail` goes into the audit entry (`action` first).
    public func change(
        to document: JSONValue, expectedHash: String, actor: String, reason: String?, detail: [(key: String, value: JSONValue)]
    ) throws(ChangeError) -> RouteTableStore.Snapshot {
        let before = self.store.snapshot
        guard before.contentHash == expectedHash else { throw .stale(currentHash: before.contentHash) }
        let table: RouteTable
        do {
            table = try RouteTable.validate(document)
        } catch {
            throw .invalid(error)
        }
        return try self.commit(table: table, text: document.prettyJSONText, before: before, actor: actor, reason: reason, detail: detail)
    }

    /// The audit log's entries, oldest first (lines that are not JSON are skipped).
    public func auditEntries() -> [JSONValue] {
        Self.readAudit(path: self.auditPath)
    }

    static func readAudit(path: String) -> [JSONValue] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    /// Starts a new diff-store epoch for every route whose stage differs between two tables.
    private func startEpochs(from previous: RouteTable, to table: RouteTable) {
        guard let diffStore = self.diffStore else { return }
        let now = Date()
        for route in table.routes where previous.route(id: route.id)?.stage != route.stage {
            do {
                try diffStore.startEpoch(route: route.id, stage: route.stage.rawValue, at: now)
            } catch {
                self.logger.error("epoch not recorded", metadata: ["route": "\(route.id)", "error": "\(error)"])
            }
        }
    }

    static func settingStage(of routeID: String, to stage: Stage, in document: JSONValue) -> JSONValue {
        guard case .object(var members) = document, let index = members.firstIndex(where: { $0.key == "routes" }),
            case .array(var routes) = members[index].value
        else { return document }
        for (position, route) in routes.enumerated() where route["id"]?.stringValue == routeID {
            guard case .object(var fields) = route else { continue }
            if let stageIndex = fields.firstIndex(where: { $0.key == "stage" }) {
                fields[stageIndex].value = .string(stage.rawValue)
            } else {
                fields.append(("stage", .string(stage.rawValue)))
            }
            routes[position] = .object(fields)
        }
        members[index].value = .array(routes)
        return .object(members)
    }

    private func commit(
        table: RouteTable, text: String, before: RouteTableStore.Snapshot, actor: String, reason: String?, detail: [(key: String, value: JSONValue)]
    ) throws(ChangeError) -> RouteTableStore.Snapshot {
        // One writer of routes.json at a time across processes (the proxy, and the CLI when it edits the file itself),
        // and never over a file that changed since this table was read from it.
        let lock: FileLock
        do {
            lock = try FileLock(path: URL(fileURLWithPath: self.dataDirectory).appendingPathComponent("routes.lock").path)
        } catch {
            throw .storage("cannot lock: \(error)")
        }
        defer { lock.release() }
        if let onDisk = try? String(contentsOfFile: self.routesPath, encoding: .utf8), onDisk != before.text {
            throw .stale(currentHash: RouteTableStore.Snapshot.hash(onDisk))
        }
        do {
            try AtomicFile.write(text, to: self.routesPath)
        } catch {
            throw .storage("cannot write \(self.routesPath): \(error)")
        }
        let snapshot: RouteTableStore.Snapshot
        do {
            snapshot = try self.store.replace(with: table, text: text)
        } catch {
            throw .storage("cannot resolve the table's upstreams: \(error)")
        }
        self.startEpochs(from: before.table, to: table)
        self.lastSeenText = text
        self.lastReloadFailure = nil
        self.loadedAt = Date()
        var entry: [(key: String, value: JSONValue)] = [
            ("time", .string(ISO8601DateFormatter().string(from: Date()))),
            ("actor", .string(actor)),
            ("reason", reason.map { .string($0) } ?? .null),
        ]
        entry += detail
        entry += [("before", before.table.document), ("after", table.document)]
        do {
            try AtomicFile.append(JSONValue.object(entry).jsonText + "\n", to: self.auditPath)
        } catch {
            self.logger.error("audit log not written", metadata: ["file": "\(self.auditPath)", "error": "\(error)"])
        }
        self.logger.info("routes changed", metadata: ["actor": "\(actor)", "version": "\(snapshot.version)"])
        return snapshot
    }
}

/// An exclusive `flock` on a file (created if missing), released by `release()`.
final class FileLock {
    private let descriptor: Int32

    init(path: String) throws {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw AtomicFile.Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(descriptor)
                throw AtomicFile.Failure(description: "flock \(path): \(String(cString: strerror(errno)))")
            }
        }
        self.descriptor = descriptor
    }

    func release() {
        flock(self.descriptor, LOCK_UN)
        close(self.descriptor)
    }
}

/// Writes that leave no partial file behind.
enum AtomicFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes `text` to a temporary file beside `path`, fsyncs it, renames it over `path`, and fsyncs the folder.
    static func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw Failure(description: "open \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else {
                close(descriptor)
                unlink(temporary)
                throw Failure(description: "write \(temporary): \(String(cString: strerror(errno)))")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            close(descriptor)
            unlink(temporary)
            throw Failure(description: "fsync \(temporary): \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw Failure(description: "rename to \(path): \(String(cString: strerror(errno)))")
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Appends `text` in one write (O_APPEND) and fsyncs, creating the file and its folder if needed.
    static func append(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard result == bytes.count else { throw Failure(description: "write \(path): \(String(cString: strerror(errno)))") }
        fsync(descriptor)
    }
}
