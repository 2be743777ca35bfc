public import ServiceKit

extension ExtractedService {
    /// The deals service: `GET/POST /deals`, `GET/PATCH/DELETE /deals/{id}`, `GET /accounts/{id}/deals` and
    /// `GET /pipeline`, answered as the monolith answers them, from its own database, which the monolith's
    /// `Deal*` events fill and `Account*`/`Contact*` events keep the read models of.
    public static let deals = ExtractedService(
        name: "deals",
        migrations: { SchemaMigration.register(DealsSchema.migrations, in: &$0) },
        projection: RecordProjection<Deal>(readModels: [
            .init(of: "account", table: "accounts"),
            .init(of: "contact", table: "contacts", columns: ["accountId"], required: ["accountId"]),
        ]),
        routes: { router, database in DealRoutes.register(on: router, database: database) }
    )
}
