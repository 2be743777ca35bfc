import GRDB
import Hummingbird

/// `GET /pipeline`: open deals (every stage but won and lost), counted and summed per stage and currency.
///
/// ```json
/// { "stages": [ { "stage": "prospecting", "count": 2,
///                 "currencies": [ { "currency": "EUR", "count": 2, "amount": 150000 } ] }, … ],
///   "totals": [ { "currency": "EUR", "count": 2, "amount": 150000 } ] }
/// ```
/// Every open stage is listed, in pipeline order, even when empty; currencies in alphabetical order.
struct PipelineRoutes {
    struct Bucket: Sendable {
        var stage: String
        var currency: String
        var count: Int64
        var amount: Int64
    }

    let store: CRMStore

    func handle() async throws -> Response {
        let buckets = try await self.store.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT stage, currency, COUNT(*) AS count, SUM(amount) AS amount FROM deals
                    WHERE stage IN ('prospecting', 'qualification', 'proposal', 'negotiation')
                    GROUP BY stage, currency ORDER BY currency
                    """
            ).map { Bucket(stage: $0["stage"], currency: $0["currency"], count: $0["count"], amount: $0["amount"]) }
        }
        return JSONResponse.make { writer in
            writer.beginObject()
            writer.key("stages")
            writer.beginArray()
            for stage in Deal.openStages {
                let inStage = buckets.filter { $0.stage == stage }
                writer.beginObject()
                writer.field("stage", stage)
                writer.field("count", Self.sum(inStage.map(\.count)))
                writer.key("currencies")
                writer.beginArray()
                for bucket in inStage {
                    Self.write(currency: bucket.currency, count: bucket.count, amount: bucket.amount, to: &writer)
                }
                writer.endArray()
                writer.endObject()
            }
            writer.endArray()
            writer.key("totals")
            writer.beginArray()
            for currency in Set(buckets.map(\.currency)).sorted() {
                let inCurrency = buckets.filter { $0.currency == currency }
                Self.write(
                    currency: currency,
                    count: Self.sum(inCurrency.map(\.count)),
                    amount: Self.sum(inCurrency.map(\.amount)),
                    to: &writer
                )
            }
            writer.endArray()
            writer.endObject()
        }
    }

    /// Sums without trapping: a total beyond Int64 (not reachable with real amounts) saturates.
    private static func sum(_ values: [Int64]) -> Int64 {
        values.reduce(0) { total, value in
            let (result, overflow) = total.addingReportingOverflow(value)
            return overflow ? .max : result
        }
    }

    private static func write(currency: String, count: Int64, amount: Int64, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("currency", currency)
        writer.field("count", count)
        writer.field("amount", amount)
        writer.endObject()
    }
}
