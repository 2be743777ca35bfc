import GRDB
import Hummingbird
import ServiceKit

/// A sales opportunity at an account, as the deals service stores and answers it.
struct Deal: ServiceRecord {
    static let table = "deals"
    static let idPrefix = "deal"
    static let noun = "deal"
    static let writable: Set<String> = [
        "accountId", "contactId", "name", "amount", "currency", "stage", "expectedCloseDate", "probability",
    ]
    static let stages = ["prospecting", "qualification", "proposal", "negotiation", "won", "lost"]
    /// Stages of deals still in play, in pipeline order.
    static let openStages = Array(stages.prefix(4))
    /// The probability a deal takes when it enters a stage without one being given.
    static let defaultProbabilities: [String: Int64] = [
        "prospecting": 10, "qualification": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0,
    ]

    var id: String
    var accountId: String
    var contactId: String?
    var name: String
    var amount: Int64
    var currency: String
    var stage: String
    var expectedCloseDate: String?
    var probability: Int64
    var version: Int64
    var createdAt: String
    var updatedAt: String

    static func new(id: String, at time: String) -> Deal {
        Deal(
            id: id, accountId: "", contactId: nil, name: "", amount: 0, currency: "", stage: "prospecting",
            expectedCloseDate: nil, probability: 10,
            version: 1, createdAt: time, updatedAt: time)
    }

    /// `DealStageChanged` when the stage moved, as the monolith names it; `DealUpdated` otherwise.
    func updateEventType(from previous: Deal) -> String {
        self.stage != previous.stage ? "DealStageChanged" : "DealUpdated"
    }

    /// Reads the writable fields with the monolith's limits. A stage change (or a create) without a
    /// probability takes the stage's default one.
    mutating func apply(_ fields: inout BodyFields) {
        if case .value(let value) = fields.string("accountId", required: true, minLength: 1, maxLength: 64) {
            self.accountId = value
        }
        fields.string("contactId", nullable: true, minLength: 1, maxLength: 64).assign(to: &self.contactId)
        if case .value(let value) = fields.string("name", required: true, minLength: 1) { self.name = value }
        if case .value(let value) = fields.integer("amount", required: true, range: 0...1_000_000_000_000) {
            self.amount = value
        }
        if case .value(let value) = fields.string("currency", required: true, maxLength: 3, check: FieldRules.currency)
        {
            self.currency = value
        }
        let previousStage = self.stage
        if case .value(let value) = fields.choice("stage", allowed: Self.stages) { self.stage = value }
        fields.string("expectedCloseDate", nullable: true, maxLength: 10, check: Self.dateProblem).assign(
            to: &self.expectedCloseDate)
        if case .value(let value) = fields.integer("probability", range: 0...100) {
            self.probability = value
        } else if !fields.contains("probability"), self.stage != previousStage || fields.isCreating {
            self.probability = Self.defaultProbabilities[self.stage] ?? 0
        }
    }

    /// A calendar date `YYYY-MM-DD` that exists (proleptic Gregorian).
    static func dateProblem(_ text: String) -> String? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.map(\.count) == [4, 2, 2],
            parts.joined().utf8.allSatisfy({ (48...57).contains($0) }),
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month)
        else { return "must be a date as YYYY-MM-DD" }
        let isLeapYear = year % 400 == 0 || (year % 4 == 0 && year % 100 != 0)
        let monthLengths = [31, isLeapYear ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...monthLengths[month - 1]).contains(day) ? nil : "must be a date as YYYY-MM-DD"
    }

    /// The account must exist, and a contact must exist and belong to that account (both from the read models).
    func checkReferences(_ db: Database, _ fields: inout BodyFields) throws {
        if fields.problems["accountId"] == nil, try !Self.exists(in: "accounts", where: "id = ?", [self.accountId], db)
        {
            fields.fail("accountId", "no account has this id")
        }
        guard let contactId = self.contactId, fields.problems["contactId"] == nil else { return }
        let owner = try String.fetchOne(db, sql: "SELECT accountId FROM contacts WHERE id = ?", arguments: [contactId])
        if owner == nil {
            fields.fail("contactId", "no contact has this id")
        } else if owner != self.accountId, fields.problems["accountId"] == nil {
            fields.fail("contactId", "must be a contact of the deal's account")
        }
    }

    /// `?stage=` (one of the stages), `?accountId=`, `?contactId=`.
    static func filters(_ query: Parameters, problems: inout [String: String]) -> [(sql: String, argument: String)] {
        var conditions: [(sql: String, argument: String)] = []
        if let stage = query.get("stage") {
            if Self.stages.contains(stage) {
                conditions.append(("stage = ?", stage))
            } else {
                problems["stage"] = "must be one of: \(Self.stages.joined(separator: ", "))"
            }
        }
        if let accountID = query.get("accountId") { conditions.append(("accountId = ?", accountID)) }
        if let contactID = query.get("contactId") { conditions.append(("contactId = ?", contactID)) }
        return conditions
    }
}
