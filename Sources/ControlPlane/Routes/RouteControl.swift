public import DiffStore
import Dispatch
public import Foundation
public import JSON
public import Logging
public import RouteTable

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every change to the live table goes through here, one at a time: reloads of routes.json, and changes
/// through the admin API, which are written back to routes.json atomically and appended to the audit log.
public actor RouteControl {
    public enum ChangeError: Error, Sendable {
        /// The caller's `If-Match` is not the live table's hash.
        case stale(currentHash: String)
        case invalid(RouteTableError)
        case unknownRoute(String)
        case storage(String)
        /// routes.json was edited by hand since the live table was loaded, and the edit is invalid: the admin API
        /// will not write over it. `message` says what is wrong with it.
        case fileInvalid(String)
        /// Another writer (a CLI, another proxy) held `routes.lock` for longer than a change waits; try again.
        case busy(String)
        /// The shared store could not be reached (or refused the write): nothing was changed, the proxy routes by the
        /// last table it had.
        case storeUnavailable(String)
    }

    /// A reload of routes.json that was refused, with why.
    public struct ReloadFailure: Sendable {
        public var at: Date
        public var message: String
    }

    nonisolated public let table: any RouteTableHost
    nonisolated public let routesPath: String
    nonisolated public let dataDirectory: String
    nonisolated public let auditPath: String
    /// Where stage changes start a new epoch (the gates count shadow comparisons since a route's last change).
    nonisolated public let diffStore: DiffStore?
    /// The shared store the table lives in (`--store`), instead of routes.json and the audit log's file: changes are
    /// compare-and-sets there, and other proxies' changes are adopted by ``follow()``.
    nonisolated public let shared: (any SharedTables)?
    /// The shared store's evidence, when the store keeps it (the gates count every proxy's comparisons there).
    nonisolated public var sharedEvidence: (any SharedEvidence)? { self.shared as? any SharedEvidence }
    /// The store's version of the table installed (without a store, unused).
    public internal(set) var storeVersion = 0
    let logger: Logger
    /// routes.json, routes.lock and the audit log are read, locked, written and fsync'd on this actor: its jobs run on
    /// a thread of its own, never on Swift's cooperative pool (one thread per core, which a slow disk would stall).
    private let files = QueueExecutor(label: "strangler.route-control")
    nonisolated public var unownedExecutor: UnownedSerialExecutor { self.files.asUnownedSerialExecutor() }
    /// The file text last looked at by the watcher (valid or not), so that one bad edit is logged once.
    private var lastSeenText: String?
    public internal(set) var lastReloadFailure: ReloadFailure?
    public internal(set) var loadedAt = Date()

    public init(
        table: any RouteTableHost, routesPath: String, dataDirectory: String, logger: Logger,
        diffStore: DiffStore? = nil, shared: (any SharedTables)? = nil
    ) {
        self.shared = shared
        self.storeVersion = shared == nil ? 0 : table.liveTable.version
        self.table = table
        self.routesPath = routesPath
        self.dataDirectory = dataDirectory
        self.auditPath = URL(fileURLWithPath: dataDirectory).appendingPathComponent("audit.jsonl").path
        self.diffStore = diffStore
        self.logger = logger
        self.lastSeenText = table.liveTable.text
    }

    /// Reads routes.json and swaps it in if it changed and is valid; an invalid file is refused, logged and
    /// remembered, and the live table stays.
    public func reloadIfChanged() {
        let text: String
        do {
            try RouteFile.refuseLink(self.routesPath)
            text = try String(contentsOfFile: self.routesPath, encoding: .utf8)
        } catch let failure as RouteFile.Failure {
            self.refuse(text: nil, message: failure.description)
            return
        } catch {
            self.refuse(text: nil, message: "cannot read \(self.routesPath): \(error.localizedDescription)")
            return
        }
        guard text != self.lastSeenText else { return }
        self.lastSeenText = text
        guard text != self.table.liveTable.text else {
            self.lastReloadFailure = nil
            return
        }
        do throws(RouteTableError) {
            let table = try RouteTable.parse(text)
            let previous = self.table.liveTable.table
            let snapshot = self.table.install(try self.table.prepare(table, text: text))
            self.startEpochs(from: previous, to: table)
            self.lastReloadFailure = nil
            self.loadedAt = Date()
            self.logger.info(
                "routes reloaded", metadata: ["version": "\(snapshot.version)", "routes": "\(table.routes.count)"])
            self.auditHandEdit(from: previous, to: table)
            if let diffStore = self.diffStore {
                let owner = FileOwner.name(of: self.routesPath) ?? "unknown"
                for review in SignatureReview.review(store: diffStore, from: previous, to: table, actor: owner) {
                    self.logger.info("diff rules changed by hand", metadata: ["review": "\(review.text)"])
                }
            }
        } catch {
            self.refuse(text: text, message: error.description)
        }
    }

    /// Records a change that came from the file, not through the CLI or the admin API: an edit by hand (or by a
    /// tool), audited as such with the stage moves it made and both tables, so that `history` shows it and `undo`
    /// can revert it. The actor is the file's owner.
    private func auditHandEdit(from previous: RouteTable, to table: RouteTable) {
        let changes = table.routes.compactMap { route -> StageChange? in
            guard let before = previous.route(id: route.id), before.stage != route.stage else { return nil }
            return StageChange(route: route.id, from: before.stage, to: route.stage)
        }
        var detail: [(key: String, value: JSONValue)] = [
            ("action", .string("edit")), ("file", .string(self.routesPath)),
        ]
        if !changes.isEmpty { detail.append(("changes", StageChange.json(changes))) }
        let name = URL(fileURLWithPath: self.routesPath).lastPathComponent
        let entry = self.auditEntry(
            actor: FileOwner.name(of: self.routesPath) ?? "unknown", reason: "\(name) edited by hand",
            detail: detail + [("before", previous.document), ("after", table.document)])
        do {
            let lock = try self.lock()
            defer { lock.release() }
            try AtomicFile.append(entry.jsonText + "\n", to: self.auditPath)
        } catch {
            self.logger.error(
                "the hand edit of the routes file was not audited",
                metadata: ["file": "\(self.auditPath)", "error": "\(error)"])
        }
    }

    private func refuse(text: String?, message: String) {
        if self.lastReloadFailure?.message != message {
            self.logger.error(
                "routes file refused; the last good table stays live",
                metadata: ["file": "\(self.routesPath)", "reason": "\(message)"])
        }
        self.lastReloadFailure = ReloadFailure(at: Date(), message: message)
    }

    /// Replaces the whole table with `text` (already parsed as `table`), if the live one still has hash `expectedHash`;
    /// `detail` goes into the audit entry (`action` first). The gates are the caller's (`RouteOperations.replace`).
    public func replace(
        text: String, table: RouteTable, expectedHash: String, actor: String, reason: String?,
        detail: [(key: String, value: JSONValue)]
    ) async throws(ChangeError) -> LiveTable {
        if let shared = self.shared {
            return try await self.commitShared(
                shared, table: table, text: text, expectedHash: expectedHash, actor: actor, reason: reason,
                detail: detail)
        }
        return try await self.patiently { () throws(ChangeError) in
            try self.replaceOnce(
                text: text, table: table, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
        }
    }

    private func replaceOnce(
        text: String, table: RouteTable, expectedHash: String, actor: String, reason: String?,
        detail: [(key: String, value: JSONValue)]
    ) throws(ChangeError) -> LiveTable {
        let before = self.table.liveTable
        guard before.contentHash == expectedHash else { throw .stale(currentHash: before.contentHash) }
        return try self.commit(table: table, text: text, before: before, actor: actor, reason: reason, detail: detail)
    }

    /// Replaces the table with `table` (validated by the caller, once), if the live one still has hash `expectedHash`;
    /// `detail` goes into the audit entry (`action` first).
    public func change(
        to table: RouteTable, expectedHash: String, actor: String, reason: String?,
        detail: [(key: String, value: JSONValue)]
    ) async throws(ChangeError) -> LiveTable {
        if let shared = self.shared {
            let before = self.table.liveTable
            guard before.contentHash == expectedHash else { throw .stale(currentHash: before.contentHash) }
            let text = JSONTextEdit.editing(before.text, into: table.document) ?? table.document.prettyJSONText
            return try await self.commitShared(
                shared, table: table, text: text, expectedHash: expectedHash, actor: actor, reason: reason,
                detail: detail)
        }
        return try await self.patiently { () throws(ChangeError) in
            try self.changeOnce(to: table, expectedHash: expectedHash, actor: actor, reason: reason, detail: detail)
        }
    }

    /// Runs `attempt` until it is not refused as busy, for `FileLock.patience` at most. The wait is a task's sleep:
    /// no thread is held (the cooperative pool has one thread per core), and the actor serves others meanwhile, so
    /// each attempt reads the live table again.
    private func patiently<Result>(_ attempt: () throws(ChangeError) -> Result) async throws(ChangeError) -> Result {
        let deadline = ContinuousClock.now + FileLock.patience
        while true {
            do {
                return try attempt()
            } catch .busy(let message) {
                guard ContinuousClock.now < deadline else { throw .busy(message) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    private func changeOnce(
        to table: RouteTable, expectedHash: String, actor: String, reason: String?,
        detail: [(key: String, value: JSONValue)]
    ) throws(ChangeError) -> LiveTable {
        let before = self.table.liveTable
        guard before.contentHash == expectedHash else { throw .stale(currentHash: before.contentHash) }
        let document = table.document
        // The file keeps its own formatting when the change only replaces values (a stage, a timeout); a change of
        // shape (a key or an array element added) is written pretty-printed.
        let text = JSONTextEdit.editing(before.text, into: document) ?? document.prettyJSONText
        return try self.commit(table: table, text: text, before: before, actor: actor, reason: reason, detail: detail)
    }

    /// Appends an entry that changes no table (an accepted triage decision) to the audit log, under routes.lock as
    /// every change is; `detail` follows `time`, `actor` and `reason`.
    public func record(
        actor: String, reason: String?, detail: [(key: String, value: JSONValue)]
    ) async throws(ChangeError) {
        let entry = self.auditEntry(actor: actor, reason: reason, detail: detail)
        if let shared = self.shared {
            do {
                try await shared.appendAudit(entry.jsonText)
            } catch {
                throw .storeUnavailable("the audit entry was not written: \(error); nothing was changed")
            }
            return
        }
        try await self.patiently { () throws(ChangeError) in
            let lock = try self.lock()
            defer { lock.release() }
            do {
                try AtomicFile.append(entry.jsonText + "\n", to: self.auditPath)
            } catch {
                throw .storage("the audit log \(self.auditPath) could not be written: \(error)")
            }
        }
    }

    func auditEntry(actor: String, reason: String?, detail: [(key: String, value: JSONValue)]) -> JSONValue {
        .object(
            [
                ("time", .string(ISO8601DateFormatter().string(from: Date()))), ("actor", .string(actor)),
                ("reason", reason.map { .string($0) } ?? .null),
            ]
                + detail)
    }

    /// Takes routes.lock: one writer of routes.json and the audit log at a time across processes (the proxy, and the
    /// CLI when it edits the file itself).
    private func lock() throws(ChangeError) -> FileLock {
        let lockPath = URL(fileURLWithPath: self.dataDirectory).appendingPathComponent("routes.lock").path
        do {
            return try FileLock(path: lockPath)
        } catch is FileLock.Busy {
            throw .busy(
                "\(lockPath) is held by another process for more than 5 s (a CLI or proxy changing the table?); "
                    + "nothing was changed, try again"
            )
        } catch {
            throw .storage("cannot lock: \(error)")
        }
    }

    /// The audit log's entries, oldest first (lines that are not JSON are skipped): the file's, or the shared
    /// store's.
    public func auditEntries() async throws(ChangeError) -> [JSONValue] {
        guard let shared = self.shared else { return Self.readAudit(path: self.auditPath) }
        do {
            return try await shared.auditEntries().compactMap { try? JSONParser.parse($0) }
        } catch {
            throw .storeUnavailable("the audit log could not be read: \(error)")
        }
    }

    /// Where the table and its audit log are kept, for messages: the routes file, or the shared store.
    nonisolated public var tableLocation: String {
        self.shared.map { "the shared store \($0.storeDescription)" } ?? self.routesPath
    }

    static func readAudit(path: String) -> [JSONValue] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    /// Starts a new diff-store epoch for every route whose stage differs between two tables.
    func startEpochs(from previous: RouteTable, to table: RouteTable) {
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

    /// routes.json no longer holds the live table (edited since it was loaded, and the watcher has not read it yet).
    /// A valid edit is loaded now, so the caller's next read gets an ETag that works; an invalid one is reported
    /// and left for its author to fix: the admin API never writes over a hand edit.
    private func diverged(_ onDisk: String) -> ChangeError {
        self.reloadIfChanged()
        let live = self.table.liveTable
        if live.text == onDisk { return .stale(currentHash: live.contentHash) }
        let why = self.lastReloadFailure?.message ?? "it cannot be loaded"
        return .fileInvalid(
            "\(self.routesPath) was edited since the live table (ETag \"\(live.contentHash)\") was loaded, and the "
                + "edit is refused: \(why). "
                + "Fix or restore the file (the proxy loads it once it is valid), then read the table again; nothing "
                + "was changed"
        )
    }

    private func commit(
        table: RouteTable, text: String, before: LiveTable, actor: String, reason: String?,
        detail: [(key: String, value: JSONValue)]
    ) throws(ChangeError) -> LiveTable {
        // One writer at a time, and never over a file that changed since this table was read from it.
        let lock = try self.lock()
        defer { lock.release() }
        if let onDisk = try? String(contentsOfFile: self.routesPath, encoding: .utf8), onDisk != before.text {
            throw self.diverged(onDisk)
        }
        // Everything that can refuse the table runs before the file is touched: after the write, nothing can fail.
        let prepared: PreparedTable
        do {
            prepared = try self.table.prepare(table, text: text)
        } catch {
            throw .invalid(error)
        }
        do {
            try RouteFile.refuseLink(self.routesPath)
            try AtomicFile.write(text, to: self.routesPath)
        } catch {
            throw .storage("cannot write \(self.routesPath): \(error); nothing was changed")
        }
        let snapshot = self.table.install(prepared)
        self.startEpochs(from: before.table, to: table)
        self.lastSeenText = text
        self.lastReloadFailure = nil
        self.loadedAt = Date()
        let entry = self.auditEntry(
            actor: actor, reason: reason,
            detail: detail + [("before", before.table.document), ("after", table.document)])
        do {
            try AtomicFile.append(entry.jsonText + "\n", to: self.auditPath)
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
    /// How long a change waits for another writer to finish.
    static let patience: Duration = .seconds(5)

    /// Another process holds the lock now.
    struct Busy: Error {}

    init(path: String) throws {
        try DataDirectory.create(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AtomicFile.Failure(description: "open \(path): \(String(cString: strerror(errno)))")
        }
        // Never waits: a process stuck while holding the lock must not freeze a thread (the caller retries, sleeping).
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            if error == EINTR { continue }
            close(descriptor)
            if error == EWOULDBLOCK { throw Busy() }
            throw AtomicFile.Failure(description: "flock \(path): \(String(cString: strerror(error)))")
        }
        self.descriptor = descriptor
    }

    func release() {
        flock(self.descriptor, LOCK_UN)
        close(self.descriptor)
    }
}

/// Writes that leave no partial file behind.
package enum AtomicFile {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        package init(description: String) { self.description = description }
    }

    /// Writes `text` to a new temporary file beside `path` (created with `O_EXCL | O_NOFOLLOW` under a random name,
    /// so nothing planted there, a symbolic link say, is ever opened), fsyncs it, renames it over `path`, and fsyncs
    /// the folder. The file keeps the mode of the one it replaces (0644 for a new one).
    package static func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let mode = mode_t(FileMode.of(path) ?? 0o644)
        var temporary = ""
        var descriptor: Int32 = -1
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<8 {
            temporary =
                url.deletingLastPathComponent().appendingPathComponent(
                    ".\(url.lastPathComponent).tmp-\(String(generator.next() as UInt64, radix: 36))"
                ).path
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw Failure(description: "open \(temporary): \(String(cString: strerror(errno)))")
        }
        func fail(_ what: String) -> Failure {
            let failure = Failure(description: "\(what) \(temporary): \(String(cString: strerror(errno)))")
            close(descriptor)
            unlink(temporary)
            return failure
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { throw fail("write") }
            written += result
        }
        // fchmod, not the open mode: the umask must not decide the file's mode.
        guard fchmod(descriptor, mode) == 0 else { throw fail("fchmod") }
        guard fsync(descriptor) == 0 else { throw fail("fsync") }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let failure = Failure(description: "rename to \(path): \(String(cString: strerror(errno)))")
            unlink(temporary)
            throw failure
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Appends `text` in one write (O_APPEND) and fsyncs, creating the file (mode 0600) and its folder (0700) if
    /// needed. The file is made 0600 whatever it was (an audit log holds who changed what, and why); a symbolic link
    /// in its place is refused.
    package static func append(_ text: String, to path: String) throws {
        try DataDirectory.create(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        fchmod(descriptor, 0o600)
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard result == bytes.count else {
            throw Failure(description: "write \(path): \(String(cString: strerror(errno)))")
        }
        fsync(descriptor)
    }
}

/// Who owns a file, by user name.
enum FileOwner {
    static func name(of path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0, let entry = getpwuid(status.st_uid), let name = entry.pointee.pw_name else {
            return nil
        }
        return String(cString: name)
    }
}

/// The proxy's data directory: created 0700 (it holds the admin token, the audit log and the diff store).
package enum DataDirectory {
    package static func create(_ path: String) throws {
        let path = path.isEmpty ? "." : path
        if FileManager.default.fileExists(atPath: path) { return }
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(path, 0o700)
    }
}

/// File modes, read without following a symbolic link.
package enum FileMode {
    /// The permission bits of the file at `path` (the link's own for a link), nil when there is none.
    package static func of(_ path: String) -> Int? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue
    }
}

/// Checks on the routes file itself.
public enum RouteFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Refuses a routes file that is a symbolic link: the table is written by renaming a new file over it, which
    /// would replace the link with a file (and a link lets whoever can change it choose what is read and written).
    public static func refuseLink(_ path: String) throws(Failure) {
        guard
            (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType == .typeSymbolicLink
        else { return }
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)).map { " (to \($0))" } ?? ""
        throw Failure(
            description:
                "\(path) is a symbolic link\(target); the proxy writes the table by replacing the file, so it must be "
                + "the file itself: "
                + "pass --routes with the real path")
    }
}
