import Hummingbird
import ServiceKit

/// The contacts endpoints: the generic ones of ``Contact`` and `GET /accounts/{id}/contacts` (404 when the
/// account does not exist in the read model).
enum ContactRoutes {
    static func register(on router: Router<BasicRequestContext>, database: ServiceDatabase) {
        let routes = RecordRoutes<Contact>(database: database)
        routes.register(on: router)
        routes.registerList(under: "accounts", noun: "account", column: "accountId", on: router)
    }
}
