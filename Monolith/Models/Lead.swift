import GRDB

/// A prospective customer, before conversion into an account and a contact (and maybe a deal).
struct Lead: CRMEntity, Equatable {
    static let kind = EntityKind(table: "leads", idPrefix: "led", aggregateType: "lead", eventStem: "Lead")

    /// Statuses a client may set; `converted` is set only by conversion.
    static let settableStatuses = ["new", "working", "qualified", "disqualified"]
    static let statuses = settableStatuses + ["converted"]

    var id: String
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
    var version: Int64
    var createdAt: String
    var updatedAt: String

    func updateEventType(from previous: Lead) -> String {
        self.status == "converted" && previous.status != "converted" ? "LeadConverted" : "LeadUpdated"
    }

    static let fields: Set<String> = ["name", "email", "company", "source", "status", "score"]

    mutating func apply(_ input: inout FieldReader) {
        if case .value(let name) = input.string("name", required: true, minLength: 1) { self.name = name }
        if case .value(let email) = input.string("email", required: true, maxLength: 254, check: FieldChecks.email) {
            self.email = email
        }
        input.string("company", nullable: true).assign(to: &self.company)
        input.string("source", nullable: true, maxLength: 50).assign(to: &self.source)
        let status = input.string("status", maxLength: 20) { value in
            if value == "converted" { return "is set only by POST /leads/{id}/convert" }
            return Lead.settableStatuses.contains(value)
                ? nil : "must be one of: \(Lead.settableStatuses.joined(separator: ", "))"
        }
        if case .value(let status) = status { self.status = status }
        if case .value(let score) = input.integer("score", range: 0...100) { self.score = score }
    }

    static func blank(id: String, at time: String) -> Lead {
        Lead(
            id: id, name: "", email: "", company: nil, source: nil, status: "new", score: 0, convertedAccountId: nil,
            convertedContactId: nil,
            convertedDealId: nil, convertedAt: nil, version: 1, createdAt: time, updatedAt: time)
    }
}
