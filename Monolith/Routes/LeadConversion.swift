import GRDB
import Hummingbird

/// `POST /leads/{id}/convert`: turns a lead into an account and a contact, and a deal when the body has
/// `createDeal`, and marks the lead converted — all in one transaction, with one event per change.
///
/// ```json
/// { "createDeal": { "name": "ACME renewal", "amount": 120000, "currency": "EUR", "stage": "proposal" } }
/// ```
/// The account is named after the lead's company (or the lead's name), with the domain of the lead's
/// e-mail address; the contact takes the lead's name (split at its last space) and e-mail address.
struct LeadConversion {
    static let dealFields: Set<String> = ["name", "amount", "currency", "stage", "expectedCloseDate", "probability"]

    struct Result: Sendable {
        var lead: Lead
        var account: Account
        var contact: Contact
        var deal: Deal?

        func writeJSON(to writer: inout JSONWriter) {
            writer.beginObject()
            writer.key("lead")
            self.lead.writeJSON(to: &writer)
            writer.key("account")
            self.account.writeJSON(to: &writer)
            writer.key("contact")
            self.contact.writeJSON(to: &writer)
            writer.key("deal")
            if let deal = self.deal { deal.writeJSON(to: &writer) } else { writer.value(nil as String?) }
            writer.endObject()
        }
    }

    let store: CRMStore

    func handle(_ request: Request, _ context: some RequestContext) async throws -> Response {
        var request = request
        let id = try request.entityID(context, noun: "lead")
        let expectedVersion = try request.expectedVersion()
        let object = try await request.jsonObject(allowEmpty: true)
        let result = try await self.store.write(dryRun: request.isDryRun) { db, outbox in
            try Self.convert(id, expectedVersion: expectedVersion, body: object, db, &outbox)
        }
        return JSONResponse.make { result.writeJSON(to: &$0) }
    }

    static func convert(
        _ id: String, expectedVersion: Int64?, body: [String: JSONValue], _ db: Database, _ outbox: inout Outbox
    ) throws -> Result {
        let lead = try EntityRoutes<Lead, BasicRequestContext>.load(id, expectedVersion: expectedVersion, db)
        if lead.status == "converted" {
            throw APIError.conflict("already_converted", "this lead was already converted")
        }
        if lead.status == "disqualified" {
            throw APIError.conflict(
                "lead_disqualified", "a disqualified lead cannot be converted; set its status first")
        }

        var input = FieldReader(body, mode: .create, allowed: ["createDeal"])
        let dealInput = input.object("createDeal")
        let now = Timestamp.now()

        // The account and contact are built from the lead and held to the same rules as if they were posted.
        let emailDomain = lead.email.split(separator: "@").last.map { String($0).lowercased() }
        let company = lead.company.flatMap { $0.trimmingSpaces().isEmpty ? nil : $0 }
        var accountFields: [String: JSONValue] = ["name": .string(company ?? lead.name)]
        if let emailDomain, FieldChecks.domain(emailDomain) == nil { accountFields["domain"] = .string(emailDomain) }
        var account = Account.new(at: now)
        var accountReader = FieldReader(accountFields, mode: .create, prefix: "account.", allowed: Account.fields)
        account.apply(&accountReader)

        let nameParts = lead.name.split(separator: " ")
        let contactFields: [String: JSONValue] = [
            "accountId": .string(account.id),
            "firstName": .string(
                nameParts.count > 1 ? nameParts.dropLast().joined(separator: " ") : String(nameParts.first ?? "")),
            "lastName": .string(nameParts.count > 1 ? String(nameParts.last!) : ""),
            "email": .string(lead.email),
        ]
        var contact = Contact.new(at: now)
        var contactReader = FieldReader(contactFields, mode: .create, prefix: "contact.", allowed: Contact.fields)
        contact.apply(&contactReader)
        var derived = accountReader
        derived.absorb(contactReader)
        if !derived.isValid {
            throw APIError.validation(
                derived.errors,
                message: "the lead's data does not make a valid account and contact; correct the lead first")
        }

        var deal: Deal?
        if let dealInput {
            for key in ["accountId", "contactId"] where dealInput[key] != nil {
                input.fail("createDeal.\(key)", "is set by the conversion")
            }
            var fields = dealInput
            fields["accountId"] = .string(account.id)
            fields["contactId"] = .string(contact.id)
            var dealReader = FieldReader(
                fields, mode: .create, prefix: "createDeal.",
                allowed: Self.dealFields.union(["accountId", "contactId"]))
            var draft = Deal.new(at: now)
            draft.apply(&dealReader)
            input.absorb(dealReader)
            deal = draft
        }
        try input.validate()

        // Each insert may fail (another contact has the lead's e-mail address); the transaction then rolls
        // back whatever this conversion wrote before it.
        try EntityRoutes<Account, BasicRequestContext>.mappingConstraints { try CRMStore.insert(account, db, &outbox) }
        try EntityRoutes<Contact, BasicRequestContext>.mappingConstraints { try CRMStore.insert(contact, db, &outbox) }
        if let deal {
            try EntityRoutes<Deal, BasicRequestContext>.mappingConstraints { try CRMStore.insert(deal, db, &outbox) }
        }
        var converted = lead
        converted.status = "converted"
        converted.convertedAccountId = account.id
        converted.convertedContactId = contact.id
        converted.convertedDealId = deal?.id
        converted.convertedAt = now
        let saved = try CRMStore.update(converted, previous: lead, db, &outbox, at: now)
        return Result(lead: saved, account: account, contact: contact, deal: deal)
    }
}
