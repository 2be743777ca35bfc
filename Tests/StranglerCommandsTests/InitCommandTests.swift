import ArgumentParser
import Foundation
import JSON
import RouteTable
import Testing

@testable import StranglerCommands

@Suite("strangler init --openapi")
struct InitCommandTests {
    static let yaml = """
        openapi: 3.0.3
        info: { title: Shop, version: "1" }
        servers:
          - url: http://shop.example.com/api
        paths:
          /orders:
            get: { operationId: listOrders, tags: [orders] }
            post: { operationId: createOrder, tags: [orders] }
          /orders/{id}:
            parameters: [ { name: id, in: path, required: true } ]
            get: { tags: [orders] }
            delete: { operationId: "orders delete!" }
          /health:
            get: { operationId: health }
        """

    func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func parse(_ arguments: [String]) throws -> InitCommand {
        try #require(try Strangler.parseAsRoot(["init"] + arguments) as? InitCommand)
    }

    @Test func oneRoutePerOperationInTransformWithTheDocumentsTemplates() throws {
        let folder = try self.directory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec = folder.appendingPathComponent("openapi.yaml").path
        try Self.yaml.write(toFile: spec, atomically: true, encoding: .utf8)
        let out = folder.appendingPathComponent("routes.json").path
        try self.parse([
            "--openapi", spec, "--monolith", "http://127.0.0.1:9001", "--service", "orders=http://127.0.0.1:9002",
            "--no-probes", "--out", out,
        ]).run()
        let table = try RouteTable.parse(try String(contentsOfFile: out, encoding: .utf8))
        #expect(
            table.routes.map { "\($0.id) \($0.method) \($0.path) \($0.service ?? "-") \($0.stage.rawValue)" } == [
                "listOrders GET /api/orders orders transform", "createOrder POST /api/orders orders transform",
                "get.api.orders.id GET /api/orders/{id} orders transform",
                "orders_delete_ DELETE /api/orders/{id} - transform", "health GET /api/health - transform",
            ])
        #expect(table.probes(of: "orders").health == nil && table.probes(of: "orders").syncLag == nil)
        #expect(table.declarations["orders"]?.entities == [])
        #expect(table.monolithProbes.reverseSync == .none)

        // Never over an existing file without --force.
        #expect(throws: (any Error).self) {
            try self.parse(["--openapi", spec, "--monolith", "http://127.0.0.1:9001", "--out", out]).run()
        }
        #expect(try RouteTable.parse(try String(contentsOfFile: out, encoding: .utf8)).services.count == 1)
        try self.parse(["--openapi", spec, "--monolith", "http://127.0.0.1:9001", "--out", out, "--force"]).run()
        #expect(try RouteTable.parse(try String(contentsOfFile: out, encoding: .utf8)).services.isEmpty)
    }

    @Test func aJSONDocumentWithNoServersKeepsItsPaths() throws {
        let folder = try self.directory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec = folder.appendingPathComponent("openapi.json").path
        try #"{"openapi":"3.1.0","paths":{"/orders/":{"get":{"operationId":"orders.index"}}}}"#.write(
            toFile: spec, atomically: true, encoding: .utf8)
        let command = try self.parse(["--openapi", spec, "--monolith", "http://127.0.0.1:9001"])
        let table = try RouteTable.parse(try command.table())
        #expect(table.routes.map(\.path.description) == ["/orders/"])
        #expect(table.routes.first?.id == "orders.index")
    }

    @Test func whatATableCannotHoldIsNamedAndNothingIsWritten() throws {
        let folder = try self.directory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec = folder.appendingPathComponent("bad.yaml").path
        let out = folder.appendingPathComponent("routes.json").path
        try """
        openapi: 3.0.0
        paths:
          /files/{name}.json:
            get: {}
          /echo:
            trace: {}
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        let command = try self.parse(["--openapi", spec, "--monolith", "http://127.0.0.1:9001", "--out", out])
        do {
            _ = try command.table()
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("$.paths['/files/{name}.json']"), "\(error)")
            #expect(error.description.contains("$.paths['/echo'].trace: TRACE is not a method"), "\(error)")
        }
        #expect(throws: (any Error).self) { try command.run() }
        #expect(!FileManager.default.fileExists(atPath: out))

        for (text, fragment) in [
            ("openapi: [unclosed", "not valid YAML"), (#"{"paths":{}}"#, "not an OpenAPI document"),
            ("openapi: 3.0.0\npaths: {}\n", "no operations"), ("openapi: 3.0.0\n", "$.paths is missing"),
        ] {
            try text.write(toFile: spec, atomically: true, encoding: .utf8)
            #expect(throws: InitCommand.Failure.self) { _ = try command.table() }
            do { _ = try command.table() } catch { #expect(error.description.contains(fragment), "\(text): \(error)") }
        }
        for arguments in [
            ["--openapi", spec, "--monolith", "ftp://x"],
            ["--openapi", spec, "--monolith", "http://a", "--service", "x"],
        ] {
            #expect(throws: (any Error).self) { _ = try Strangler.parseAsRoot(["init"] + arguments) }
        }
    }
}
