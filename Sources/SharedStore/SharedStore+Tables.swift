public import ControlPlane
public import Foundation
import Logging
import PostgresNIO

extension SharedStore: SharedTables {
    /// The channel a commit is announced on; the payload is the new version.
    public static let routesChannel = "strangler_routes"

    public func head() async throws(SharedStoreFailure) -> StoredTable? {
        try await self.bounded("reading the route table") { [client, logger] in
            let rows = try await client.query(
                """
                SELECT v.version, v.text, v.content_hash FROM strangler.route_head h
                JOIN strangler.route_versions v ON v.version = h.version
                """, logger: logger)
            for try await (version, text, hash) in rows.decode((Int, String, String).self) {
                return StoredTable(version: version, text: text, contentHash: hash)
            }
            return nil
        }
    }

    public func headVersion() async throws(SharedStoreFailure) -> (version: Int, contentHash: String)? {
        let head = try await self.bounded("reading the route table's version") { [client, logger] () -> HeadVersion? in
            let rows = try await client.query(
                "SELECT version, content_hash FROM strangler.route_head", logger: logger)
            for try await (version, hash) in rows.decode((Int, String).self) {
                return HeadVersion(version: version, contentHash: hash)
            }
            return nil
        }
        return head.map { ($0.version, $0.contentHash) }
    }

    public func commit(_ change: TableCommit) async throws(SharedStoreFailure) -> CommitOutcome {
        let written = try await self.bounded("writing the route table") { [client, logger] () -> Int? in
            try await client.withTransaction(logger: logger) { connection -> Int? in
                var version: Int?
                if let expected = change.expectedHash {
                    let rows = try await connection.query(
                        """
                        UPDATE strangler.route_head SET version = version + 1, content_hash = \(change.contentHash)
                        WHERE id = 1 AND content_hash = \(expected) RETURNING version
                        """, logger: logger)
                    for try await row in rows.decode(Int.self) { version = row }
                } else {
                    let rows = try await connection.query(
                        """
                        INSERT INTO strangler.route_head (id, version, content_hash) VALUES (1, 1, \(change.contentHash))
                        ON CONFLICT (id) DO NOTHING RETURNING version
                        """, logger: logger)
                    for try await row in rows.decode(Int.self) { version = row }
                }
                guard let version else { return nil }
                try await connection.query(
                    """
                    INSERT INTO strangler.route_versions (version, text, content_hash, actor, reason)
                    VALUES (\(version), \(change.text), \(change.contentHash), \(change.actor), \(change.reason))
                    """, logger: logger)
                try await connection.query(
                    "INSERT INTO strangler.audit (entry) VALUES (\(change.auditEntry))", logger: logger)
                let now = Date().timeIntervalSince1970
                for (route, stage) in change.epochs {
                    try await Self.startEpoch(route: route, stage: stage, at: now, on: connection, logger: logger)
                }
                // Delivered to every listener when the transaction commits, not before.
                try await connection.query(
                    "SELECT pg_notify(\(Self.routesChannel), \(String(version)))", logger: logger)
                return version
            }
        }
        if let written { return .committed(version: written) }
        guard let head = try await self.head() else {
            throw SharedStoreFailure("the store at \(self.location) holds no route table to change")
        }
        return .stale(head: head)
    }

    public func appendAudit(_ entry: String) async throws(SharedStoreFailure) {
        try await self.bounded("appending to the audit log") { [client, logger] in
            try await client.query("INSERT INTO strangler.audit (entry) VALUES (\(entry))", logger: logger)
            return ()
        }
    }

    public func auditEntries() async throws(SharedStoreFailure) -> [String] {
        try await self.bounded("reading the audit log") { [client, logger] in
            var entries: [String] = []
            for try await entry in try await client.query(
                "SELECT entry FROM strangler.audit ORDER BY id", logger: logger
            ).decode(String.self) {
                entries.append(entry)
            }
            return entries
        }
    }
}

private struct HeadVersion: Sendable {
    var version: Int
    var contentHash: String
}

extension SharedStore {
    /// Listens for commits on one connection of its own: `listening` runs once the server has confirmed the LISTEN
    /// (the caller re-reads the head then, for what was committed before), `changed` for every notification. Returns
    /// or throws when the connection ends; cancelling the task stops it.
    public func listen(
        listening: @Sendable () async -> Void, changed: @Sendable (_ version: Int?) async -> Void
    ) async throws {
        try await self.client.withConnection { connection in
            try await connection.listen(on: Self.routesChannel) { notifications in
                await listening()
                for try await notification in notifications {
                    await changed(Int(notification.payload))
                }
            }
        }
    }
}
