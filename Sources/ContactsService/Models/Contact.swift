import GRDB
import Hummingbird
import ServiceKit

/// A person at an account, as the contacts service stores and answers it. E-mail addresses are unique
/// across contacts, case-insensitively.
struct Contact: ServiceRecord {
    static let table = "contacts"
    static let idPrefix = "con"
    static let noun = "contact"
    /// The fields a client may write.
    static let writable: Set<String> = ["accountId", "firstName", "lastName", "email", "phone", "title", "tags"]

    var id: String
    var accountId: String
    var firstName: String
    var lastName: String
    var email: String
    var phone: String?
    var title: String?
    var tags: [String]
    var version: Int64
    var createdAt: String
    var updatedAt: String

    static func new(id: String, at time: String) -> Contact {
        Contact(
            id: id, accountId: "", firstName: "", lastName: "", email: "", phone: nil, title: nil, tags: [], version: 1,
            createdAt: time, updatedAt: time)
    }

    /// The JSON form: the columns in order, but for one difference.
    func write(to output: inout JSONOutput) {
        // Deliberately not the monolith's behaviour: this rewrite has no empty titles and answers "" as null, the
        // kind of small difference an extracted service really has. Coexist finds it (`/title changed` on the
        // contacts saved with an empty title) and the runbook triages it (docs/services.md, docs/runbook.md).
        var answered = self
        if answered.title?.isEmpty == true { answered.title = nil }
        output.object(encoding: answered)
    }

    /// Reads the writable fields of a request body with the monolith's limits.
    mutating func apply(_ fields: inout BodyFields) {
        if case .value(let value) = fields.string("accountId", required: true, minLength: 1, maxLength: 64) {
            self.accountId = value
        }
        if case .value(let value) = fields.string("firstName", required: true, minLength: 1, maxLength: 100) {
            self.firstName = value
        }
        if case .value(let value) = fields.string("lastName", required: true, maxLength: 100) { self.lastName = value }
        if case .value(let value) = fields.string("email", required: true, maxLength: 254, check: FieldRules.email) {
            self.email = value
        }
        fields.string("phone", nullable: true, maxLength: 40, check: Self.phoneProblem).assign(to: &self.phone)
        fields.string("title", nullable: true, maxLength: 100).assign(to: &self.title)
        if case .value(let value) = fields.strings("tags", maxCount: 20, maxLength: 50) { self.tags = value }
    }

    /// Digits, spaces and `+-().`, with at least five digits.
    static func phoneProblem(_ text: String) -> String? {
        let isDigit: (Unicode.Scalar) -> Bool = { ("0"..."9").contains($0) }
        let allowed = text.unicodeScalars.allSatisfy { isDigit($0) || " +-().".unicodeScalars.contains($0) }
        return allowed && text.unicodeScalars.filter(isDigit).count >= 5
            ? nil : "must be a phone number (digits, spaces and + - ( ) .)"
    }
}

extension Contact {
    /// The account must exist (in the read model), and a contact with deals cannot move to another account.
    func checkReferences(_ db: Database, _ fields: inout BodyFields) throws {
        guard fields.problems["accountId"] == nil else { return }
        if try !Self.exists(in: "accounts", where: "id = ?", [self.accountId], db) {
            fields.fail("accountId", "no account has this id")
        } else if try Self.exists(
            in: "deals", where: "contactId = ? AND accountId <> ?", [self.id, self.accountId], db)
        {
            fields.fail("accountId", "the contact has deals at its current account; move or delete them first")
        }
    }

    func checkDeletable(_ db: Database) throws {
        if try Self.exists(in: "deals", where: "contactId = ?", [self.id], db) {
            throw ServiceError.conflict("has_dependents", "this contact still has deals; delete or move them first")
        }
    }

    static func clientError(for error: DatabaseError) -> ServiceError? {
        guard error.isUniqueViolation(on: "contacts.email") else { return nil }
        return .conflict(
            "duplicate", "another contact already has this e-mail address",
            fields: ["email": "is already used by another contact"])
    }

    /// `?email=` (case-insensitively, by the column's collation) and `?accountId=`.
    static func filters(_ query: Parameters, problems: inout [String: String]) -> [(sql: String, argument: String)] {
        var conditions: [(sql: String, argument: String)] = []
        if let email = query.get("email") { conditions.append(("email = ?", email)) }
        if let accountID = query.get("accountId") { conditions.append(("accountId = ?", accountID)) }
        return conditions
    }
}
