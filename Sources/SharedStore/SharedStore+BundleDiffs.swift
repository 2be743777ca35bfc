import ControlPlane
import DiffStore
import Foundation
import JSON
import Logging
import PostgresNIO

// The samples, pointers, noise, buckets, reconcile records and redaction key of a `strangler store import|export`.
extension SharedStore {
    /// Writes the bundle's diffs inside the import's transaction: the key first (the samples' hashes are by it), then
    /// the samples (every one a signature kept), pointers and noise (no counters: no minute bucket of the import's
    /// own), the buckets as they were, and the reconcile records.
    static func importDiffs(_ bundle: StoreBundle, on connection: PostgresConnection, logger: Logger) async throws {
        if let key = bundle.redactionKey, !key.isEmpty {
            try await Self.adoptKey(key, on: connection, logger: logger)
        }
        var diffs = bundle.diffs
        diffs.counts = [:]
        try await Self.addDiffs(diffs, samplesPerSignature: .max, on: connection, logger: logger)
        try await Self.insert(bundle.buckets, on: connection, logger: logger)
        for record in bundle.reconcile {
            let text = record.json.jsonText
            try await connection.query(
                "INSERT INTO strangler.reconcile_records (entity, record) VALUES (\(record.service), \(text))",
                logger: logger)
        }
    }

    /// Makes `key` the store's redaction key (inside the import's transaction): refused when the store has another,
    /// since the imported samples' hashes are by this one.
    static func adoptKey(_ key: [UInt8], on connection: PostgresConnection, logger: Logger) async throws {
        guard try await Self.redactionKey(offering: key, on: connection, logger: logger) == key else {
            throw SharedStoreFailure(
                "the store already has a redaction key of its own, and the imported samples are hashed by another; "
                    + "nothing was written")
        }
    }

    /// Inserts minute buckets as they are (inside the caller's transaction).
    static func insert(_ buckets: [TimeBucket], on connection: PostgresConnection, logger: Logger) async throws {
        let columns = Self.counterColumns
        let sql =
            "INSERT INTO strangler.evidence_buckets (route, start, \(columns.joined(separator: ", "))) "
            + "VALUES (\((1...(columns.count + 2)).map { "$\($0)" }.joined(separator: ", ")))"
        for bucket in buckets {
            var binds = PostgresBindings()
            binds.append(bucket.route)
            binds.append(Int(bucket.start.timeIntervalSince1970))
            for counter in RouteCounts.counters { binds.append(bucket.counts[keyPath: counter.keyPath]) }
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        }
    }

    /// What the store's diffs hold, for an export: samples with their subjects, pointers, noise and noise checks, the
    /// buckets, each entity's latest reconcile record, the key.
    func exportDiffs(into bundle: inout StoreBundle) async throws(SharedStoreFailure) {
        let samples = try await self.storedSamples(route: nil, signature: nil, newestFirst: false, limit: nil)
        bundle.buckets = try await self.buckets(route: nil, since: nil)
        let read = try await self.bounded("reading the diffs to export", within: max(self.timeout, .seconds(60))) {
            [client, logger] in
            try await Self.exportedDiffs(client, logger)
        }
        bundle.diffs = read.diffs
        bundle.diffs.samples = samples.map { $0.diffSample(subjects: read.subjects[$0.id] ?? []) }
        bundle.noiseChecks = read.checks
        bundle.reconcile = read.records
        bundle.redactionKey = read.key
    }

    struct ExportedDiffs: Sendable {
        var diffs = DiffBatch()
        var subjects: [Int64: Set<String>] = [:]
        var checks: [String: Int] = [:]
        var records: [ReconcileRecord] = []
        var key: [UInt8]?
    }

    static func exportedDiffs(_ client: PostgresClient, _ logger: Logger) async throws -> ExportedDiffs {
        var read = ExportedDiffs()
        for try await (id, hash) in try await client.query(
            "SELECT sample_id, hash FROM strangler.evidence_sample_subjects", logger: logger
        ).decode((Int64, String).self) {
            read.subjects[id, default: []].insert(hash)
        }
        for try await (route, pointer, kind, count) in try await client.query(
            "SELECT route, pointer, kind, count FROM strangler.evidence_pointers", logger: logger
        ).decode((String, String, String, Int).self) {
            read.diffs.pointers[.init(route: route, pointer: pointer, kind: kind)] = count
        }
        for try await (route, pointer, count) in try await client.query(
            "SELECT route, pointer, count FROM strangler.evidence_noise", logger: logger
        ).decode((String, String, Int).self) {
            read.diffs.noise[.init(route: route, pointer: pointer)] = count
        }
        for try await (route, count) in try await client.query(
            "SELECT route, noise_checks FROM strangler.evidence_counters WHERE noise_checks > 0", logger: logger
        ).decode((String, Int).self) {
            read.checks[route] = count
        }
        for try await (entity, text) in try await client.query(
            """
            SELECT DISTINCT ON (entity) entity, record FROM strangler.reconcile_records ORDER BY entity, id DESC
            """, logger: logger
        ).decode((String, String).self) {
            if let record = ReconcileRecord(text: text, service: entity) { read.records.append(record) }
        }
        for try await value in try await client.query(
            "SELECT value FROM strangler.secrets WHERE name = 'redaction-key'", logger: logger
        ).decode(Data.self) {
            read.key = Array(value)
        }
        return read
    }
}
