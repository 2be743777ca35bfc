import ArgumentParser
import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import Proxy
import ProxyTestSupport
import RouteTable
import Testing

@testable import StranglerCommands

/// `strangler clients add|list` and `strangler access`, on a table of our own: through a running proxy's admin API,
/// and on routes.json when none runs.
@Suite("CLI: the gateway's clients and access map")
struct GatewayCommandTests {
    static func table(monolith: Int, service: Int) -> String {
        """
        { "monolith": "http://127.0.0.1:\(monolith)",
          "services": { "stock": "http://127.0.0.1:\(service)" },
          "routes": [
            { "id": "things.get", "method": "GET", "path": "/things/{id}", "stage": "transform" },
            { "id": "items.list", "method": "GET", "path": "/items", "service": "stock", "stage": "eliminate" } ] }
        """
    }

    @Test func aKeyAddedThroughTheProxyIsPrintedOnceStoredHashedAndIdentifiesItsClient() async throws {
        try await ProxyHarness.run(routes: { Self.table(monolith: $0, service: $1) }) { harness in
            let place = [
                "--admin", "http://127.0.0.1:\(harness.adminPort)", "--token-file", harness.tokenFile, "--data",
                harness.directory.appendingPathComponent("data").path,
            ]
            let key = ClientsAddCommand.newKey()
            let added = await (try ClientsAddCommand.parse(["web"] + place + ["--routes", harness.routesPath]))
                .outcome(key: key)
            #expect(added.status == 0, "\(added.error)")
            #expect(added.output == key + "\n")
            #expect(key.hasPrefix("stk_") && key.count == 47)
            let file = try String(contentsOfFile: harness.routesPath, encoding: .utf8)
            #expect(!file.contains(key), "the key itself is never written")
            #expect(file.contains(ClientsAddCommand.digest(of: key)))
            #expect(harness.proxy.store.snapshot.table.gateway.clients.clients["web"]?.count == 1)

            let answer = try await RawHTTP.get("/things/1", port: harness.proxyPort, headers: ["X-Api-Key: \(key)"])
            #expect(answer.status == 200)
            #expect(harness.monolith.seenRequests.withLockedValue { $0 }.last?.headers["strangler-client"] == "web")
            _ = try await RawHTTP.get("/items", port: harness.proxyPort)

            let listed = await (try ClientsListCommand.parse(["--output", "json"] + place)).outcome()
            #expect(jsonValue(listed.output)["clients"]?.at(0)?["name"]?.stringValue == "web")

            let access = await (try AccessCommand.parse(["--output", "json"] + place)).outcome()
            #expect(access.status == 0, "\(access.error)")
            let observed = jsonValue(access.output)["observed"]?.arrayValue ?? []
            let pairs = observed.compactMap { entry -> String? in
                guard let client = entry["client"]?.stringValue, let route = entry["route"]?.stringValue else {
                    return nil
                }
                return "\(client) \(route) \(Int(entry["count"]?.numberValue ?? 0))"
            }
            #expect(Set(pairs) == ["web things.get 1", "anonymous items.list 1"])
            let text = await (try AccessCommand.parse(place)).outcome()
            #expect(text.output.contains("no route declares allow or deny"))
            #expect(text.output.contains("web"))
        }
    }

    @Test func accessFlagsTheCallsTheMapWouldRefuseAndExitsOne() async throws {
        let web = ClientsAddCommand.newKey()
        try await ProxyHarness.run(routes: { monolith, service in
            Self.table(monolith: monolith, service: service).replacingOccurrences(
                of: #""path": "/things/{id}", "stage": "transform" }"#,
                with: #""path": "/things/{id}", "stage": "transform", "allow": ["web"], "enforce": false }"#
            ).replacingOccurrences(
                of: #""routes": ["#,
                with: #""clients": { "web": { "keys": ["\#(ClientsAddCommand.digest(of: web))"] } }, "routes": ["#)
        }) { harness in
            let place = ["--admin", "http://127.0.0.1:\(harness.adminPort)", "--token-file", harness.tokenFile]
            #expect(try await RawHTTP.get("/things/1", port: harness.proxyPort).status == 200)
            #expect(
                try await RawHTTP.get("/things/2", port: harness.proxyPort, headers: ["X-Api-Key: \(web)"]).status
                    == 200)
            let text = await (try AccessCommand.parse(place)).outcome()
            #expect(text.status == 1)
            #expect(text.output.contains("WOULD REFUSE (unauthenticated)"), "\(text.output)")
            #expect(text.output.contains("1 observed pair the map refuses"))
        }
    }

    @Test func withoutAProxyTheKeyGoesIntoRoutesJSONAndABadNameIsRefused() async throws {
        let copy = try FileCopy(routes: Self.table(monolith: 1, service: 2))
        defer { copy.remove() }
        let key = ClientsAddCommand.newKey()
        let added = await (try ClientsAddCommand.parse(["service:stock"] + copy.cli)).outcome(key: key)
        #expect(added.status == 0, "\(added.error)")
        let table = try RouteTable.parse(String(contentsOfFile: copy.routesPath, encoding: .utf8))
        #expect(
            table.gateway.clients.byDigest[String(ClientsAddCommand.digest(of: key).dropFirst(7))] == "service:stock")
        #expect(copy.audit.last?["reason"]?.stringValue == "new API key for client service:stock")

        let undeclared = await (try ClientsAddCommand.parse(["service:billing"] + copy.cli)).outcome()
        #expect(undeclared.status == 2)
        #expect(undeclared.error.contains("service \"billing\" is not declared"), "\(undeclared.error)")
        #expect(throws: (any Error).self) { try ClientsAddCommand.parse(["has space"] + copy.cli) }
    }
}
