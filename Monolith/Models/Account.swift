import GRDB

/// A company the sales team works with.
struct Account: CRMEntity, Equatable {
    static let kind = EntityKind(table: "accounts", idPrefix: "acc", aggregateType: "account", eventStem: "Account")

    var id: String
    var name: String
    var domain: String?
    var industry: String?
    var ownerEmail: String?
    var version: Int64
    var createdAt: String
    var updatedAt: String

    static let fields: Set<String> = ["name", "domain", "industry", "ownerEmail"]

    /// Reads the writable fields from a request body, recording problems in `input`.
    mutating func apply(_ input: inout FieldReader) {
        if case .value(let name) = input.string("name", required: true, minLength: 1) { self.name = name }
        input.string("domain", nullable: true, maxLength: 253, check: FieldChecks.domain).assign(to: &self.domain) {
            $0.lowercased()
        }
        input.string("industry", nullable: true, maxLength: 100).assign(to: &self.industry)
        input.string("ownerEmail", nullable: true, maxLength: 254, check: FieldChecks.email).assign(
            to: &self.ownerEmail)
    }

    static func blank(id: String, at time: String) -> Account {
        Account(
            id: id, name: "", domain: nil, industry: nil, ownerEmail: nil, version: 1, createdAt: time, updatedAt: time)
    }
}
