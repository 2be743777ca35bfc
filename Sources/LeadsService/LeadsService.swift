public import ServiceKit

extension ExtractedService {
    /// The leads service: `GET/POST /leads` and `GET/PATCH/DELETE /leads/{id}`, answered as the monolith answers
    /// them, from its own database, which the monolith's `Lead*` events fill (`LeadConverted` included). Lead
    /// conversion (`POST /leads/{id}/convert`) stays in the monolith: it spans accounts, contacts and deals. The
    /// service with the most load, it can keep its tables on PostgreSQL (`--db postgres://…`).
    public static let leads = ExtractedService(
        name: "leads",
        migrations: { SchemaMigration.register(LeadsSchema.migrations, in: &$0) },
        projection: RecordProjection<Lead>(),
        postgresMigrations: LeadsSchema.postgresMigrations,
        routes: { router, database in LeadRoutes.register(on: router, database: database) }
    )
}
