import GRDB
import Hummingbird
import ServiceKit

/// A prospective customer, as the leads service stores and answers it.
struct Lead: ServiceRecord {
    static let table = "leads"
    static let idPrefix = "led"
    static let noun = "lead"
    static let writable: Set<String> = ["name", "email", "company", "source", "status", "score"]
    /// Statuses a client may set; `converted` is set only by the monolith's conversion.
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

    static func new(id: String, at time: String) -> Lead {
        Lead(
            id: id, name: "", email: "", company: nil, source: nil, status: "new", score: 0, convertedAccountId: nil,
            convertedContactId: nil,
            convertedDealId: nil, convertedAt: nil, version: 1, createdAt: time, updatedAt: time)
    }

    /// Reads the writable fields of a request body with the monolith's limits.
    mutating func apply(_ fields: inout BodyFields) {
        if case .value(let value) = fields.string("name", required: true, minLength: 1) { self.name = value }
        if case .value(let value) = fields.string("email", required: true, maxLength: 254, check: FieldRules.email) {
            self.email = value
        }
        fields.string("company", nullable: true).assign(to: &self.company)
        fields.string("source", nullable: true, maxLength: 50).assign(to: &self.source)
        let status = fields.string("status", maxLength: 20) { value in
            if value == "converted" { return "is set only by POST /leads/{id}/convert" }
            return Self.settableStatuses.contains(value)
                ? nil : "must be one of: \(Self.settableStatuses.joined(separator: ", "))"
        }
        if case .value(let value) = status { self.status = value }
        if case .value(let value) = fields.integer("score", range: 0...100) { self.score = value }
    }

    func checkChangeable() throws {
        if self.status == "converted" {
            throw ServiceError.conflict("already_converted", "this lead was converted and can no longer change")
        }
    }

    /// `?status=`, one of the statuses.
    static func filters(_ query: Parameters, problems: inout [String: String]) -> [(sql: String, argument: String)] {
        guard let status = query.get("status") else { return [] }
        guard Self.statuses.contains(status) else {
            problems["status"] = "must be one of: \(Self.statuses.joined(separator: ", "))"
            return []
        }
        return [("status = ?", status)]
    }
}
