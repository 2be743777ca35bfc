import GRDB

/// Deterministic demo data: `contacts` contacts, with one account per five contacts, one lead per two and
/// one deal per four. The same count always gives the same rows, ids and events.
public struct Seeder: Sendable {
    public struct Report: Sendable, Equatable {
        public var accounts: Int
        public var contacts: Int
        public var leads: Int
        public var deals: Int
    }

    public let contacts: Int

    public init(contacts: Int) {
        self.contacts = contacts
    }

    static let firstNames = [
        "Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim",
        "Ümit", "Sophie", "Guido", "Yukihiro",
    ]
    static let lastNames = [
        "Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra",
        "Perlman", "Berners-Lee", "Wilson", "Rossum", "Matsumoto",
    ]
    static let companies = [
        "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Wonka",
        "Aperture",
    ]
    static let industries = ["software", "manufacturing", "retail", "finance", "healthcare", "energy", "logistics"]
    static let titles = ["CEO", "CTO", "VP Sales", "Engineer", "Buyer", "Office Manager", "CFO"]
    static let tags = ["vip", "emea", "apac", "amer", "newsletter", "partner"]
    static let sources = ["web", "event", "referral", "cold-call", "partner"]
    static let currencies = ["EUR", "USD", "GBP"]

    /// Seeds an empty database in one transaction; returns nil, writing nothing, when it already has data.
    public func seed(_ store: CRMStore) async throws -> Report? {
        let contactCount = self.contacts
        return try await store.write { db, outbox in
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM accounts") ?? 0 > 0 { return nil }
            return try Self.insertAll(contacts: contactCount, db, &outbox)
        }
    }

    static func insertAll(contacts contactCount: Int, _ db: Database, _ outbox: inout Outbox) throws -> Report {
        var random = SplitMix64(seed: 0x5EED)
        // 2026-01-01T00:00:00Z, then one second per row.
        var clock: Int64 = 1_767_225_600_000
        func tick() -> (ms: Int64, text: String) {
            clock += 1000
            return (clock, Timestamp.format(millisecondsSince1970: clock))
        }
        func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
        func id(_ prefix: String, _ time: Int64) -> String {
            EntityID.make(prefix: prefix, millisecondsSince1970: time, using: &random)
        }

        let accountCount = max(1, contactCount / 5)
        var accounts: [Account] = []
        accounts.reserveCapacity(accountCount)
        for index in 0..<accountCount {
            let time = tick()
            let company = "\(pick(companies)) \(index + 1)"
            let account = Account(
                id: id("acc", time.ms),
                name: company,
                domain: "\(company.lowercased().replacingSpaces())-\(index + 1).example.com",
                industry: pick(industries),
                ownerEmail: "owner\(index % 20 + 1)@crm.example.com",
                version: 1, createdAt: time.text, updatedAt: time.text
            )
            try CRMStore.insert(account, db, &outbox)
            accounts.append(account)
        }

        var contacts: [Contact] = []
        contacts.reserveCapacity(contactCount)
        for index in 0..<contactCount {
            let time = tick()
            let account = accounts[index % accountCount]
            let first = pick(firstNames)
            let last = pick(lastNames)
            let tagCount = Int(random.next() % 3)
            // One contact in 41 was saved with an empty title (an old form sent "" for "no title"): the demo's
            // contacts service answers those as null, a difference coexist finds (docs/services.md).
            let title = pick(titles)
            let contact = Contact(
                id: id("con", time.ms),
                accountId: account.id,
                firstName: first,
                lastName: last,
                email: "\(first.lowercased()).\(last.lowercased()).\(index + 1)@\(account.domain ?? "example.com")",
                phone: "+1 555 \(String(1000 + index % 9000))",
                title: index % 41 == 17 ? "" : title,
                tags: Array(Set((0..<tagCount).map { _ in pick(tags) })).sorted(),
                version: 1, createdAt: time.text, updatedAt: time.text
            )
            try CRMStore.insert(contact, db, &outbox)
            contacts.append(contact)
        }

        let leadCount = contactCount / 2
        for index in 0..<leadCount {
            let time = tick()
            let lead = Lead(
                id: id("led", time.ms),
                name: "\(pick(firstNames)) \(pick(lastNames))",
                email: "lead\(index + 1)@prospect\(index % 97 + 1).example.org",
                company: "\(pick(companies)) Prospect \(index % 97 + 1)",
                source: pick(sources),
                status: pick(Lead.settableStatuses),
                score: Int64(random.next() % 101),
                version: 1, createdAt: time.text, updatedAt: time.text
            )
            try CRMStore.insert(lead, db, &outbox)
        }

        let dealCount = contactCount / 4
        for index in 0..<dealCount {
            let time = tick()
            let contact = contacts[(index * 4) % contactCount]
            let stage = pick(Deal.stages)
            let deal = Deal(
                id: id("deal", time.ms),
                accountId: contact.accountId,
                contactId: contact.id,
                name: "Deal \(index + 1)",
                amount: Int64(random.next() % 50_000_00) + 100_00,
                currency: pick(currencies),
                stage: stage,
                expectedCloseDate: "2026-\(String(format2: index % 12 + 1))-\(String(format2: index % 28 + 1))",
                probability: Deal.defaultProbability(forStage: stage),
                version: 1, createdAt: time.text, updatedAt: time.text
            )
            try CRMStore.insert(deal, db, &outbox)
        }
        return Report(accounts: accountCount, contacts: contactCount, leads: leadCount, deals: dealCount)
    }
}

extension String {
    fileprivate init(format2 value: Int) {
        self = value < 10 ? "0\(value)" : "\(value)"
    }

    fileprivate func replacingSpaces() -> String {
        String(self.map { $0 == " " ? "-" : $0 })
    }
}
