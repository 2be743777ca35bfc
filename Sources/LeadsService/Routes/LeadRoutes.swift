import Hummingbird
import ServiceKit

/// The leads endpoints: the generic ones of ``Lead``.
enum LeadRoutes {
    static func register(on router: Router<BasicRequestContext>, database: ServiceDatabase) {
        RecordRoutes<Lead>(database: database).register(on: router)
    }
}
