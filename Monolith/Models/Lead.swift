import GRDB

/// A prospective customer, before conversion into an account and a contact (and maybe a deal).
struct Lead: CRMEntity, Equatable {
    static let kind = EntityKind(table: "leads", idPrefix: "led", aggregateType: "lead", eventStem: "Lead")

    /// Statuses a client may set; `converted` is set only by conversion.
    static let settableStatuses = ["new", "working", "qualified", "disqualified"]
    static let statuses = settableStatuses + ["converted"]

    var meta: EntityMetadata
    var name: String
    var email: String
    var company: String?
    var source: String?
    var status: String
    var score: Int64
    var convertedAccountId: String?
    var convertedContactId: String?
    var convertedDealId: String?
    var convertedAt: String?

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

    init(meta: EntityMetadata, name: String, email: String, company: String?, source: String?, status: String, score: Int64) {
        self.meta = meta
        self.name = name
        self.email = email
        self.company = company
        self.source = source
        self.status = status
        self.score = score
    }

    init(row: Row) {
        self.meta = EntityMetadata(row: row)
        self.name = row["name"]
        self.email = row["email"]
        self.company = row["company"]
        self.source = row["source"]
        self.status = row["status"]
        self.score = row["score"]
        self.convertedAccountId = row["convertedAccountId"]
        self.convertedContactId = row["convertedContactId"]
        self.convertedDealId = row["convertedDealId"]
        self.convertedAt = row["convertedAt"]
    }

    func encode(to container: inout PersistenceContainer) {
        self.meta.encode(to: &container)
        container["name"] = self.name
        container["email"] = self.email
        container["company"] = self.company
        container["source"] = self.source
        container["status"] = self.status
        container["score"] = self.score
        container["convertedAccountId"] = self.convertedAccountId
        container["convertedContactId"] = self.convertedContactId
        container["convertedDealId"] = self.convertedDealId
        container["convertedAt"] = self.convertedAt
    }

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", self.id)
        writer.field("name", self.name)
        writer.field("email", self.email)
        writer.field("company", self.company)
        writer.field("source", self.source)
        writer.field("status", self.status)
        writer.field("score", self.score)
        writer.field("convertedAccountId", self.convertedAccountId)
        writer.field("convertedContactId", self.convertedContactId)
        writer.field("convertedDealId", self.convertedDealId)
        writer.field("convertedAt", self.convertedAt)
        writer.field("version", self.version)
        writer.field("createdAt", self.createdAt)
        writer.field("updatedAt", self.updatedAt)
        writer.endObject()
    }

    func updateEventType(from previous: Lead) -> String {
        self.status == "converted" && previous.status != "converted" ? "LeadConverted" : "LeadUpdated"
    }

    static let fields: Set<String> = ["name", "email", "company", "source", "status", "score"]

    mutating func apply(_ input: inout FieldReader) {
        if case .value(let name) = input.string("name", required: true, minLength: 1) { self.name = name }
        if case .value(let email) = input.string("email", required: true, maxLength: 254, check: FieldChecks.email) { self.email = email }
        switch input.string("company", nullable: true) {
        case .value(let company): self.company = company
        case .null: self.company = nil
        case .absent: break
        }
        switch input.string("source", nullable: true, maxLength: 50) {
        case .value(let source): self.source = source
        case .null: self.source = nil
        case .absent: break
        }
        let status = input.string("status", maxLength: 20) { value in
            if value == "converted" { return "is set only by POST /leads/{id}/convert" }
            return Lead.settableStatuses.contains(value) ? nil : "must be one of: \(Lead.settableStatuses.joined(separator: ", "))"
        }
        if case .value(let status) = status { self.status = status }
        if case .value(let score) = input.integer("score", range: 0...100) { self.score = score }
    }

    static func blank(_ meta: EntityMetadata) -> Lead {
        Lead(meta: meta, name: "", email: "", company: nil, source: nil, status: "new", score: 0)
    }
}
