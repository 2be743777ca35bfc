public import ServiceKit

extension ExtractedService {
    /// The contacts service: `GET/POST /contacts`, `GET/PATCH/DELETE /contacts/{id}` and
    /// `GET /accounts/{id}/contacts`, answered as the monolith answers them, from its own database, which the
    /// monolith's `Contact*` events fill and `Account*`/`Deal*` events keep the read models of.
    ///
    /// ```swift
    /// let configuration = ServiceConfiguration(name: "contacts", feed: FeedEndpoint(url: "http://127.0.0.1:8081"))
    /// try await ExtractedService.contacts.run(configuration: configuration, logger: logger)
    /// ```
    public static let contacts = ExtractedService(
        name: "contacts",
        migrations: { SchemaMigration.register(ContactsSchema.migrations, in: &$0) },
        projection: RecordProjection<Contact>(readModels: [
            .init(of: "account", table: "accounts"),
            .init(of: "deal", table: "deals", columns: ["accountId", "contactId"], required: ["accountId"]),
        ]),
        routes: { router, database in ContactRoutes.register(on: router, database: database) }
    )
}
