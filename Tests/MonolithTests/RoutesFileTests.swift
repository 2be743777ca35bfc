import Foundation
import Hummingbird
import Testing

@testable import Monolith

@Suite("The repository's routes.json")
struct RoutesFileTests {
    @Test func listsEveryMonolithEndpointInTransform() async throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("routes.json")
        let table = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let routes = try #require(table["routes"] as? [[String: Any]])
        let listed = Set(
            routes.map { "\($0["method"] as? String ?? "") \(OpenAPITests.normalize($0["path"] as? String ?? ""))" })
        #expect(routes.allSatisfy { $0["stage"] as? String == "transform" })
        let router = buildMonolithRouter(store: try await CRMStore.open(path: nil))
        let endpoints = Set(
            router.routes.map { "\($0.method.rawValue) \(OpenAPITests.normalize($0.path.description))" })
        #expect(endpoints.subtracting(listed).isEmpty, "monolith endpoints missing from routes.json")
        #expect(listed.subtracting(endpoints).isEmpty, "routes.json lists endpoints the monolith does not have")
    }
}
