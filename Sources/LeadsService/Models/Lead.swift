import GRDB
import Hummingbird
import JSON
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
            id: id, name: "", email: "", company: nil, source: nil, status: "new", score: 0, convertedAccountId: nil, convertedContactId: nil,
            convertedDealId: nil, convertedAt: nil, version: 1, createdAt: time, updatedAt: time)
    }

    /// The JSON form, field for field in the monolith's order.
    func write(to output: inout JSONOutput) {
        output.object { object in
            object.field("id", self.id)
            object.field("name", self.name)
            object.field("email", self.email)
            object.field("company", self.company)
            object.field("source", self.source)
            object.field("status", self.status)
            object.field("score", self.score)
            object.field("convertedAccountId", self.convertedAccountId)
            object.field("convertedContactId", self.convertedContactId)
            object.field("convertedDealId", self.convertedDealId)
            object.field("convertedAt", self.convertedAt)
            object.field("version", self.version)
            object.field("createdAt", self.createdAt)
            object.field("updatedAt", self.updatedAt)
        }
    }

    var row: [(column: String, value: (any DatabaseValueConvertible)?)] {
        [
            ("id", self.id), ("name", self.name), ("email", self.email), ("company", self.company), ("source", self.source),
            ("status", self.status), ("score", self.score), ("convertedAccountId", self.convertedAccountId),
            ("convertedContactId", self.convertedContactId), ("convertedDealId", self.convertedDealId), ("convertedAt", self.convertedAt),
            ("version", self.version), ("createdAt", self.createdAt), ("updatedAt", self.updatedAt),
        ]
    }

    /// Reads the writable fields of a request body with the monolith's limits.
    mutating func apply(_ fields: inout BodyFields) {
        if case .value(let value) = fields.string("name", required: true, minLength: 1) { self.name = value }
        if case .value(let value) = fields.string("email", required: true, maxLength: 254, check: FieldRules.email) { self.email = value }
        fields.string("company", nullable: true).assign(to: &self.company)
        fields.string("source", nullable: true, maxLength: 50).assign(to: &self.source)
        let status = fields.string("status", maxLength: 20) { value in
            if value == "converted" { return "is set only by POST /leads/{id}/convert" }
            return Self.settableStatuses.contains(value) ? nil : "must be one of: \(Self.settableStatuses.joined(separator: ", "))"
        }
        if case .value(let value) = status { self.status = value }
        if case .value(let value) = fields.integer("score", range: 0...100) { self.score = value }
    }

    func checkChangeable() throws {
        if self.status == "converted" { throw ServiceError.conflict("already_converted", "this lead was converted and can no longer change") }
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

extension Lead {
    init(row: Row) {
        self.init(
            id: row["id"], name: row["name"], email: row["email"], company: row["company"], source: row["source"], status: row["status"],
            score: row["score"], convertedAccountId: row["convertedAccountId"], convertedContactId: row["convertedContactId"],
            convertedDealId: row["convertedDealId"], convertedAt: row["convertedAt"], version: row["version"], createdAt: row["createdAt"],
            updatedAt: row["updatedAt"])
    }

    /// A lead from an event's payload (the monolith's JSON form); nil when a field is missing or mistyped.
    init?(payload: JSONValue) {
        guard let id = payload["id"]?.stringValue, let name = payload["name"]?.stringValue, let email = payload["email"]?.stringValue,
            let status = payload["status"]?.stringValue, let score = payload["score"]?.numberValue, let version = payload["version"]?.numberValue,
            let createdAt = payload["createdAt"]?.stringValue, let updatedAt = payload["updatedAt"]?.stringValue
        else { return nil }
        self.init(
            id: id, name: name, email: email, company: payload["company"]?.stringValue, source: payload["source"]?.stringValue, status: status,
            score: Int64(score), convertedAccountId: payload["convertedAccountId"]?.stringValue,
            convertedContactId: payload["convertedContactId"]?.stringValue, convertedDealId: payload["convertedDealId"]?.stringValue,
            convertedAt: payload["convertedAt"]?.stringValue, version: Int64(version), createdAt: createdAt, updatedAt: updatedAt)
    }
}
