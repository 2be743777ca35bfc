import GRDB
import Hummingbird

/// An entity with the generic REST endpoints: list, get, create, patch, delete.
protocol WritableEntity: CRMEntity, Equatable {
    /// The fields a client may write.
    static var fields: Set<String> { get }
    /// An empty entity at version 1 created at `time`, to which a create request's fields are applied.
    static func blank(id: String, at time: String) -> Self
    /// Reads the writable fields from a request body, recording problems in `input`.
    mutating func apply(_ input: inout FieldReader)
    /// Checks what needs the database (that referenced rows exist), recording problems in `input`.
    func checkReferences(_ db: Database, _ input: inout FieldReader) throws
    /// Throws a 409 when this entity may no longer be changed.
    func checkChangeable() throws(APIError)
    /// Throws a 409 when other rows still refer to this one.
    func checkDeletable(_ db: Database) throws
    /// The client error that a constraint failure stands for (a duplicate e-mail address), if any.
    static func clientError(for error: DatabaseError) -> APIError?
    /// Applies the list filters of the query string (`?stage=`), recording problems in `errors`.
    static func filter(
        _ request: QueryInterfaceRequest<Self>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Self>
}

extension WritableEntity {
    /// An empty entity with a new id, created at `time` (now by default).
    static func new(at time: String = Timestamp.now()) -> Self {
        Self.blank(id: EntityID.make(prefix: Self.kind.idPrefix), at: time)
    }

    func checkReferences(_ db: Database, _ input: inout FieldReader) throws {}
    func checkChangeable() throws(APIError) {}
    func checkDeletable(_ db: Database) throws {}
    static func clientError(for error: DatabaseError) -> APIError? { nil }
    static func filter(
        _ request: QueryInterfaceRequest<Self>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Self>
    {
        request
    }
}

/// Shared checks on references between entities.
enum References {
    static func exists(_ table: String, _ id: String, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE id = ?)", arguments: [id]) ?? false
    }

    /// Throws `has_dependents` (409) when `table` has rows whose `column` is `id`.
    static func refuseDelete(
        _ noun: String, _ id: String, referencedBy table: String, column: String, _ db: Database
    )
        throws
    {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE \(column) = ?)", arguments: [id])
            ?? false
        {
            throw APIError.conflict("has_dependents", "this \(noun) still has \(table); delete or move them first")
        }
    }
}

extension Account: WritableEntity {
    func checkDeletable(_ db: Database) throws {
        try References.refuseDelete("account", self.id, referencedBy: "contacts", column: "accountId", db)
        try References.refuseDelete("account", self.id, referencedBy: "deals", column: "accountId", db)
    }

    static func filter(
        _ request: QueryInterfaceRequest<Account>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Account>
    {
        guard let domain = query.get("domain") else { return request }
        return request.filter(Column("domain") == domain.lowercased())
    }
}

extension Contact: WritableEntity {
    func checkReferences(_ db: Database, _ input: inout FieldReader) throws {
        guard input.errors["accountId"] == nil else { return }
        if !(try References.exists("accounts", self.accountId, db)) {
            input.fail("accountId", "no account has this id")
        } else if try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM deals WHERE contactId = ? AND accountId <> ?)",
            arguments: [self.id, self.accountId]) ?? false
        {
            // A deal's contact must belong to the deal's account; moving the contact would break that.
            input.fail("accountId", "the contact has deals at its current account; move or delete them first")
        }
    }

    func checkDeletable(_ db: Database) throws {
        try References.refuseDelete("contact", self.id, referencedBy: "deals", column: "contactId", db)
    }

    static func clientError(for error: DatabaseError) -> APIError? {
        guard error.isUniqueViolation("contacts.email") else { return nil }
        return .conflict(
            "duplicate", "another contact already has this e-mail address",
            fields: ["email": "is already used by another contact"])
    }

    static func filter(
        _ request: QueryInterfaceRequest<Contact>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Contact>
    {
        var request = request
        if let email = query.get("email") { request = request.filter(Column("email") == email) }
        if let accountId = query.get("accountId") { request = request.filter(Column("accountId") == accountId) }
        return request
    }
}

extension Lead: WritableEntity {
    func checkChangeable() throws(APIError) {
        if self.status == "converted" {
            throw APIError.conflict("already_converted", "this lead was converted and can no longer change")
        }
    }

    static func filter(
        _ request: QueryInterfaceRequest<Lead>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Lead>
    {
        guard let status = query.get("status") else { return request }
        guard Lead.statuses.contains(status) else {
            errors["status"] = "must be one of: \(Lead.statuses.joined(separator: ", "))"
            return request
        }
        return request.filter(Column("status") == status)
    }
}

extension Deal: WritableEntity {
    func checkReferences(_ db: Database, _ input: inout FieldReader) throws {
        if input.errors["accountId"] == nil, !(try References.exists("accounts", self.accountId, db)) {
            input.fail("accountId", "no account has this id")
        }
        if let contactId = self.contactId, input.errors["contactId"] == nil {
            let owner = try String.fetchOne(
                db, sql: "SELECT accountId FROM contacts WHERE id = ?", arguments: [contactId])
            if owner == nil {
                input.fail("contactId", "no contact has this id")
            } else if owner != self.accountId, input.errors["accountId"] == nil {
                input.fail("contactId", "must be a contact of the deal's account")
            }
        }
    }

    static func filter(
        _ request: QueryInterfaceRequest<Deal>, query: Parameters, errors: inout [String: String]
    )
        -> QueryInterfaceRequest<Deal>
    {
        var request = request
        if let stage = query.get("stage") {
            if Deal.stages.contains(stage) {
                request = request.filter(Column("stage") == stage)
            } else {
                errors["stage"] = "must be one of: \(Deal.stages.joined(separator: ", "))"
            }
        }
        if let accountId = query.get("accountId") { request = request.filter(Column("accountId") == accountId) }
        if let contactId = query.get("contactId") { request = request.filter(Column("contactId") == contactId) }
        return request
    }
}
