import GRDB
import HTTPTypes
public import Hummingbird
import JSON
import PostgresNIO

/// The generic endpoints of a ``ServiceRecord``, answered as the monolith answers them:
/// `GET/POST /<table>`, `GET/PATCH/DELETE /<table>/{id}`; writes honour `If-Match` and `Strangler-Dry-Run: 1`.
///
/// ```swift
/// RecordRoutes<Contact>(database: database).register(on: router)
/// router.get("/accounts/{id}/contacts") { request, context in
///     try await routes.list(
///         request,
///         parent: .init(
///             table: "accounts", noun: "account", column: "accountId",
///             id: try request.pathID(context, noun: "account")))
/// }
/// ```
public struct RecordRoutes<Record: ServiceRecord>: Sendable {
    /// A parent record whose children a list shows (`/accounts/{id}/contacts`): 404 when it does not exist.
    public struct Parent: Sendable {
        public var table: String
        public var noun: String
        public var column: String
        public var id: String

        public init(table: String, noun: String, column: String, id: String) {
            self.table = table
            self.noun = noun
            self.column = column
            self.id = id
        }
    }

    let database: ServiceDatabase

    public init(database: ServiceDatabase) {
        self.database = database
    }

    public func register(on router: Router<BasicRequestContext>) {
        let collection = RouterPath("/\(Record.table)")
        let item = RouterPath("/\(Record.table)/{id}")
        router.get(collection) { request, _ in try await self.list(request) }
        router.post(collection) { request, _ in try await self.create(request) }
        router.get(item) { request, context in try await self.get(request, context) }
        router.patch(item) { request, context in try await self.patch(request, context) }
        router.delete(item) { request, context in try await self.delete(request, context) }
    }

    /// Registers `GET /<parents>/{id}/<table>`: the records whose `column` is the parent's id, 404 when the parent
    /// (a row of `parents`, named `noun` in messages) does not exist.
    public func registerList(
        under parents: String, noun: String, column: String, on router: Router<BasicRequestContext>
    ) {
        router.get(RouterPath("/\(parents)/{id}/\(Record.table)")) { request, context in
            let parent = try request.pathID(context, noun: noun)
            return try await self.list(request, parent: Parent(table: parents, noun: noun, column: column, id: parent))
        }
    }

    private static func headers(_ record: Record) -> HTTPFields { [.eTag: "\"\(record.version)\""] }

    /// A page of records in id order, with the record's filters; with `parent`, only its children.
    public func list(_ request: Request, parent: Parent? = nil) async throws -> Response {
        let query = request.uri.queryParameters
        var problems: [String: String] = [:]
        let page = PageQuery(query, errors: &problems)
        var conditions = Record.filters(query, problems: &problems)
        guard problems.isEmpty else { throw ServiceError.invalidQuery(problems) }
        if let parent { conditions.append(("\(parent.column) = ?", parent.id)) }
        if let store = self.database.postgres {
            // One statement without a parent to check; with one, both on one snapshot.
            let result =
                if let parent {
                    try await store.transaction(writing: false) { [conditions] transaction in
                        if try await !transaction.exists(in: parent.table, id: parent.id) {
                            throw ServiceError.notFound(parent.noun)
                        }
                        return try await transaction.page(Record.self, page, where: conditions)
                    }
                } else {
                    try await store.autocommit { [conditions] in try await $0.page(Record.self, page, where: conditions)
                    }
                }
            return Response.json { output in
                result.write(to: &output) { record, output in record.write(to: &output) }
            }
        }
        let result = try await self.database.read { [conditions] db in
            if let parent, try !Record.exists(in: parent.table, where: "id = ?", [parent.id], db) {
                throw ServiceError.notFound(parent.noun)
            }
            return try page.fetch(Record.self, from: Record.table, where: conditions, id: \.id, db)
        }
        return Response.json { output in result.write(to: &output) { record, output in record.write(to: &output) } }
    }

    public func get(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try request.pathID(context, noun: Record.noun)
        let found: Record?
        if let store = self.database.postgres {
            found = try await store.autocommit { try await $0.find(Record.self, id: id) }
        } else {
            found = try await self.database.read { db in try Record.find(id, db) }
        }
        guard let record = found else {
            throw ServiceError.notFound(Record.noun)
        }
        return Response.json(record.json, headers: Self.headers(record))
    }

    public func create(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.jsonObject()
        let record: Record
        if let store = self.database.postgres {
            record = try await self.database.change(postgres: store, dryRun: request.isDryRun) { transaction in
                let (record, fields) = Self.created(from: body)
                try fields.validate()
                try await Self.mappingPostgresConstraints { try await transaction.save(record, .insert) }
                try await transaction.appendOutbox(
                    origin: self.database.origin, aggregateType: Record.noun, aggregateID: record.id,
                    type: Record.eventStem + "Created", payload: record.json, at: record.updatedAt)
                return record
            }
        } else {
            record = try await self.create(body, dryRun: request.isDryRun)
        }
        var headers = Self.headers(record)
        headers[.location] = "/\(Record.table)/\(record.id)"
        return Response.json(status: .created, record.json, headers: headers)
    }

    /// A new record from a request's body, with the problems its fields have (not validated yet).
    static func created(from body: JSONObject) -> (Record, BodyFields) {
        var fields = BodyFields(body, creating: true, allowed: Record.writable)
        var record = Record.new(id: RecordID.make(prefix: Record.idPrefix), at: ServiceTime.now())
        record.apply(&fields)
        return (record, fields)
    }

    private func create(_ body: JSONObject, dryRun: Bool) async throws -> Record {
        try await self.database.change(dryRun: dryRun) { db, outbox in
            let (record, created) = Self.created(from: body)
            var fields = created
            try record.checkReferences(db, &fields)
            try fields.validate()
            try Self.mappingConstraints { try record.save(db, .insert) }
            try outbox.append(
                db, aggregateType: Record.noun, aggregateID: record.id, type: Record.eventStem + "Created",
                payload: record.json, at: record.updatedAt)
            return record
        }
    }

    public func patch(_ request: Request, _ context: some RequestContext) async throws -> Response {
        var request = request
        let id = try request.pathID(context, noun: Record.noun)
        let expectedVersion = try request.ifMatchVersion()
        let body = try await request.jsonObject()
        if let store = self.database.postgres {
            let record = try await self.database.change(postgres: store, dryRun: request.isDryRun) { transaction in
                let found = try await transaction.find(Record.self, id: id, locking: true)
                let previous = try Self.checked(found, expectedVersion: expectedVersion)
                try previous.checkChangeable()
                let (draft, fields) = Self.changed(previous, by: body)
                try fields.validate()
                guard let changed = Self.nextVersion(of: draft, from: previous) else { return previous }
                try await Self.mappingPostgresConstraints { try await transaction.save(changed, .update) }
                try await transaction.appendOutbox(
                    origin: self.database.origin, aggregateType: Record.noun, aggregateID: changed.id,
                    type: changed.updateEventType(from: previous), payload: changed.json, at: changed.updatedAt)
                return changed
            }
            return Response.json(record.json, headers: Self.headers(record))
        }
        let record = try await self.database.change(dryRun: request.isDryRun) { db, outbox in
            let previous = try Self.load(id, expectedVersion: expectedVersion, db)
            try previous.checkChangeable()
            let (draft, changedFields) = Self.changed(previous, by: body)
            var fields = changedFields
            try draft.checkReferences(db, &fields)
            try fields.validate()
            guard let changed = Self.nextVersion(of: draft, from: previous) else { return previous }
            try Self.mappingConstraints { try changed.save(db, .update) }
            try outbox.append(
                db, aggregateType: Record.noun, aggregateID: changed.id, type: changed.updateEventType(from: previous),
                payload: changed.json,
                at: changed.updatedAt)
            return changed
        }
        return Response.json(record.json, headers: Self.headers(record))
    }

    public func delete(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try request.pathID(context, noun: Record.noun)
        let expectedVersion = try request.ifMatchVersion()
        if let store = self.database.postgres {
            try await self.database.change(postgres: store, dryRun: request.isDryRun) { transaction in
                let found = try await transaction.find(Record.self, id: id, locking: true)
                let record = try Self.checked(found, expectedVersion: expectedVersion)
                let deletion = Self.deletion(of: record)
                try await transaction.delete(record.id, version: deletion.version, from: Record.table)
                try await transaction.appendOutbox(
                    origin: self.database.origin, aggregateType: Record.noun, aggregateID: record.id,
                    type: Record.eventStem + "Deleted", payload: deletion.payload, at: deletion.time)
            }
            return Response(status: .noContent)
        }
        try await self.database.change(dryRun: request.isDryRun) { db, outbox in
            let record = try Self.load(id, expectedVersion: expectedVersion, db)
            try record.checkDeletable(db)
            let deletion = Self.deletion(of: record)
            try VersionedRecords.delete(record.id, version: deletion.version, from: Record.table, db)
            try outbox.append(
                db, aggregateType: Record.noun, aggregateID: record.id, type: Record.eventStem + "Deleted",
                payload: deletion.payload, at: deletion.time)
        }
        return Response(status: .noContent)
    }

    /// `previous` with a request body's fields applied, and the problems they have (not validated yet).
    static func changed(_ previous: Record, by body: JSONObject) -> (Record, BodyFields) {
        var fields = BodyFields(body, creating: false, allowed: Record.writable)
        var changed = previous
        changed.apply(&fields)
        return (changed, fields)
    }

    /// The changed record at its next version, or nil when the change changes nothing (same version, nothing written).
    static func nextVersion(of draft: Record, from previous: Record) -> Record? {
        guard draft != previous else { return nil }
        var changed = draft
        changed.version = previous.version + 1
        changed.updatedAt = max(ServiceTime.now(), previous.updatedAt)
        return changed
    }

    /// A deletion as the monolith makes it: at version + 1 (its tombstone keeps an older feed event from bringing the
    /// record back), with the event's payload `{id, version, deletedAt}`.
    static func deletion(of record: Record) -> (version: Int64, payload: [UInt8], time: String) {
        let version = record.version + 1
        let time = ServiceTime.now()
        var payload = JSONOutput(capacity: 96)
        payload.object { object in
            object.field("id", record.id)
            object.field("version", version)
            object.field("deletedAt", time)
        }
        return (version, payload.bytes, time)
    }

    /// The record to change: 404 when missing, 409 when `If-Match` names another version.
    static func load(_ id: String, expectedVersion: Int64?, _ db: Database) throws -> Record {
        try Self.checked(try Record.find(id, db), expectedVersion: expectedVersion)
    }

    /// The record found: 404 when nil, 409 when `If-Match` names another version.
    static func checked(_ found: Record?, expectedVersion: Int64?) throws -> Record {
        guard let record = found else { throw ServiceError.notFound(Record.noun) }
        if let expectedVersion, expectedVersion != record.version {
            throw ServiceError.conflict(
                "version_conflict",
                "this \(Record.noun) is at version \(record.version), not \(expectedVersion); read it again and retry")
        }
        return record
    }

    /// Turns a constraint failure on PostgreSQL (SQLSTATE class 23) into its 409.
    static func mappingPostgresConstraints(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as PSQLError {
            if let state = error.serverInfo?[.sqlState], state.hasPrefix("23") {
                throw ServiceError.conflict("constraint_failed", "the change conflicts with other records")
            }
            throw error
        }
    }

    /// Turns a constraint failure a client caused into its 409.
    static func mappingConstraints(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError {
            if let clientError = Record.clientError(for: error) { throw clientError }
            if error.resultCode == .SQLITE_CONSTRAINT {
                throw ServiceError.conflict("constraint_failed", "the change conflicts with other records")
            }
            throw error
        }
    }
}
