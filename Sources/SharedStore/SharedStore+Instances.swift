public import ControlPlane
public import Foundation
public import JSON
import Logging
import PostgresNIO

/// A proxy that routes by the store, as it last reported itself.
public struct InstanceRecord: Sendable, Equatable {
    /// Chosen at start (`--instance-id`, or host, pid and a random suffix): stable for the process's life.
    public var id: String
    /// The data plane's address and the admin API's URL.
    public var proxy: String
    public var admin: String
    public var host: String
    public var pid: Int
    /// The store's version of the table it routes by, and its hash.
    public var version: Int
    public var contentHash: String
    public var startedAt: Date
    public var lastSeen: Date
    /// Seconds since its last report, by the store's clock (no two machines' clocks compared).
    public var silentFor: Double

    public init(
        id: String, proxy: String, admin: String, host: String, pid: Int, version: Int, contentHash: String,
        startedAt: Date, lastSeen: Date = Date(), silentFor: Double = 0
    ) {
        self.id = id
        self.proxy = proxy
        self.admin = admin
        self.host = host
        self.pid = pid
        self.version = version
        self.contentHash = contentHash
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.silentFor = silentFor
    }
}

/// Every instance with how it stands: current, routing by an old version, or silent (stopped reporting).
public struct InstanceListing: Sendable {
    public enum Standing: String, Sendable {
        case current
        /// Routes by a version older than the head.
        case behind
        /// Has not reported for longer than `silentAfter`: stopped, hung, or cut off from the store.
        case silent
    }

    public var headVersion: Int?
    public var headHash: String?
    public var silentAfter: Double
    public var instances: [InstanceRecord]
    /// The asking proxy's id.
    public var selfID: String?

    public init(
        headVersion: Int?, headHash: String?, silentAfter: Double, instances: [InstanceRecord], selfID: String?
    ) {
        self.headVersion = headVersion
        self.headHash = headHash
        self.silentAfter = silentAfter
        self.instances = instances
        self.selfID = selfID
    }

    public func standing(of instance: InstanceRecord) -> Standing {
        if instance.silentFor > self.silentAfter { return .silent }
        if let head = self.headVersion, instance.version < head { return .behind }
        return .current
    }

    /// The instances that are not current.
    public var flagged: [InstanceRecord] { self.instances.filter { self.standing(of: $0) != .current } }

    /// `GET /admin/instances`.
    public var json: JSONValue {
        let formatter = ISO8601DateFormatter()
        return .object([
            ("version", self.headVersion.map { .number(Double($0)) } ?? .null),
            ("hash", self.headHash.map(JSONValue.string) ?? .null),
            ("silentAfterSeconds", .number(self.silentAfter)),
            ("flagged", .number(Double(self.flagged.count))),
            (
                "instances",
                .array(
                    self.instances.map { instance in
                        .object([
                            ("id", .string(instance.id)), ("self", .bool(instance.id == self.selfID)),
                            ("standing", .string(self.standing(of: instance).rawValue)),
                            ("proxy", .string(instance.proxy)), ("admin", .string(instance.admin)),
                            ("host", .string(instance.host)), ("pid", .number(Double(instance.pid))),
                            ("version", .number(Double(instance.version))), ("hash", .string(instance.contentHash)),
                            ("startedAt", .string(formatter.string(from: instance.startedAt))),
                            ("lastSeen", .string(formatter.string(from: instance.lastSeen))),
                            ("silentSeconds", .number((instance.silentFor * 10).rounded() / 10)),
                        ])
                    })
            ),
        ])
    }
}

extension SharedStore {
    /// Records (or refreshes) `instance`'s report; `last_seen` is the store's clock.
    public func report(_ instance: InstanceRecord) async throws(SharedStoreFailure) {
        try await self.bounded("reporting this proxy") { [client, logger] in
            try await client.query(
                """
                INSERT INTO strangler.instances
                    (id, proxy, admin, host, pid, version, content_hash, started_at, last_seen)
                VALUES (\(instance.id), \(instance.proxy), \(instance.admin), \(instance.host), \(instance.pid),
                    \(instance.version), \(instance.contentHash), \(instance.startedAt), now())
                ON CONFLICT (id) DO UPDATE SET proxy = excluded.proxy, admin = excluded.admin,
                    version = excluded.version, content_hash = excluded.content_hash, last_seen = now()
                """, logger: logger)
            return ()
        }
    }

    /// Removes an instance (a proxy stopping says so; `forgetSilent` drops the long silent).
    public func forget(instance id: String) async throws(SharedStoreFailure) {
        try await self.bounded("removing this proxy's report") { [client, logger] in
            try await client.query("DELETE FROM strangler.instances WHERE id = \(id)", logger: logger)
            return ()
        }
    }

    /// Drops the instances silent for more than `seconds`: a proxy that crashed an hour ago is history, not a
    /// warning.
    public func forgetSilent(after seconds: Double) async throws(SharedStoreFailure) {
        try await self.bounded("dropping long-silent instances") { [client, logger] in
            try await client.query(
                "DELETE FROM strangler.instances WHERE last_seen < now() - make_interval(secs => \(seconds))",
                logger: logger)
            return ()
        }
    }

    /// Every instance, oldest first, with the head it should route by.
    public func instances(silentAfter: Double, selfID: String?) async throws(SharedStoreFailure) -> InstanceListing {
        let records = try await self.bounded("listing the instances") { [client, logger] in
            var records: [InstanceRecord] = []
            let rows = try await client.query(
                """
                SELECT id, proxy, admin, host, pid, version, content_hash, started_at, last_seen,
                    EXTRACT(EPOCH FROM (now() - last_seen))::float8
                FROM strangler.instances ORDER BY started_at, id
                """, logger: logger)
            for try await (id, proxy, admin, host, pid, version, hash, started, seen, silent) in rows.decode(
                (String, String, String, String, Int, Int, String, Date, Date, Double).self)
            {
                records.append(
                    InstanceRecord(
                        id: id, proxy: proxy, admin: admin, host: host, pid: pid, version: version, contentHash: hash,
                        startedAt: started, lastSeen: seen, silentFor: silent))
            }
            return records
        }
        let head = try await self.headVersion()
        return InstanceListing(
            headVersion: head?.version, headHash: head?.contentHash, silentAfter: silentAfter, instances: records,
            selfID: selfID)
    }
}
