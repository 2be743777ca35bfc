import JSON
import NIOHTTP1

/// What `strangler traffic` sends: the CRM's reads and writes, weighted as a sales team uses it (mostly reads of
/// contacts, most of them on a few hot accounts).
enum TrafficOperation: String, CaseIterable, Sendable {
    case getContact = "GET /contacts/{id}"
    case listAccountContacts = "GET /accounts/{id}/contacts"
    case getAccount = "GET /accounts/{id}"
    case listAccountDeals = "GET /accounts/{id}/deals"
    case getLead = "GET /leads/{id}"
    case listLeads = "GET /leads?status="
    case getDeal = "GET /deals/{id}"
    case listDeals = "GET /deals?stage="
    case listContacts = "GET /contacts"
    case pipeline = "GET /pipeline"
    case updateContact = "PATCH /contacts/{id}"
    case updateLead = "PATCH /leads/{id}"
    case updateDeal = "PATCH /deals/{id}"
    case createLead = "POST /leads"
    case createContact = "POST /contacts"
    case convertLead = "POST /leads/{id}/convert"
    case deleteContact = "DELETE /contacts/{id}"

    /// Out of 100: reads 72, writes 28.
    var weight: Int {
        switch self {
        case .getContact: 22
        case .listAccountContacts: 12
        case .getAccount: 6
        case .listAccountDeals: 5
        case .getLead: 8
        case .listLeads: 3
        case .getDeal: 6
        case .listDeals: 5
        case .listContacts: 3
        case .pipeline: 2
        case .updateContact: 9
        case .updateLead: 5
        case .updateDeal: 5
        case .createLead: 4
        case .createContact: 2
        case .convertLead: 2
        case .deleteContact: 1
        }
    }

    var isWrite: Bool { !self.rawValue.hasPrefix("GET ") }
}

/// One request to send, and what it is about (so that its answer can update the pools).
struct TrafficRequest: Sendable {
    var operation: TrafficOperation
    var method: HTTPMethod
    var path: String
    var body: String?
    /// The entity the path names, if any.
    var id: String?
    /// Whether it concerns one of the hot accounts (or a hot lead).
    var hot: Bool
}

/// The ids the traffic works on, discovered through the target at start and kept up to date from the answers
/// (created records join, deleted and converted ones leave).
struct TrafficPools: Sendable {
    var accounts: [String] = []
    var hotAccounts: [String] = []
    var contactsByAccount: [String: [String]] = [:]
    var contacts: [String] = []
    var dealsByAccount: [String: [String]] = [:]
    var deals: [String] = []
    /// Leads that may still change (not converted).
    var leads: [String] = []
    var hotLeads: [String] = []
    /// Contacts and leads the traffic created itself: the only ones it deletes or converts.
    var createdContacts: [String] = []
    var createdLeads: [String] = []

    /// Share of entity picks that go to the hot set.
    static let hotShare = 0.8

    static let firstNames = [
        "Ada", "Grace", "Alan", "Katherine", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Radia", "Tim", "Hedy",
    ]
    static let lastNames = [
        "Lovelace", "Hopper", "Turing", "Johnson", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Perlman",
        "Lamarr",
    ]
    static let companies = [
        "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Wonka",
    ]
    static let titles = ["CEO", "CTO", "VP Sales", "Engineer", "Buyer", "Office Manager", "CFO", "Head of IT"]
    static let tags = ["vip", "emea", "apac", "amer", "newsletter", "partner", "renewal"]
    static let sources = ["web", "event", "referral", "cold-call", "partner"]
    static let leadStatuses = ["new", "working", "qualified"]
    static let stages = ["prospecting", "qualification", "proposal", "negotiation"]
    static let closingStages = ["won", "lost"]
    static let currencies = ["EUR", "USD", "GBP"]

    /// Picks the hot sets: the accounts with the most contacts (ties in list order), and as many leads.
    mutating func chooseHot(accounts count: Int) {
        let ranked = self.accounts.enumerated().sorted { left, right in
            let (a, b) = (
                self.contactsByAccount[left.element]?.count ?? 0, self.contactsByAccount[right.element]?.count ?? 0
            )
            return a != b ? a > b : left.offset < right.offset
        }
        self.hotAccounts = ranked.prefix(count).map(\.element)
        self.hotLeads = Array(self.leads.prefix(max(count * 2, 1)))
    }

    /// The next request, by weight; an operation with nothing to work on gives way to a list (a read) or a new
    /// lead (a write), so the read/write mix holds whatever the data.
    mutating func next(using random: inout some RandomNumberGenerator) -> TrafficRequest {
        var roll = Int.random(in: 0..<100, using: &random)
        var chosen = TrafficOperation.getContact
        for operation in TrafficOperation.allCases {
            if roll < operation.weight {
                chosen = operation
                break
            }
            roll -= operation.weight
        }
        return self.request(chosen, using: &random) ?? self.request(
            chosen.isWrite ? .createLead : .listContacts, using: &random)!
    }

    /// The request for `operation`, or nil when there is nothing for it to work on.
    mutating func request(
        _ operation: TrafficOperation, using random: inout some RandomNumberGenerator
    ) -> TrafficRequest? {
        func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
        func hot() -> Bool { Double.random(in: 0..<1, using: &random) < Self.hotShare }
        func suffix() -> String { String(UInt32.random(in: 0...UInt32.max, using: &random), radix: 36) }
        func request(
            _ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, id: String? = nil, hot: Bool = false
        ) -> TrafficRequest {
            TrafficRequest(operation: operation, method: method, path: path, body: body?.jsonText, id: id, hot: hot)
        }
        /// An account: a hot one most of the time.
        func account() -> (String, Bool)? {
            if !self.hotAccounts.isEmpty && hot() { return (pick(self.hotAccounts), true) }
            return self.accounts.isEmpty ? nil : (pick(self.accounts), false)
        }
        /// An entity of an account's: one of a hot account's most of the time.
        func owned(_ byAccount: [String: [String]], all: [String]) -> (String, Bool)? {
            let hotOwned = self.hotAccounts.compactMap { byAccount[$0] }.filter { !$0.isEmpty }
            if !hotOwned.isEmpty && hot() { return (pick(pick(hotOwned)), true) }
            return all.isEmpty ? nil : (pick(all), false)
        }
        func lead() -> (String, Bool)? {
            if !self.hotLeads.isEmpty && hot() { return (pick(self.hotLeads), true) }
            return self.leads.isEmpty ? nil : (pick(self.leads), false)
        }
        func name() -> (first: String, last: String) { (pick(Self.firstNames), pick(Self.lastNames)) }
        /// A GET of `path` of the entity chosen; nil when there is none.
        func read(_ chosen: (String, Bool)?, _ path: (String) -> String) -> TrafficRequest? {
            guard let (id, isHot) = chosen else { return nil }
            return request(.GET, path(id), id: id, hot: isHot)
        }

        switch operation {
        case .getContact:
            return read(owned(self.contactsByAccount, all: self.contacts)) { "/contacts/\($0)" }
        case .listAccountContacts:
            return read(account()) { "/accounts/\($0)/contacts?limit=50" }
        case .getAccount:
            return read(account()) { "/accounts/\($0)" }
        case .listAccountDeals:
            return read(account()) { "/accounts/\($0)/deals?limit=50" }
        case .getLead:
            return read(lead()) { "/leads/\($0)" }
        case .listLeads:
            return request(.GET, "/leads?status=\(pick(Self.leadStatuses))&limit=20")
        case .getDeal:
            return read(owned(self.dealsByAccount, all: self.deals)) { "/deals/\($0)" }
        case .listDeals:
            return request(.GET, "/deals?stage=\(pick(Self.stages + Self.closingStages))&limit=20")
        case .listContacts:
            return request(.GET, "/contacts?limit=20")
        case .pipeline:
            return request(.GET, "/pipeline")
        case .updateContact:
            guard let (id, isHot) = owned(self.contactsByAccount, all: self.contacts) else { return nil }
            let change: JSONValue =
                switch Int.random(in: 0..<3, using: &random) {
                case 0: .object([("title", .string(pick(Self.titles)))])
                case 1: .object([("phone", .string("+1 555 \(Int.random(in: 1000...9999, using: &random))"))])
                default:
                    .object([
                        (
                            "tags",
                            .array((0..<Int.random(in: 0...3, using: &random)).map { _ in .string(pick(Self.tags)) })
                        )
                    ])
                }
            return request(.PATCH, "/contacts/\(id)", change, id: id, hot: isHot)
        case .updateLead:
            guard let (id, isHot) = lead() else { return nil }
            let change: JSONValue = .object([
                ("status", .string(pick(Self.leadStatuses))),
                ("score", .number(Double(Int.random(in: 0...100, using: &random)))),
            ])
            return request(.PATCH, "/leads/\(id)", change, id: id, hot: isHot)
        case .updateDeal:
            guard let (id, isHot) = owned(self.dealsByAccount, all: self.deals) else { return nil }
            // Deals move through the pipeline; now and then one closes, or its amount is revised.
            let change: JSONValue =
                switch Int.random(in: 0..<10, using: &random) {
                case 0: .object([("stage", .string(pick(Self.closingStages)))])
                case 1, 2, 3: .object([("amount", .number(Double(Int.random(in: 10...5000, using: &random) * 1000)))])
                default: .object([("stage", .string(pick(Self.stages)))])
                }
            return request(.PATCH, "/deals/\(id)", change, id: id, hot: isHot)
        case .createLead:
            let (first, last) = name()
            let company = pick(Self.companies)
            let body: JSONValue = .object([
                ("name", .string("\(first) \(last)")),
                (
                    "email",
                    .string(
                        "\(first.lowercased()).\(last.lowercased()).\(suffix())@\(company.lowercased()).example.com")
                ),
                ("company", .string(company)), ("source", .string(pick(Self.sources))),
                ("score", .number(Double(Int.random(in: 0...100, using: &random)))),
            ])
            return request(.POST, "/leads", body)
        case .createContact:
            guard let (accountID, isHot) = account() else { return nil }
            let (first, last) = name()
            let body: JSONValue = .object([
                ("accountId", .string(accountID)), ("firstName", .string(first)), ("lastName", .string(last)),
                ("email", .string("\(first.lowercased()).\(last.lowercased()).\(suffix())@traffic.example.com")),
                ("title", .string(pick(Self.titles))), ("tags", .array([.string(pick(Self.tags))])),
            ])
            return request(.POST, "/contacts", body, id: accountID, hot: isHot)
        case .convertLead:
            // Only a lead this run created, taken out of the pools now so that no other request touches it.
            guard !self.createdLeads.isEmpty else { return nil }
            let id = self.createdLeads.remove(at: Int.random(in: 0..<self.createdLeads.count, using: &random))
            self.forgetLead(id)
            let withDeal = Bool.random(using: &random)
            let body: JSONValue =
                withDeal
                ? .object([
                    (
                        "createDeal",
                        .object([
                            (
                                "name",
                                .string(
                                    "\(pick(Self.companies)) \(pick(["pilot", "renewal", "expansion", "licences"]))")
                            ),
                            ("amount", .number(Double(Int.random(in: 5...500, using: &random) * 1000))),
                            ("currency", .string(pick(Self.currencies))),
                        ])
                    )
                ]) : .object([])
            return request(.POST, "/leads/\(id)/convert", body, id: id)
        case .deleteContact:
            guard !self.createdContacts.isEmpty else { return nil }
            let id = self.createdContacts.remove(at: Int.random(in: 0..<self.createdContacts.count, using: &random))
            self.forgetContact(id)
            return request(.DELETE, "/contacts/\(id)", id: id)
        }
    }

    /// Learns from an answer: new records join the pools; records that are gone leave them.
    mutating func learn(from request: TrafficRequest, status: Int, body: JSONValue?) {
        switch (request.operation, status) {
        case (.createLead, 201):
            if let id = body?["id"]?.stringValue {
                self.leads.append(id)
                self.createdLeads.append(id)
            }
        case (.createContact, 201):
            if let id = body?["id"]?.stringValue, let account = body?["accountId"]?.stringValue {
                self.contacts.append(id)
                self.contactsByAccount[account, default: []].append(id)
                self.createdContacts.append(id)
            }
        case (.convertLead, 200):
            if let deal = body?["deal"], let id = deal["id"]?.stringValue, let account = deal["accountId"]?.stringValue
            {
                self.deals.append(id)
                self.dealsByAccount[account, default: []].append(id)
            }
        case (.getContact, 404), (.updateContact, 404):
            if let id = request.id { self.forgetContact(id) }
        case (.getLead, 404), (.updateLead, 404), (.updateLead, 409):
            // 409 here: converted meanwhile (by someone else); it can no longer change.
            if let id = request.id { self.forgetLead(id) }
        case (.getDeal, 404), (.updateDeal, 404):
            if let id = request.id {
                self.deals.removeAll { $0 == id }
                for key in self.dealsByAccount.keys { self.dealsByAccount[key]?.removeAll { $0 == id } }
            }
        default:
            break
        }
    }

    mutating func forgetContact(_ id: String) {
        self.contacts.removeAll { $0 == id }
        self.createdContacts.removeAll { $0 == id }
        for key in self.contactsByAccount.keys { self.contactsByAccount[key]?.removeAll { $0 == id } }
    }

    mutating func forgetLead(_ id: String) {
        self.leads.removeAll { $0 == id }
        self.hotLeads.removeAll { $0 == id }
    }
}
