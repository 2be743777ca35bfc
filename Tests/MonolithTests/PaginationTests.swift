import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Monolith

@Suite("Cursor pagination")
struct PaginationTests {
    @Test func pagesCoverEveryItemOnceInAStableOrder() async throws {
        try await withMonolith { client, _ in
            var created: [String] = []
            for index in 0..<7 { created.append(try await client.createAccount("Account \(index)")) }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await client.json("/accounts?limit=3" + (cursor.map { "&after=\($0)" } ?? ""))
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["id"] as? String }
                cursor = page["next"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == created.sorted())
            #expect(Set(seen).count == 7)
            // The last page announces no next page; an exact multiple does not produce an empty page.
            let exact = try await client.json("/accounts?limit=7")
            #expect(exact.items.count == 7)
            #expect(exact["next"] is NSNull)
        }
    }

    @Test func invalidLimitsAndCursorsAre422() async throws {
        try await withMonolith { client, _ in
            for query in ["limit=0", "limit=201", "limit=ten", "after=***", "after=bm90IGFuIGlk!"] {
                let answer = try await client.json("/contacts?\(query)")
                #expect(answer.status == .unprocessableContent, "\(query): \(answer.text)")
                #expect(answer.errorCode == "validation_failed")
            }
            #expect(try await client.json("/contacts?limit=200").status == .ok)
        }
    }

    @Test func defaultLimitIs50() async throws {
        try await withMonolith { client, store in
            _ = try await Seeder(contacts: 60).seed(store)
            let page = try await client.json("/contacts")
            #expect(page.items.count == 50)
            #expect(page["next"] is String)
        }
    }
}
