import ArgumentParser
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import LeadsService
import Logging
import PostgresNIO
import ProxyTestSupport
import ServiceKit
import Testing

@testable import StranglerCommands

@Suite("strangler reconcile")
struct ReconcileTests {
    @Test func cleanAfterSyncThenReportsMissingExtraAndDifferingRecords() async throws {
        try await withLiveMonolith { monolith, feed in
            let crm = try await SampleCRM.create(on: monolith)
            for index in 0..<230 {
                _ = try await monolith.create(
                    "/contacts",
                    #"{"accountId":"\#(crm.acme)","firstName":"Bulk","lastName":"\#(index)","#
                        + #""email":"bulk\#(index)@acme.example.com"}"#
                )
            }
            let service = try await ServiceUnderTest(feed: feed)
            try await service.consumer.catchUp()
            try await service.test { (contacts: any TestClientProtocol) async throws -> Void in
                let endpoint = FeedEndpoint(host: "localhost", port: try #require(contacts.port))
                let reconciler = Reconciler(path: "/contacts")
                let clean = try await reconciler.reconcile(monolith: feed, service: endpoint)
                #expect(clean.isClean && clean.compared == 233)

                // Drift on the service's side: one row lost, one changed, one written only there.
                try await service.database.write { db in
                    try db.execute(sql: "DELETE FROM contacts WHERE id = ?", arguments: [crm.linus])
                    try db.execute(
                        sql: "UPDATE contacts SET title = 'Drifted', version = 9 WHERE id = ?", arguments: [crm.ada])
                }
                let extra = try await contacts.answer(
                    .post, "/contacts",
                    json:
                        #"{"accountId":"\#(crm.globex)","firstName":"Only","lastName":"Here","#
                        + #""email":"only@here.example.com"}"#
                )
                let report = try await reconciler.reconcile(monolith: feed, service: endpoint)
                #expect(!report.isClean)
                #expect(report.missing == [crm.linus])
                #expect(report.extra == [extra.json?["id"]?.stringValue ?? "?"])
                #expect(report.differing.count == 1 && report.differing.first?.id == crm.ada)
                #expect(Set(report.differing.first?.differences ?? []) == ["/title changed", "/version changed"])
                #expect(
                    report.text(name: "contacts").hasPrefix(
                        "contacts: 233 in the monolith; 1 missing, 1 extra, 1 differing"))
                let json = report.json(name: "contacts", kept: "k.json")
                #expect(json["clean"]?.boolValue == false && json["compared"]?.numberValue == 233)
                #expect(json["missing"] == .array([.string(crm.linus)]))
                #expect(json["differing"]?.arrayValue?.first?["id"]?.stringValue == crm.ada)
                #expect(json["kept"]?.stringValue == "k.json")
                // A field left out on purpose: the drifted title no longer counts, the version still does.
                let ignoring = try await Reconciler(path: "/contacts", ignore: ["/title"]).reconcile(
                    monolith: feed, service: endpoint)
                #expect(Set(ignoring.differing.first?.differences ?? []) == ["/version changed"])
            }
        }
    }

    /// With the leads service on PostgreSQL, reconcile sees drift made in its tables there as it does on SQLite.
    @Test func findsDriftInALeadsServiceOnPostgreSQL() async throws {
        let url = try await PostgresServer.shared().freshDatabase()
        try await withLiveMonolith { monolith, feed in
            var created: [String] = []
            for index in 0..<60 {
                created.append(
                    try await monolith.create(
                        "/leads", #"{"name":"Lead \#(index)","email":"lead\#(index)@pg.example.com","score":\#(index)}"#
                    ))
            }
            let ids = created
            let service = try await ServiceUnderTest(.leads, feed: feed, postgres: url)
            try await service.consumer.catchUp()
            try await service.test { (leads: any TestClientProtocol) async throws -> Void in
                let endpoint = FeedEndpoint(host: "localhost", port: try #require(leads.port))
                let reconciler = Reconciler(path: "/leads")
                let clean = try await reconciler.reconcile(monolith: feed, service: endpoint)
                #expect(clean.isClean && clean.compared == 60, "\(clean.text(name: "leads"))")

                // Drift on the service's side, written straight into its PostgreSQL tables.
                let store = try #require(service.database.postgres)
                try await store.transaction(writing: true) { transaction in
                    let logger = Logger(label: "test.drift")
                    let delete: PostgresQuery = "DELETE FROM leads WHERE id = \(ids[3])"
                    let update: PostgresQuery =
                        "UPDATE leads SET company = 'Drifted', version = 7 WHERE id = \(ids[41])"
                    try await transaction.connection.query(delete, logger: logger)
                    try await transaction.connection.query(update, logger: logger)
                }
                let report = try await reconciler.reconcile(monolith: feed, service: endpoint)
                #expect(report.missing == [ids[3]] && report.extra.isEmpty, "\(report.text(name: "leads"))")
                #expect(report.differing.count == 1 && report.differing.first?.id == ids[41])
                #expect(
                    Set(report.differing.first?.differences ?? []) == ["/company type_changed", "/version changed"])
            }
        }
    }

    @Test func refusesBadArguments() throws {
        for (arguments, fragment) in [
            (["bad name!"], "is not an entity name"), (["contacts", "--monolith", "nope"], "--monolith"),
            (["deals", "--service", "ftp://x"], "--service"),
            (["contacts", "--ignore", "title"], "--ignore title: not a JSON pointer"),
            (["contacts", "--ignore", ""], "not a JSON pointer into a record"),
            (["contacts", "--ignore", "/*"], "would leave every field out"),
        ] {
            do {
                _ = try Strangler.parseAsRoot(["reconcile"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Strangler.message(for: error).contains(fragment), "\(arguments)")
            }
        }
        let command = try #require(try Strangler.parseAsRoot(["reconcile", "leads"]) as? ReconcileCommand)
        #expect(
            command.monolith == nil && command.service == nil && command.routes == "routes.json"
                && command.output == .table)
        let json = try #require(
            try Strangler.parseAsRoot(["reconcile", "leads", "--output", "json"]) as? ReconcileCommand)
        #expect(json.output == .json)
        // No stray runs of spaces from joined lines in the help.
        #expect(!ReconcileCommand.helpMessage(columns: 400).contains("  kept"))
    }
}
