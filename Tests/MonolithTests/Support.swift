import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Monolith

/// A JSON answer, parsed loosely for assertions.
struct JSONAnswer {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let json: Any?
    let text: String

    init(_ response: TestResponse) {
        self.status = response.status
        self.headers = response.headers
        self.text = String(buffer: response.body)
        self.json =
            self.text.isEmpty
            ? nil : try? JSONSerialization.jsonObject(with: Data(self.text.utf8), options: [.fragmentsAllowed])
    }

    var object: [String: Any] { self.json as? [String: Any] ?? [:] }
    subscript(key: String) -> Any? { self.object[key] }
    var items: [[String: Any]] { self.object["items"] as? [[String: Any]] ?? [] }
    var error: [String: Any] { self.object["error"] as? [String: Any] ?? [:] }
    var errorCode: String? { self.error["code"] as? String }
    var errorFields: [String: String] { self.error["fields"] as? [String: String] ?? [:] }
    func string(_ key: String) -> String { self.object[key] as? String ?? "" }
    func int(_ key: String) -> Int { (self.object[key] as? NSNumber)?.intValue ?? -1 }
}

/// Runs `body` against a fresh in-memory monolith, in process.
func withMonolith<T: Sendable>(_ body: @Sendable (any TestClientProtocol, CRMStore) async throws -> T) async throws -> T
{
    let store = try await CRMStore.open(path: nil)
    let app = Application(router: HeadAsGet(buildMonolithRouter(store: store)))
    return try await app.test(.router) { client in try await body(client, store) }
}

extension TestClientProtocol {
    func send(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]
    ) async throws
        -> JSONAnswer
    {
        var headers = headers
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await self.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }
        ) { JSONAnswer($0) }
    }

    func json(_ uri: String) async throws -> JSONAnswer { try await self.send(.get, uri) }

    /// Creates an entity and returns its JSON, failing the test if it was not created.
    @discardableResult
    func create(
        _ path: String, _ json: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws
        -> [String: Any]
    {
        let answer = try await self.send(.post, path, json: json)
        #expect(answer.status == .created, "POST \(path): \(answer.text)", sourceLocation: sourceLocation)
        return answer.object
    }

    func createAccount(_ name: String = "Acme") async throws -> String {
        try await self.create("/accounts", #"{"name":"\#(name)","domain":"acme.example.com","industry":"software"}"#)[
            "id"] as! String
    }

    func createContact(account: String, email: String) async throws -> String {
        try await self.create(
            "/contacts", #"{"accountId":"\#(account)","firstName":"Ada","lastName":"Lovelace","email":"\#(email)"}"#)[
                "id"] as! String
    }
}

extension CRMStore {
    func eventCount() async throws -> Int {
        try await self.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
    }

    func eventTypes() async throws -> [String] {
        try await self.database.read { db in try String.fetchAll(db, sql: "SELECT type FROM outbox ORDER BY id") }
    }

    func count(_ table: String) async throws -> Int {
        try await self.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }
}
