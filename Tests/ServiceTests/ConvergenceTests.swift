import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import ProxyTestSupport
import ServiceKit
import Testing

@testable import ContactsService

@Suite("Contacts service: convergence under concurrent writes")
struct ConvergenceTests {
    @Test func convergesWhileSeveralWritersHammerTheMonolith() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            let service = try await ServiceUnderTest(feed: feed, pageSize: 7)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.consumer.run() }
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<4 {
                        writers.addTask {
                            for step in 0..<12 {
                                let account = step % 2 == 0 ? crm.acme : crm.globex
                                let id = try await monolith.create(
                                    "/contacts",
                                    #"{"accountId":"\#(account)","firstName":"W\#(writer)","#
                                        + #""lastName":"S\#(step)","email":"w\#(writer).s\#(step)@load.example.com"}"#
                                )
                                #expect(
                                    try await monolith.answer(
                                        .patch, "/contacts/\(id)", json: #"{"title":"v2","tags":["w\#(writer)"]}"#
                                    ).status == 200)
                                #expect(
                                    try await monolith.answer(
                                        .patch, "/contacts/\(id)", json: #"{"accountId":"\#(crm.globex)"}"#,
                                        headers: [.ifMatch: "2"]
                                    ).status == 200)
                                if step % 3 == 0 {
                                    #expect(try await monolith.answer(.delete, "/contacts/\(id)").status == 204)
                                }
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
                let head = try await HTTPEventFeed(feed).events(after: 0, limit: 1, wait: 0).head
                #expect(await eventually(within: .seconds(30)) { service.consumer.status.lastEventID >= head })
                group.cancelAll()
            }
            let status = service.consumer.status
            #expect(status.consumedEvents == status.lastEventID)
            // A reconcile in miniature: every page, byte for byte.
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                var uri = "/contacts?limit=20"
                var pages = 0
                while true {
                    let expected = try await monolith.answer(.get, uri)
                    #expect(try await contacts.answer(.get, uri) == expected, "\(uri)")
                    pages += 1
                    guard let next = expected.json?["next"]?.stringValue else { break }
                    uri = "/contacts?limit=20&after=\(next)"
                }
                #expect(pages >= 2)
            }
        }
    }
}
