import Foundation
import GRDB

/// A person at an account. E-mail addresses are unique across contacts (case-insensitively).
struct Contact: CRMEntity, Equatable {
    static let kind = EntityKind(table: "contacts", idPrefix: "con", aggregateType: "contact", eventStem: "Contact")

    var id: String
    var accountId: String
    var firstName: String
    var lastName: String
    var email: String
    var phone: String?
    var title: String?
    /// A JSON array in its column.
    var tags: [String]
    var version: Int64
    var createdAt: String
    var updatedAt: String

    /// The `tags` column's JSON, with `/` as it is (not `\/`).
    static func databaseJSONEncoder(for column: String) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }

    static let fields: Set<String> = ["accountId", "firstName", "lastName", "email", "phone", "title", "tags"]

    /// Reads the writable fields. `accountId`'s existence is checked by the caller, which holds the database.
    mutating func apply(_ input: inout FieldReader) {
        if case .value(let accountId) = input.string("accountId", required: true, minLength: 1, maxLength: 64) {
            self.accountId = accountId
        }
        if case .value(let firstName) = input.string("firstName", required: true, minLength: 1, maxLength: 100) {
            self.firstName = firstName
        }
        if case .value(let lastName) = input.string("lastName", required: true, maxLength: 100) {
            self.lastName = lastName
        }
        if case .value(let email) = input.string("email", required: true, maxLength: 254, check: FieldChecks.email) {
            self.email = email
        }
        input.string("phone", nullable: true, maxLength: 40, check: Self.checkPhone).assign(to: &self.phone)
        input.string("title", nullable: true, maxLength: 100).assign(to: &self.title)
        if case .value(let tags) = input.strings("tags", maxCount: 20, maxLength: 50) { self.tags = tags }
    }

    /// Digits, spaces and `+-().`, with at least five digits.
    static func checkPhone(_ text: String) -> String? {
        let allowed = text.unicodeScalars.allSatisfy {
            ("0"..."9").contains($0) || " +-().".unicodeScalars.contains($0)
        }
        let digits = text.unicodeScalars.filter { ("0"..."9").contains($0) }.count
        return allowed && digits >= 5 ? nil : "must be a phone number (digits, spaces and + - ( ) .)"
    }

    static func blank(id: String, at time: String) -> Contact {
        Contact(
            id: id, accountId: "", firstName: "", lastName: "", email: "", phone: nil, title: nil, tags: [], version: 1,
            createdAt: time,
            updatedAt: time)
    }
}
