import GRDB
import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    /// `Strangler-Dry-Run: 1`: run the write, answer as it would, and roll it back.
    static let stranglerDryRun = HTTPField.Name("Strangler-Dry-Run")!
}

extension Request {
    /// Whether the request asks for a dry run (`Strangler-Dry-Run: 1`).
    var isDryRun: Bool { self.headers[.stranglerDryRun] == "1" }

    /// The version in `If-Match` (`3`, `"3"` or `W/"3"`); nil when absent or `*`.
    func expectedVersion() throws(APIError) -> Int64? {
        guard let value = self.headers[.ifMatch]?.trimmingSpaces(), !value.isEmpty, value != "*" else { return nil }
        var text = value
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.count >= 2, text.first == "\"", text.last == "\"" { text = text.dropFirst().dropLast() }
        guard let version = Int64(text), version >= 1 else {
            throw APIError.badRequest("invalid_if_match", "If-Match must be the entity's version, such as 3 or \"3\"")
        }
        return version
    }

    /// The `{id}` path parameter, or a 404 when it cannot be an id.
    func entityID(_ context: some RequestContext, noun: String) throws(APIError) -> String {
        guard let id = context.parameters.get("id"), EntityID.isWellFormed(id), !id.isEmpty else {
            throw APIError.notFound(noun)
        }
        return id
    }
}

/// The generic REST endpoints of one entity type: `GET/POST /things`, `GET/PATCH/DELETE /things/{id}`.
struct EntityRoutes<E: WritableEntity, Context: RequestContext> {
    let store: CRMStore

    func register(on router: Router<Context>) {
        let collection = RouterPath("/\(E.kind.table)")
        let item = RouterPath("/\(E.kind.table)/{id}")
        router.get(collection) { request, _ in try await self.list(request) }
        router.post(collection) { request, _ in try await self.create(request) }
        router.get(item) { request, context in try await self.get(request, context) }
        router.patch(item) { request, context in try await self.patch(request, context) }
        router.delete(item) { request, context in try await self.delete(request, context) }
    }

    static func entityHeaders(_ entity: E) -> HTTPFields {
        [.eTag: "\"\(entity.version)\""]
    }

    func list(
        _ request: Request, where condition: (column: String, value: String)? = nil, parent: EntityKind? = nil
    )
        async throws -> Response
    {
        var errors: [String: String] = [:]
        let page = PageRequest(query: request.uri.queryParameters, errors: &errors)
        var filtered = E.filter(E.all(), query: request.uri.queryParameters, errors: &errors)
        if !errors.isEmpty { throw APIError.validation(errors, message: "the query has invalid parameters") }
        if let condition { filtered = filtered.filter(Column(condition.column) == condition.value) }
        let result = try await self.store.read { [filtered] db in
            if let parent, let condition, !(try References.exists(parent.table, condition.value, db)) {
                throw APIError.notFound(parent.noun)
            }
            return try page.fetch(filtered, db)
        }
        return JSONResponse.make { result.writeJSON(to: &$0) }
    }

    func get(_ request: Request, _ context: Context) async throws -> Response {
        let id = try request.entityID(context, noun: E.kind.noun)
        guard let entity = try await self.store.read({ db in try E.find(id, db) }) else {
            throw APIError.notFound(E.kind.noun)
        }
        return JSONResponse.make(bytes: entity.jsonBytes, headers: Self.entityHeaders(entity))
    }

    func create(_ request: Request) async throws -> Response {
        var request = request
        let object = try await request.jsonObject()
        let entity = try await self.store.write(dryRun: request.isDryRun) { db, outbox in
            var input = FieldReader(object, mode: .create, allowed: E.fields)
            var entity = E.new()
            entity.apply(&input)
            try entity.checkReferences(db, &input)
            try input.validate()
            try Self.mappingConstraints { try CRMStore.insert(entity, db, &outbox) }
            return entity
        }
        var headers = Self.entityHeaders(entity)
        headers[.location] = "/\(E.kind.table)/\(entity.id)"
        return JSONResponse.make(status: .created, bytes: entity.jsonBytes, headers: headers)
    }

    func patch(_ request: Request, _ context: Context) async throws -> Response {
        var request = request
        let id = try request.entityID(context, noun: E.kind.noun)
        let expectedVersion = try request.expectedVersion()
        let object = try await request.jsonObject()
        let entity = try await self.store.write(dryRun: request.isDryRun) { db, outbox in
            let previous = try Self.load(id, expectedVersion: expectedVersion, db)
            try previous.checkChangeable()
            var input = FieldReader(object, mode: .patch, allowed: E.fields)
            var changed = previous
            changed.apply(&input)
            try changed.checkReferences(db, &input)
            try input.validate()
            return try Self.mappingConstraints { try CRMStore.update(changed, previous: previous, db, &outbox) }
        }
        return JSONResponse.make(bytes: entity.jsonBytes, headers: Self.entityHeaders(entity))
    }

    func delete(_ request: Request, _ context: Context) async throws -> Response {
        let id = try request.entityID(context, noun: E.kind.noun)
        let expectedVersion = try request.expectedVersion()
        try await self.store.write(dryRun: request.isDryRun) { db, outbox in
            let entity = try Self.load(id, expectedVersion: expectedVersion, db)
            try entity.checkDeletable(db)
            try Self.mappingConstraints { try CRMStore.delete(entity, db, &outbox) }
        }
        return Response(status: .noContent)
    }

    /// Loads an entity for a change: 404 when it does not exist, 409 when `If-Match` names another version.
    static func load(_ id: String, expectedVersion: Int64?, _ db: Database) throws -> E {
        guard let entity = try E.find(id, db) else { throw APIError.notFound(E.kind.noun) }
        if let expectedVersion, expectedVersion != entity.version {
            throw APIError.conflict(
                "version_conflict",
                "this \(E.kind.noun) is at version \(entity.version), not \(expectedVersion); read it again and retry"
            )
        }
        return entity
    }

    /// Runs `body`, turning a constraint failure that a client caused into its 409.
    static func mappingConstraints<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DatabaseError {
            if let clientError = E.clientError(for: error) { throw clientError }
            if error.resultCode == .SQLITE_CONSTRAINT {
                throw APIError.conflict("constraint_failed", "the change conflicts with other records")
            }
            throw error
        }
    }
}
