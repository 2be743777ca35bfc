import GRDB
import Hummingbird
import ServiceKit

/// The deals endpoints: the generic ones of ``Deal``, `GET /accounts/{id}/deals` (404 when the account does
/// not exist in the read model) and `GET /pipeline`.
enum DealRoutes {
    static func register(on router: Router<BasicRequestContext>, database: ServiceDatabase) {
        let routes = RecordRoutes<Deal>(database: database)
        routes.register(on: router)
        routes.registerList(under: "accounts", noun: "account", column: "accountId", on: router)
        router.get("/pipeline") { _, _ in try await Self.pipeline(database) }
    }

    /// Open deals counted and summed per stage (every open stage, in pipeline order) and currency
    /// (alphabetically), then per currency: `{ "stages": [...], "totals": [...] }`.
    static func pipeline(_ database: ServiceDatabase) async throws -> Response {
        let rows = try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT stage, currency, COUNT(*) AS count, SUM(amount) AS amount FROM deals
                    WHERE stage IN (\(Deal.openStages.map { "'\($0)'" }.joined(separator: ", ")))
                    GROUP BY stage, currency ORDER BY currency
                    """
            ).map {
                (
                    stage: $0["stage"] as String, currency: $0["currency"] as String, count: $0["count"] as Int64,
                    amount: $0["amount"] as Int64
                )
            }
        }
        func total(_ values: [Int64]) -> Int64 {
            values.reduce(0) { sum, value in
                let (result, overflow) = sum.addingReportingOverflow(value)
                return overflow ? .max : result
            }
        }
        func bucket(_ output: inout JSONOutput, _ currency: String, _ count: Int64, _ amount: Int64) {
            output.object { object in
                object.field("currency", currency)
                object.field("count", count)
                object.field("amount", amount)
            }
        }
        return Response.json { output in
            output.object { root in
                root.key("stages")
                root.array { stages in
                    for stage in Deal.openStages {
                        let inStage = rows.filter { $0.stage == stage }
                        stages.object { object in
                            object.field("stage", stage)
                            object.field("count", total(inStage.map(\.count)))
                            object.key("currencies")
                            object.array { list in
                                for row in inStage { bucket(&list, row.currency, row.count, row.amount) }
                            }
                        }
                    }
                }
                root.key("totals")
                root.array { totals in
                    for currency in Set(rows.map(\.currency)).sorted() {
                        let inCurrency = rows.filter { $0.currency == currency }
                        bucket(&totals, currency, total(inCurrency.map(\.count)), total(inCurrency.map(\.amount)))
                    }
                }
            }
        }
    }
}
