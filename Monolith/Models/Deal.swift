import GRDB

/// A sales opportunity at an account, moving through pipeline stages.
struct Deal: CRMEntity, Equatable {
    static let kind = EntityKind(table: "deals", idPrefix: "deal", aggregateType: "deal", eventStem: "Deal")

    static let stages = ["prospecting", "qualification", "proposal", "negotiation", "won", "lost"]
    /// Stages of deals still in play, in pipeline order.
    static let openStages = ["prospecting", "qualification", "proposal", "negotiation"]

    /// The probability a deal takes when it enters a stage without one being given.
    static func defaultProbability(forStage stage: String) -> Int64 {
        switch stage {
        case "prospecting": 10
        case "qualification": 25
        case "proposal": 50
        case "negotiation": 75
        case "won": 100
        default: 0
        }
    }

    var id: String
    var accountId: String
    var contactId: String?
    var name: String
    /// In the currency's minor units (cents for EUR).
    var amount: Int64
    var currency: String
    var stage: String
    var expectedCloseDate: String?
    var probability: Int64
    var version: Int64
    var createdAt: String
    var updatedAt: String

    func updateEventType(from previous: Deal) -> String {
        self.stage != previous.stage ? "DealStageChanged" : "DealUpdated"
    }

    static let fields: Set<String> = [
        "accountId", "contactId", "name", "amount", "currency", "stage", "expectedCloseDate", "probability",
    ]

    /// Reads the writable fields. A stage change without a probability takes the new stage's default one.
    mutating func apply(_ input: inout FieldReader) {
        if case .value(let accountId) = input.string("accountId", required: true, minLength: 1, maxLength: 64) {
            self.accountId = accountId
        }
        input.string("contactId", nullable: true, minLength: 1, maxLength: 64).assign(to: &self.contactId)
        if case .value(let name) = input.string("name", required: true, minLength: 1) { self.name = name }
        if case .value(let amount) = input.integer("amount", required: true, range: 0...1_000_000_000_000) {
            self.amount = amount
        }
        if case .value(let currency) = input.string(
            "currency", required: true, maxLength: 3, check: FieldChecks.currency)
        {
            self.currency = currency
        }
        let previousStage = self.stage
        if case .value(let stage) = input.choice("stage", allowed: Self.stages) { self.stage = stage }
        input.string("expectedCloseDate", nullable: true, maxLength: 10, check: FieldChecks.date).assign(
            to: &self.expectedCloseDate)
        if case .value(let probability) = input.integer("probability", range: 0...100) {
            self.probability = probability
        } else if input.object["probability"] == nil, self.stage != previousStage || input.mode == .create {
            self.probability = Self.defaultProbability(forStage: self.stage)
        }
    }

    static func blank(id: String, at time: String) -> Deal {
        Deal(
            id: id, accountId: "", contactId: nil, name: "", amount: 0, currency: "", stage: "prospecting",
            expectedCloseDate: nil,
            probability: 10, version: 1, createdAt: time, updatedAt: time)
    }
}
