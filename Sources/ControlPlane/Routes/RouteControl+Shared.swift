import Foundation
import JSON
import Logging
import RouteTable

// The table in a shared store (`--store`): a change is a compare-and-set on the store's head, and every proxy adopts
// the head, by notification or by its periodic re-read. routes.json is not written.
extension RouteControl {
    /// Commits `table` (already validated) as the store's next version if the head is still `expectedHash`, with its
    /// audit entry; installs it here once committed. A stale head is adopted before the refusal, so the caller's next
    /// read has the ETag that works.
    func commitShared(
        _ shared: any SharedTables, table: RouteTable, text: String, expectedHash: String, actor: String,
        reason: String?, detail: [(key: String, value: JSONValue)]
    ) async throws(ChangeError) -> LiveTable {
        let before = self.table.liveTable
        // Everything that can refuse the table runs before the store is written.
        var prepared: PreparedTable
        do {
            prepared = try self.table.prepare(table, text: text)
        } catch {
            throw .invalid(error)
        }
        let entry = self.auditEntry(
            actor: actor, reason: reason,
            detail: detail + [("before", before.table.document), ("after", table.document)])
        let outcome: CommitOutcome
        do {
            outcome = try await shared.commit(
                TableCommit(
                    text: text, contentHash: RouteTable.contentHash(of: text), expectedHash: expectedHash,
                    actor: actor, reason: reason, auditEntry: entry.jsonText,
                    epochs: table.routes.compactMap { route in
                        before.table.route(id: route.id)?.stage == route.stage
                            ? nil : (route.id, route.stage.rawValue)
                    }))
        } catch {
            throw .storeUnavailable(
                "\(error); nothing was changed, and this proxy routes by the table it has (version "
                    + "\(self.storeVersion)) until the store answers again")
        }
        switch outcome {
        case .stale(let head):
            self.adopt(head)
            throw .stale(currentHash: head.contentHash)
        case .committed(let version):
            // The store announced it too; whichever comes first installs it, and an older version never replaces a
            // newer one (another proxy's change may have been adopted while this one was being written).
            guard version > self.storeVersion else { return self.table.liveTable }
            prepared.version = version
            let snapshot = self.table.install(prepared)
            self.storeVersion = version
            self.startEpochs(from: before.table, to: table)
            self.lastReloadFailure = nil
            self.loadedAt = Date()
            self.logger.info(
                "routes changed", metadata: ["actor": "\(actor)", "version": "\(version)", "store": "shared"])
            return snapshot
        }
    }

    /// Adopts the store's head if it is newer than the table installed: what a notification, the periodic re-read
    /// and a stale commit do. A head this proxy cannot serve (a host that does not resolve here) is refused, logged
    /// and reported on `/admin/status`, and the last table stays.
    func adopt(_ head: StoredTable) {
        guard head.version > self.storeVersion else { return }
        do throws(RouteTableError) {
            let table = try RouteTable.parse(head.text)
            var prepared = try self.table.prepare(table, text: head.text)
            prepared.version = head.version
            let previous = self.table.liveTable.table
            self.table.install(prepared)
            self.storeVersion = head.version
            self.startEpochs(from: previous, to: table)
            self.lastReloadFailure = nil
            self.loadedAt = Date()
            self.logger.info(
                "routes adopted from the shared store",
                metadata: ["version": "\(head.version)", "routes": "\(table.routes.count)"])
        } catch {
            let message = "the shared store's version \(head.version) cannot be served here: \(error.description)"
            if self.lastReloadFailure?.message != message {
                self.logger.error(
                    "shared table refused; the last good table stays live", metadata: ["reason": "\(message)"])
            }
            self.lastReloadFailure = ReloadFailure(at: Date(), message: message)
        }
    }

    /// Reads the store's head version and adopts the head when it differs from the one installed. Returns false when
    /// the store could not be read (the proxy keeps routing by its table).
    @discardableResult
    public func follow() async -> Bool {
        guard let shared = self.shared else { return true }
        do {
            guard let head = try await shared.headVersion(), head.version > self.storeVersion else { return true }
            if let table = try await shared.head() { self.adopt(table) }
            return true
        } catch {
            return false
        }
    }

    /// The live table, first brought up to the store's head when the caller's `If-Match` is not the table installed
    /// here (the caller may have read it through another proxy that adopted a newer version first).
    public func current(expecting hash: String?) async -> LiveTable {
        let live = self.table.liveTable
        guard self.shared != nil, let hash, hash != live.contentHash else { return live }
        await self.follow()
        return self.table.liveTable
    }
}
