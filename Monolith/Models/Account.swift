import GRDB

/// A company the sales team works with.
struct Account: CRMEntity, Equatable {
    static let kind = EntityKind(table: "accounts", idPrefix: "acc", aggregateType: "account", eventStem: "Account")

    var meta: EntityMetadata
    var name: String
    var domain: String?
    var industry: String?
    var ownerEmail: String?

    var id: String { self.meta.id }
    var version: Int64 {
        get { self.meta.version }
        set { self.meta.version = newValue }
    }
    var createdAt: String { self.meta.createdAt }
    var updatedAt: String {
        get { self.meta.updatedAt }
        set { self.meta.updatedAt = newValue }
    }

    init(meta: EntityMetadata, name: String, domain: String?, industry: String?, ownerEmail: String?) {
        self.meta = meta
        self.name = name
        self.domain = domain
        self.industry = industry
        self.ownerEmail = ownerEmail
    }

    init(row: Row) {
        self.meta = EntityMetadata(row: row)
        self.name = row["name"]
        self.domain = row["domain"]
        self.industry = row["industry"]
        self.ownerEmail = row["ownerEmail"]
    }

    func encode(to container: inout PersistenceContainer) {
        self.meta.encode(to: &container)
        container["name"] = self.name
        container["domain"] = self.domain
        container["industry"] = self.industry
        container["ownerEmail"] = self.ownerEmail
    }

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", self.id)
        writer.field("name", self.name)
        writer.field("domain", self.domain)
        writer.field("industry", self.industry)
        writer.field("ownerEmail", self.ownerEmail)
        writer.field("version", self.version)
        writer.field("createdAt", self.createdAt)
        writer.field("updatedAt", self.updatedAt)
        writer.endObject()
    }

    static let fields: Set<String> = ["name", "domain", "industry", "ownerEmail"]

    /// Reads the writable fields from a request body, recording problems in `input`.
    mutating func apply(_ input: inout FieldReader) {
        if case .value(let name) = input.string("name", required: true, minLength: 1) { self.name = name }
        switch input.string("domain", nullable: true, maxLength: 253, check: FieldChecks.domain) {
        case .value(let domain): self.domain = domain.lowercased()
        case .null: self.domain = nil
        case .absent: break
        }
        switch input.string("industry", nullable: true, maxLength: 100) {
        case .value(let industry): self.industry = industry
        case .null: self.industry = nil
        case .absent: break
        }
        switch input.string("ownerEmail", nullable: true, maxLength: 254, check: FieldChecks.email) {
        case .value(let email): self.ownerEmail = email
        case .null: self.ownerEmail = nil
        case .absent: break
        }
    }

    static func blank(_ meta: EntityMetadata) -> Account {
        Account(meta: meta, name: "", domain: nil, industry: nil, ownerEmail: nil)
    }
}
