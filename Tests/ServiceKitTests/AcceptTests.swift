import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ServiceKit
import Testing

@Suite("ServiceKit: content negotiation")
struct AcceptTests {
    @Test func aServiceAnswers406ToAnAcceptWithoutJSONAndHonoursWeights() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ServiceErrorMiddleware())
        router.add(middleware: AcceptMiddleware())
        router.get("/things") { _, _ in Response.json { $0.object { $0.field("ok", "yes") } } }
        try await Application(router: router).test(.router) { client in
            for accept in ["text/html", "application/json;q=0", "*/*;q=1, application/json;q=0", "image/*"] {
                try await client.execute(uri: "/things", method: .get, headers: [.accept: accept]) { answer in
                    #expect(answer.status == .notAcceptable, "\(accept)")
                    #expect(String(buffer: answer.body).contains("not_acceptable"))
                }
            }
            for accept in ["application/json", "*/*", "text/html;q=0.9, application/*;q=0.1", ""] {
                try await client.execute(uri: "/things", method: .get, headers: [.accept: accept]) { answer in
                    #expect(answer.status == .ok, "\(accept)")
                }
            }
        }
    }
}
