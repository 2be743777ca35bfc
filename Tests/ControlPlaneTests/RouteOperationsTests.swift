import AdminAPI
import DiffStore
import Foundation
import HTTPTypes
import JSON
import Logging
import RouteTable
import StranglerTesting
import Testing

@testable import ControlPlane

/// The control plane on its own: a standalone table (no proxy, no HTTP), typed outcomes and typed refusals.
@Suite("Control plane: route operations in-process")
struct RouteOperationsTests {
    /// An orders application of the test's own (no demo names): its service listens nowhere, so its health fails.
    struct Orders {
        let directory: URL
        let routesPath: String
        let operations: RouteOperations

        init(stage: String = "transform") throws {
            let closed = try ClosedPort()
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strangler-ops-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
            self.routesPath = self.directory.appendingPathComponent("routes.json").path
            let text = """
                { "monolith": "http://127.0.0.1:\(closed.port)",
                  "services": { "orders": "http://127.0.0.1:\(closed.port)" },
                  "routes": [
                    { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "service": "orders", "stage": \
                "\(stage)" },
                    { "id": "orders.list", "method": "GET", "path": "/orders", "service": "orders", "stage": \
                "\(stage)" } ] }
                """
            try text.write(toFile: self.routesPath, atomically: true, encoding: .utf8)
            let table = try RouteTable.parse(text)
            let diffStore = try DiffStore.open(path: self.directory.appendingPathComponent("diffs.sqlite").path)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let control = RouteControl(
                table: try StandaloneTable(table: table, text: text), routesPath: self.routesPath,
                dataDirectory: self.directory.path, logger: logger, diffStore: diffStore)
            self.operations = RouteOperations(control: control, diffStore: diffStore, probeTimeout: .seconds(1))
        }

        func fileText() throws -> String { try String(contentsOfFile: self.routesPath, encoding: .utf8) }

        func remove() { try? FileManager.default.removeItem(at: self.directory) }
    }

    @Test func aChangeWithoutTheTablesHashIsRefusedAndAStaleOneNamesTheCurrent() async throws {
        let orders = try Orders()
        defer { orders.remove() }
        let table = orders.operations.table()
        #expect(try table.version == 1 && table.contentHash == RouteTable.contentHash(of: orders.fileText()))
        await #expect(throws: ControlError.ifMatchRequired) {
            try await orders.operations.stage(
                selector: "orders.get", to: .coexist, expectedHash: nil, actor: "t", reason: nil, force: false)
        }
        do {
            _ = try await orders.operations.stage(
                selector: "orders.*", to: .transform, expectedHash: "0000000000000000", actor: "t", reason: nil,
                force: false)
            Issue.record("a stale hash was accepted")
        } catch {
            #expect(error.code == .stale && error.currentHash == table.contentHash)
        }
    }

    @Test func theGatesRefuseWithEveryReasonAndNothingIsWritten() async throws {
        let orders = try Orders()
        defer { orders.remove() }
        let before = try orders.fileText()
        let hash = orders.operations.table().contentHash
        do {
            _ = try await orders.operations.stage(
                selector: "orders.*", to: .coexist, expectedHash: hash, actor: "t", reason: nil, force: false)
            Issue.record("a move without evidence passed the gates")
        } catch {
            #expect(error.code == .gateRefused)
            #expect(error.refusals.map(\.route) == ["orders.get", "orders.list"])
            #expect(error.refusals.allSatisfy { $0.from == .transform && $0.to == .coexist && !$0.reasons.isEmpty })
            // The admin API's envelope carries the same refusal, and reads back as it was.
            #expect(error.status == .conflict)
            #expect(ControlError(json: error.json) == error)
        }
        #expect(try orders.fileText() == before)
        #expect(try await orders.operations.history().total == 0)
    }

    @Test func aForcedMoveNeedsAReasonAndIsAuditedAsForced() async throws {
        let orders = try Orders()
        defer { orders.remove() }
        let hash = orders.operations.table().contentHash
        await #expect(throws: ControlError.self) {
            try await orders.operations.stage(
                selector: "orders.get", to: .coexist, expectedHash: hash, actor: "t", reason: " ", force: true)
        }
        let change = try await orders.operations.stage(
            selector: "orders.get", to: .coexist, expectedHash: hash, actor: "alice", reason: "trial", force: true)
        #expect(change.changed == [StageChange(route: "orders.get", from: .transform, to: .coexist)])
        #expect(change.forced && change.overridden.map(\.route) == ["orders.get"])
        #expect(change.table.version == 2 && change.table.table.route(id: "orders.get")?.stage == .coexist)
        #expect(try RouteTable.contentHash(of: orders.fileText()) == change.table.contentHash)
        let history = try await orders.operations.history()
        #expect(history.total == 1)
        #expect(
            history.entries[0].action == "stage" && history.entries[0].forced && history.entries[0].actor == "alice")
        #expect(history.entries[0].changes == change.changed)
    }

    @Test func undoRevertsTheLastChangeAndSaysWhatItUndid() async throws {
        let orders = try Orders(stage: "coexist")
        defer { orders.remove() }
        await #expect(throws: ControlError.self) {
            try await orders.operations.undo(expectedHash: nil, actor: "t", reason: nil)
        }
        // Back to transform passes without evidence.
        let rollback = try await orders.operations.stage(
            selector: "orders.list", to: .transform, expectedHash: orders.operations.table().contentHash, actor: "bob",
            reason: "slow", force: false)
        #expect(
            !rollback.forced && rollback.changed == [StageChange(route: "orders.list", from: .coexist, to: .transform)])
        let undo = try await orders.operations.undo(expectedHash: rollback.table.contentHash, actor: "bob", reason: nil)
        #expect(undo.undid.action == "stage" && undo.undid.actor == "bob" && undo.undid.reason == "slow")
        #expect(undo.changed == [StageChange(route: "orders.list", from: .transform, to: .coexist)])
        #expect(undo.table.table.route(id: "orders.list")?.stage == .coexist)
        // Nothing to change is an outcome, not a refusal.
        let same = try await orders.operations.stage(
            selector: "orders.*", to: .coexist, expectedHash: undo.table.contentHash, actor: "bob", reason: nil,
            force: false)
        #expect(same.changed.isEmpty && same.table.version == undo.table.version)
    }

    @Test func selectorsAndTriageRefuseWhatDoesNotExist() async throws {
        let orders = try Orders()
        defer { orders.remove() }
        let hash = orders.operations.table().contentHash
        for (selector, code) in [("orders.nope", ControlError.Code.notFound), ("billing.*", .noMatch)] {
            do {
                _ = try await orders.operations.stage(
                    selector: selector, to: .coexist, expectedHash: hash, actor: "t", reason: nil, force: false)
                Issue.record("\(selector) was accepted")
            } catch {
                #expect(error.code == code && error.status == .notFound)
            }
        }
        do {
            _ = try await orders.operations.triage(
                route: "orders.get", signature: "0123456789abcdef", decision: .accepted, expectedHash: nil, actor: "t",
                reason: "known")
            Issue.record("an unknown signature was triaged")
        } catch {
            #expect(error.code == .unknownSignature)
        }
        let listing = try await orders.operations.evidence(route: "orders.get")
        #expect(listing.tableRoutes == 2 && listing.routes.map(\.id) == ["orders.get"])
        #expect(listing.routes[0].next?.to == .coexist && listing.routes[0].next?.allowed == false)
        #expect(listing.routes[0].matchRate == nil)
    }
}
