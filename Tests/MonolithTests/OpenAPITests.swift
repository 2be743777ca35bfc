import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Monolith

/// Keeps docs/openapi.yaml true: every documented operation exists and answers, and every route is documented.
@Suite("docs/openapi.yaml")
struct OpenAPITests {
    struct Operation: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var description: String { "\(self.method) \(self.path)" }
    }

    static var documentURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
    }

    /// The operations under `paths:`, read from the YAML's indentation (path keys, then method keys).
    static func documentedOperations() throws -> Set<Operation> {
        let text = try String(contentsOf: self.documentURL, encoding: .utf8)
        let methods: Set<String> = ["get", "put", "post", "patch", "delete", "head", "options"]
        var operations: Set<Operation> = []
        var inPaths = false
        var currentPath: String?
        var pathIndent = -1
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count
            let content = line.dropFirst(indent)
            if content.isEmpty || content.hasPrefix("#") { continue }
            if indent == 0 {
                inPaths = content.hasPrefix("paths:")
                currentPath = nil
                continue
            }
            guard inPaths else { continue }
            if content.hasPrefix("/") || content.hasPrefix("\"/") || content.hasPrefix("'/"), content.hasSuffix(":"),
                pathIndent < 0 || indent == pathIndent
            {
                pathIndent = indent
                currentPath = String(content.dropLast()).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            } else if let path = currentPath, indent > pathIndent, content.hasSuffix(":"),
                methods.contains(String(content.dropLast()))
            {
                operations.insert(Operation(method: String(content.dropLast()).uppercased(), path: path))
            }
        }
        return operations
    }

    static func normalize(_ path: String) -> String {
        path.split(separator: "/").map { $0.hasPrefix("{") || $0.hasPrefix(":") ? "{}" : String($0) }.joined(
            separator: "/")
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationExists() async throws {
        let documented = try Self.documentedOperations()
        #expect(documented.count >= 20)
        let router = buildMonolithRouter(store: try await CRMStore.open(path: nil))
        let routes = Set(
            router.routes.map { Operation(method: $0.method.rawValue, path: Self.normalize($0.path.description)) })
        let documentedNormalized = Set(documented.map { Operation(method: $0.method, path: Self.normalize($0.path)) })
        #expect(routes.subtracting(documentedNormalized).isEmpty, "routes missing from docs/openapi.yaml")
        #expect(documentedNormalized.subtracting(routes).isEmpty, "documented operations the monolith does not have")
    }

    @Test func everyDocumentedOperationAnswers() async throws {
        let documented = try Self.documentedOperations()
        try await withMonolith { client, store in
            _ = try await Seeder(contacts: 20).seed(store)
            let ids = try await store.database.read { db in
                [
                    "accounts": try String.fetchOne(db, sql: "SELECT id FROM accounts ORDER BY id DESC")!,
                    "contacts": try String.fetchOne(
                        db,
                        sql:
                            "SELECT id FROM contacts WHERE id NOT IN "
                            + "(SELECT contactId FROM deals WHERE contactId IS NOT NULL)"
                    )!,
                    "leads": try String.fetchOne(
                        db, sql: "SELECT id FROM leads WHERE status IN ('new', 'working', 'qualified')")!,
                    "deals": try String.fetchOne(db, sql: "SELECT id FROM deals")!,
                ]
            }
            // Reads first, then writes, deletes last, so that each operation finds its entity.
            let order = ["GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3]
            for operation in documented.sorted(by: {
                (order[$0.method] ?? 9, $0.path) < (order[$1.method] ?? 9, $1.path)
            }) {
                let collection = String(operation.path.split(separator: "/").first ?? "")
                let path = operation.path.replacingOccurrences(of: "{id}", with: ids[collection] ?? "x")
                let body: String? = ["POST", "PATCH"].contains(operation.method) ? "{}" : nil
                let answer = try await client.send(HTTPRequest.Method(operation.method)!, path, json: body)
                #expect(answer.status.code < 500, "\(operation) answered \(answer.status)")
                #expect(
                    !(answer.status == .notFound
                        && (answer.error["message"] as? String ?? "").hasPrefix("no such endpoint")),
                    "\(operation) is not routed")
                if operation.method == "GET" { #expect(answer.status == .ok, "\(operation): \(answer.text)") }
            }
        }
    }
}
