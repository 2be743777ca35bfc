import ArgumentParser
import Foundation
import Gateway
import JSON
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

@testable import StranglerCommands

@Suite("strangler replay")
struct ReplayTests {
    /// A HAR as a browser's developer tools export it: absolute URLs of another host, HTTP/2 pseudo-headers, a
    /// base64 request body.
    static func browserHAR() -> String {
        let body = Data(#"{"id":31,"item":"from the browser","total":7}"#.utf8).base64EncodedString()
        return """
            {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "entries": [
              {"startedDateTime": "2026-12-01T10:00:00.000Z", "time": 12.5,
               "request": {"method": "GET", "url": "https://shop.example.com/orders/1", "httpVersion": "h2",
                           "headers": [{"name": ":authority", "value": "shop.example.com"},
                                       {"name": "accept", "value": "application/json"}]},
               "response": {"status": 200, "statusText": "", "headers": [], "content": {"size": 0, "mimeType": "x"}}},
              {"startedDateTime": "2026-12-01T10:00:01Z", "time": 3,
               "request": {"method": "POST", "url": "https://shop.example.com/orders", "headers": [
                             {"name": "content-type", "value": "application/json"},
                             {"name": "content-length", "value": "999"}],
                           "postData": {"mimeType": "application/json", "text": "\(body)", "encoding": "base64"}},
               "response": {"status": 201, "content": {"size": 0}}},
              {"startedDateTime": "2026-12-01T10:00:02Z", "time": 3,
               "request": {"method": "GET", "url": "/orders/404?x=1", "headers": []},
               "response": {"status": 200, "content": {"size": 0}}}
            ]}}
            """
    }

    @Test func aBrowsersHARIsReplayedWithItsPathsBodiesAndASummary() async throws {
        let app = OrdersApp(name: "target", paging: .linkHeader)
        let (service, port) = app.service(logger: Logger(label: "replay"))
        let group = ServiceGroup(services: [service], logger: Logger(label: "replay"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("browser.har").path
        try Self.browserHAR().write(toFile: file, atomically: true, encoding: .utf8)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let target = "http://127.0.0.1:\(await port.value)"
            for rate in [nil, "40"] as [String?] {
                let command = try #require(
                    try Strangler.parseAsRoot(
                        ["replay", file, "--target", target] + (rate.map { ["--rate", $0] } ?? []))
                        as? ReplayCommand)
                let summary = await command.replay(try HAR.read(file))
                #expect(summary.errors == 0)
                #expect(summary.statuses.map { "\($0.status)×\($0.count)" } == ["200×1", "201×1", "404×1"])
                #expect(summary.asRecorded == 2, "the last was recorded as 200, the target has no order 404")
                let text = summary.text(file: "browser.har", target: target)
                #expect(text.contains("status: 200 ×1, 201 ×1, 404 ×1 (2xx 2, 4xx 1); 2 of 3 as recorded"), "\(text)")
                #expect(text.contains("latency: p50 ") && text.contains("errors: 0"))
                #expect(summary.json["latencyMs"]?["p99"]?.numberValue != nil)
            }
            #expect(app.orders.withLockedValue { $0[31]?.item } == "from the browser", "the base64 body arrived whole")
            #expect(app.seenPaths.withLockedValue { $0.filter { $0 == "/orders/404" }.count } == 2)

            // Nobody there: every request is an error, and the exit status says so.
            let dead = try #require(
                try Strangler.parseAsRoot(["replay", file, "--target", "http://127.0.0.1:1"]) as? ReplayCommand)
            let failed = await dead.replay(try HAR.read(file))
            #expect(failed.errors == 3 && failed.text(file: "f", target: "t").contains("connection refused"))
            await group.triggerGracefulShutdown()
        }
    }

    @Test func whatIsNotAHARIsRefusedWithItsPlace() throws {
        for (text, fragment) in [
            ("[]", "$.log.entries: missing"), (#"{"log":{"entries":[{"request":{}}]}}"#, "$.log.entries[0].request"),
            (#"{"log":{"entries":[{"request":{"method":"get x","url":"/"}}]}}"#, "is not a method"),
            (
                #"{"log":{"entries":[{"request":{"method":"GET","url":"/","headers":[{"name":1}]}}]}}"#,
                "$.log.entries[0].request.headers[0]"
            ),
            ("{", "is not JSON"),
        ] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).har")
            try text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            #expect(throws: HAR.Failure.self) { _ = try HAR.read(file.path) }
            do { _ = try HAR.read(file.path) } catch {
                #expect(error.description.contains(fragment), "\(text): \(error)")
            }
        }
        for arguments in [["f", "--target", "ftp://x"], ["f", "--target", "http://a", "--rate", "0"]] {
            #expect(throws: (any Error).self) { _ = try Strangler.parseAsRoot(["replay"] + arguments) }
        }
    }

    @Test func aWrittenHARReadsBackTheSame() throws {
        let entry = HAR.Entry(
            started: Date(timeIntervalSince1970: 1_764_583_200.25), time: 4.5, method: "POST",
            url: "http://127.0.0.1:9/orders?x=1",
            request: .init(
                headers: [("Content-Type", "application/json")], body: Array(#"{"a":1}"#.utf8),
                mimeType: "application/json"),
            status: 201, statusText: "Created",
            response: .init(
                headers: [("Content-Type", "application/octet-stream")], body: [0, 255, 1],
                mimeType: "application/octet-stream"))
        let back = try HAR.entries(try JSONParser.parse(HAR.document([entry]).jsonText))
        #expect(back == [entry])
        #expect(
            HAR.document([entry])["log"]?["entries"]?.arrayValue?.first?["request"]?["queryString"]?.arrayValue?.count
                == 1)
    }
}
