import Foundation
import GRDB

/// A person at an account. E-mail addresses are unique across contacts (case-insensitively).
struct Contact: CRMEntity, Equatable {
    static let kind = EntityKind(table: "contacts", idPrefix: "con", aggregateType: "contact", eventStem: "Contact")

    var meta: EntityMetadata
    var accountId: String
    var firstName: String
    var lastName: String
    var email: String
    var phone: String?
    var title: String?
    var tags: [String]

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

    init(meta: EntityMetadata, accountId: String, firstName: String, lastName: String, email: String, phone: String?, title: String?, tags: [String]) {
        self.meta = meta
        self.accountId = accountId
        self.firstName = firstName
        self.lastName = lastName
        self.email = email
        self.phone = phone
        self.title = title
        self.tags = tags
    }

    init(row: Row) {
        self.meta = EntityMetadata(row: row)
        self.accountId = row["accountId"]
        self.firstName = row["firstName"]
        self.lastName = row["lastName"]
        self.email = row["email"]
        self.phone = row["phone"]
        self.title = row["title"]
        self.tags = Self.decodeTags(row["tags"])
    }

    func encode(to container: inout PersistenceContainer) {
        self.meta.encode(to: &container)
        container["accountId"] = self.accountId
        container["firstName"] = self.firstName
        container["lastName"] = self.lastName
        container["email"] = self.email
        container["phone"] = self.phone
        container["title"] = self.title
        var writer = JSONWriter(capacity: 32)
        writer.value(self.tags)
        container["tags"] = writer.string
    }

    private static func decodeTags(_ text: String?) -> [String] {
        guard let text, text != "[]", let data = text.data(using: .utf8) else { return [] }
        return (try? JSONDecoder().decode([String].self, from: data)) ?? []
    }

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", self.id)
        writer.field("accountId", self.accountId)
        writer.field("firstName", self.firstName)
        writer.field("lastName", self.lastName)
        writer.field("email", self.email)
        writer.field("phone", self.phone)
        writer.field("title", self.title)
        writer.field("tags", self.tags)
        writer.field("version", self.version)
        writer.field("createdAt", self.createdAt)
        writer.field("updatedAt", self.updatedAt)
        writer.endObject()
    }

    static let fields: Set<String> = ["accountId", "firstName", "lastName", "email", "phone", "title", "tags"]

    /// Reads the writable fields. `accountId`'s existence is checked by the caller, which holds the database.
    mutating func apply(_ input: inout FieldReader) {
        if case .value(let accountId) = input.string("accountId", required: true, minLength: 1, maxLength: 64) { self.accountId = accountId }
        if case .value(let firstName) = input.string("firstName", required: true, minLength: 1, maxLength: 100) { self.firstName = firstName }
        if case .value(let lastName) = input.string("lastName", required: true, maxLength: 100) { self.lastName = lastName }
        if case .value(let email) = input.string("email", required: true, maxLength: 254, check: FieldChecks.email) { self.email = email }
        switch input.string("phone", nullable: true, maxLength: 40, check: Self.checkPhone) {
        case .value(let phone): self.phone = phone
        case .null: self.phone = nil
        case .absent: break
        }
        switch input.string("title", nullable: true, maxLength: 100) {
        case .value(let title): self.title = title
        case .null: self.title = nil
        case .absent: break
        }
        if case .value(let tags) = input.strings("tags", maxCount: 20, maxLength: 50) { self.tags = tags }
    }

    /// Digits, spaces and `+-().`, with at least five digits.
    static func checkPhone(_ text: String) -> String? {
        let allowed = text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || " +-().".unicodeScalars.contains($0) }
        let digits = text.unicodeScalars.filter { ("0"..."9").contains($0) }.count
        return allowed && digits >= 5 ? nil : "must be a phone number (digits, spaces and + - ( ) .)"
    }

    static func blank(_ meta: EntityMetadata) -> Contact {
        Contact(meta: meta, accountId: "", firstName: "", lastName: "", email: "", phone: nil, title: nil, tags: [])
    }
}
