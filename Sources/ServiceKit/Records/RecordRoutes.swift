import GRDB
import HTTPTypes
public import Hummingbird

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
        guard let record = try await self.database.read({ db in try Record.find(id, db) }) else {
            throw ServiceError.notFound(Record.noun)
        }
        return Response.json(record.json, headers: Self.headers(record))
    }

    public func create(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.jsonObject()
        let record = try await self.database.change(dryRun: request.isDryRun) { db, outbox in
            var fields = BodyFields(body, creating: true, allowed: Record.writable)
            var record = Record.new(id: RecordID.make(prefix: Record.idPrefix), at: ServiceTime.now())
            record.apply(&fields)
            try record.checkReferences(db, &fields)
            try fields.validate()
            try Self.mappingConstraints { try record.save(db, .insert) }
            try outbox.append(
                db, aggregateType: Record.noun, aggregateID: record.id, type: Record.eventStem + "Created",
                payload: record.json, at: record.updatedAt)
            return record
        }
        var headers = Self.headers(record)
        headers[.location] = "/\(Record.table)/\(record.id)"
        return Response.json(status: .created, record.json, headers: headers)
    }

    public func patch(_ request: Request, _ context: some RequestContext) async throws -> Response {
        var request = request
        let id = try request.pathID(context, noun: Record.noun)
        let expectedVersion = try request.ifMatchVersion()
        let body = try await request.jsonObject()
        let record = try await self.database.change(dryRun: request.isDryRun) { db, outbox in
            let previous = try Self.load(id, expectedVersion: expectedVersion, db)
            try previous.checkChangeable()
            var fields = BodyFields(body, creating: false, allowed: Record.writable)
            var changed = previous
            changed.apply(&fields)
            try changed.checkReferences(db, &fields)
            try fields.validate()
            // A change that changes nothing is no change: same version, nothing written.
            guard changed != previous else { return previous }
            changed.version = previous.version + 1
            changed.updatedAt = max(ServiceTime.now(), previous.updatedAt)
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
        try await self.database.change(dryRun: request.isDryRun) { db, outbox in
            let record = try Self.load(id, expectedVersion: expectedVersion, db)
            try record.checkDeletable(db)
            // The deletion is version + 1, as in the monolith; its tombstone keeps an older feed event from bringing
            // the record back.
            let version = record.version + 1
            try VersionedRecords.delete(record.id, version: version, from: Record.table, db)
            let time = ServiceTime.now()
            var payload = JSONOutput(capacity: 96)
            payload.object { object in
                object.field("id", record.id)
                object.field("version", version)
                object.field("deletedAt", time)
            }
            try outbox.append(
                db, aggregateType: Record.noun, aggregateID: record.id, type: Record.eventStem + "Deleted",
                payload: payload.bytes, at: time)
        }
        return Response(status: .noContent)
    }

    /// The record to change: 404 when missing, 409 when `If-Match` names another version.
    static func load(_ id: String, expectedVersion: Int64?, _ db: Database) throws -> Record {
        guard let record = try Record.find(id, db) else { throw ServiceError.notFound(Record.noun) }
        if let expectedVersion, expectedVersion != record.version {
            throw ServiceError.conflict(
                "version_conflict",
                "this \(Record.noun) is at version \(record.version), not \(expectedVersion); read it again and retry")
        }
        return record
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
