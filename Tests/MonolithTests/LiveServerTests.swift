import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import Monolith

@Suite("The monolith on a real socket")
struct LiveServerTests {
    @Test func servesFromAFileDatabaseAndKeepsDataAcrossRestarts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-live-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("monolith.sqlite").path
        let logger = Logger(label: "test.monolith")

        let first = try await buildMonolithApplication(
            configuration: .init(port: 0, databasePath: path, seedContacts: 25), logger: logger)
        let contactID = try await first.test(.live) { client in
            #expect(try await client.json("/healthz").status == .ok)
            let contacts = try await client.json("/contacts?limit=200")
            #expect(contacts.items.count == 25)
            let lead = try await client.create("/leads", #"{"name":"Live Lead","email":"live@lead.example.com"}"#)
            let converted = try await client.send(.post, "/leads/\(lead["id"] as! String)/convert")
            #expect(converted.status == .ok)
            return (converted["contact"] as? [String: Any])?["id"] as? String ?? ""
        }

        // A second start on the same file keeps the data and does not seed again.
        let second = try await buildMonolithApplication(
            configuration: .init(port: 0, databasePath: path, seedContacts: 25), logger: logger)
        try await second.test(.live) { client in
            #expect(try await client.json("/contacts/\(contactID)").status == .ok)
            #expect(try await client.json("/contacts?limit=200").items.count == 26)
            let feed = try await client.json("/events?limit=1000")
            let types = feed.items.compactMap { $0["type"] as? String }
            #expect(types.last == "LeadConverted")
            #expect(feed.int("head") == feed.items.count)
        }
    }
}
