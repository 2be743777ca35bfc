import AdminAPI
import ArgumentParser
import Diff
import DiffStore
import Foundation
import Gateway
import JSON
import NIOConcurrencyHelpers
import ProxyTestSupport
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports
@testable import StranglerCommands

/// `coexistRoutes` with table-wide keys (`"redact"`, `"retention"`) in front.
func privacyRoutes(monolith: Int, service: Int, table: String, shadow: String = "{}") -> String {
    coexistRoutes(monolith: monolith, service: service, shadow: shadow).replacingOccurrences(
        of: "{ \"monolith\":", with: "{ \(table), \"monolith\":")
}

extension ProxyHarness {
    /// The diff store's file and its write-ahead log, as they are on disk now.
    func storeBytes() -> Data {
        var data = Data()
        for suffix in ["", "-wal"] {
            data +=
                (try? Data(contentsOf: self.directory.appendingPathComponent("data/diffs.sqlite\(suffix)"))) ?? Data()
        }
        return data
    }

    func samples(_ route: String = "contacts.get") async throws -> [[String: Any]] {
        json(try await self.admin("GET", "/admin/diffs/samples?route=\(route)").body)["samples"] as? [[String: Any]]
            ?? []
    }
}

@Suite("Privacy: what samples keep of personal data")
struct PrivacyTests {
    static let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZGEtcHJpdmF0ZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"

    /// A record full of personal data, with the e-mail that differs between the two sides.
    static func record(email: String, title: String) -> String {
        #"{"id":"p1","email":"\#(email)","title":"\#(title)","notes":"call +44 20 7946 0958","#
            + #""payment":{"pan":"4111111111111111"},"bank":"DE89370400440532013000","session":"\#(Self.jwt)","#
            + #""createdAt":"2026-11-27T09:35:31Z"}"#
    }

    static let secrets = [
        "ada.private@example.com", "grace.private@example.com", "7946 0958", "4111111111111111",
        "DE89370400440532013000", "eyJzdWIiOiJhZGEtcHJpdmF0ZSJ9",
        "TOKVAL-123456", "KEY-SECRET-9", "zzBEARERzz1234",
    ]

    @Test func byDefaultNoPersonalDataOrSecretReachesTheStoreFile() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/p1"] = Self.record(email: "ada.private@example.com", title: "CEO")
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/p1"] = Self.record(email: "grace.private@example.com", title: "CTO")
            }
            _ = try await RawHTTP.get(
                "/contacts/p1?access_token=TOKVAL-123456&limit=5", port: harness.proxyPort,
                headers: [
                    "X-Api-Key: KEY-SECRET-9", "Authorization: Bearer zzBEARERzz1234", "Accept: application/json",
                ])
            let summary = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 1)
            #expect(summary["mismatched"] as? Int == 1)
            let signature = (summary["signatures"] as? [[String: Any]])?.first?["signature"] as? String
            #expect(signature == "/email changed, /title changed", "the comparison runs on the real values")
            let bytes = harness.storeBytes()
            for secret in Self.secrets {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) is in the store's bytes")
            }
            #expect(bytes.range(of: Data("CTO".utf8)) != nil, "the sample itself was stored")

            let sample = try #require(try await harness.samples().first)
            let monolith = jsonValue((sample["monolith"] as? [String: Any])?["body"] as? String ?? "")
            let service = jsonValue((sample["service"] as? [String: Any])?["body"] as? String ?? "")
            let left = try #require(monolith["email"]?.stringValue)
            let right = try #require(service["email"]?.stringValue)
            #expect(
                left.hasPrefix("[redacted:") && right.hasPrefix("[redacted:") && left != right,
                "two sides, two tokens: \(left) \(right)")
            #expect(monolith["bank"] == service["bank"], "the same value, the same token on both sides")
            #expect(
                monolith["title"] == .string("CEO") && monolith["createdAt"] == .string("2026-11-27T09:35:31Z"),
                "the rest is kept")
            let difference =
                ((sample["diff"] as? [String: Any])?["body"] as? [String: Any])?["differences"] as? [[String: Any]]
                ?? []
            let email = try #require(difference.first { $0["pointer"] as? String == "/email" })
            #expect(
                email["monolith"] as? String == left && email["service"] as? String == right,
                "the diff's values are the bodies' tokens")
            let request = try #require(sample["request"] as? [String: Any])
            #expect(
                (request["query"] as? String)?.hasPrefix("access_token=[redacted:") == true, "\(request["query"] ?? "")"
            )
            #expect((request["query"] as? String)?.hasSuffix("&limit=5") == true)
            let headers = (request["headers"] as? [[String]] ?? []).map { ($0.first ?? "", $0.last ?? "") }
            #expect(headers.contains { $0.0 == "X-Api-Key" && $0.1.hasPrefix("[redacted:") }, "\(headers)")
            #expect(headers.contains { $0 == ("Accept", "application/json") }, "allowed headers are kept: \(headers)")
        }
    }

    /// A dry-run write: the request body, and answers that echo the request's headers (a JSON object whose members are
    /// named by the headers), are redacted too.
    @Test func aWritesBodyAndAnswersEchoingSecretsAreRedacted() async throws {
        try await ProxyHarness.run(routes: {
            coexistRoutes(monolith: $0, service: $1, writes: #"{ "writes": "dry-run" }"#)
        }) { harness in
            let body =
                #"{"firstName":"Ada","password":"hunter2-SECRET","contactEmail":"ada.write@example.com","#
                + #""iban":"GB82WEST12345698765432"}"#
            _ = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nX-Api-Key: KEY-SECRET-9\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n"
                    + "Connection: close\r\n\r\n\(body)",
                port: harness.proxyPort)
            _ = try await harness.waitForDiffs("contacts.create", "mismatched", atLeast: 1)
            let bytes = harness.storeBytes()
            for secret in ["hunter2-SECRET", "ada.write@example.com", "GB82WEST12345698765432", "KEY-SECRET-9"] {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) is in the store's bytes")
            }
            let sample = try #require(try await harness.samples("contacts.create").first)
            let stored = jsonValue((sample["request"] as? [String: Any])?["body"] as? String ?? "")
            #expect(stored["firstName"] == .string("Ada"), "what is not personal is kept")
            #expect(stored["password"]?.stringValue?.hasPrefix("[redacted:") == true)
        }
    }

    @Test func withTheDefaultsOffValuesAreStoredAndTheReportSaysSo() async throws {
        let table = #""redact": { "defaults": false }"#
        try await ProxyHarness.run(routes: { privacyRoutes(monolith: $0, service: $1, table: table) }) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/p1"] = Self.record(email: "ada.private@example.com", title: "CEO")
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/p1"] = Self.record(email: "grace.private@example.com", title: "CTO")
            }
            _ = try await RawHTTP.get(
                "/contacts/p1?access_token=TOKVAL-123456", port: harness.proxyPort, headers: ["X-Api-Key: KEY-SECRET-9"]
            )
            _ = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 1)
            let bytes = harness.storeBytes()
            for value in [
                "ada.private@example.com", "grace.private@example.com", "4111111111111111", "TOKVAL-123456",
                "KEY-SECRET-9",
            ] {
                #expect(bytes.range(of: Data(value.utf8)) != nil, "\(value) is stored as it is")
            }
            let report = json(try await harness.admin("GET", "/admin/report?format=json").body)
            #expect((report["privacy"] as? [String: Any])?["redactionDefaults"] as? Bool == false)
            let markdown = try await harness.admin("GET", "/admin/report?format=markdown").body
            #expect(markdown.contains("default redaction is OFF"), "\(markdown.prefix(600))")
            let html = try await harness.admin("GET", "/admin/report?format=html").body
            #expect(html.contains("default redaction is OFF"))
        }
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let report = json(try await harness.admin("GET", "/admin/report?format=json").body)
            #expect((report["privacy"] as? [String: Any])?["redactionDefaults"] as? Bool == true)
        }
    }

    @Test func routeRulesAddToTheTableRules() async throws {
        let table = #""redact": { "fields": ["title"] }"#
        try await ProxyHarness.run(routes: {
            privacyRoutes(monolith: $0, service: $1, table: table, shadow: #"{ "redact": ["id", "/createdAt"] }"#)
        }) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/p1"] = #"{"id":"ID-MONO-7","title":"TITLE-MONO","createdAt":"CREATED-MONO","n":1}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/p1"] = #"{"id":"ID-MONO-7","title":"TITLE-MONO","createdAt":"CREATED-MONO","n":2}"#
            }
            _ = try await RawHTTP.get("/contacts/p1", port: harness.proxyPort)
            _ = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 1)
            let bytes = harness.storeBytes()
            for value in ["ID-MONO-7", "TITLE-MONO", "CREATED-MONO"] {
                #expect(bytes.range(of: Data(value.utf8)) == nil, "\(value)")
            }
        }
    }

    @Test func samplesPastTheRetentionAreDeleted() async throws {
        let table = #""retention": "30d""#
        func sample(_ marker: String, daysAgo: Double) -> DiffSample {
            let answer = StoredResponse(status: 200, headers: [], body: Array(#"{"marker":"\#(marker)"}"#.utf8))
            return DiffSample(
                route: "contacts.get", signature: "s", recordedAt: Date().addingTimeInterval(-daysAgo * 86400),
                requestID: "r", servedBy: "monolith",
                method: "GET", path: "/contacts/old", query: nil, requestHeaders: [], requestBody: [], monolith: answer,
                service: answer, diff: "{}")
        }
        try await ProxyHarness.run(
            routes: { privacyRoutes(monolith: $0, service: $1, table: table) },
            configure: { configuration in
                // Samples written before the proxy starts: one past the retention, one within it.
                let store = try! DiffStore.open(path: configuration.dataDirectory + "/diffs.sqlite")
                var batch = DiffBatch()
                batch.samples = [sample("MARKER-EXPIRED-40D", daysAgo: 40), sample("MARKER-KEPT-2D", daysAgo: 2)]
                try! store.apply(batch)
            }
        ) { harness in
            let store = harness.proxy.recorder.store
            // Deleted, then compacted (VACUUM, TRUNCATE checkpoint): gone from the file and its WAL.
            let expired = try await eventually {
                try store.sampleCount(route: "contacts.get", signature: "s") == 1
                    && harness.storeBytes().range(of: Data("MARKER-EXPIRED-40D".utf8)) == nil
            }
            #expect(expired)
            #expect(harness.storeBytes().range(of: Data("MARKER-KEPT-2D".utf8)) != nil)
        }
    }

    @Test func purgeBySubjectErasesSamplesFixturesAndHARFiles() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            for (id, email) in [
                ("a1", "ada.purge@example.com"), ("a2", "ada.purge@example.com"), ("g1", "grace.keep@example.com"),
            ] {
                harness.monolith.documents.withLockedValue {
                    $0["/contacts/\(id)"] = #"{"id":"\#(id)","email":"\#(email)","title":"CEO"}"#
                }
                harness.service.documents.withLockedValue {
                    $0["/contacts/\(id)"] = #"{"id":"\#(id)","email":"\#(email)","title":"CTO-\#(id)"}"#
                }
            }
            // Two signatures (a1 and g1 differ in the title, a2 also in a member of its own): every sample is kept.
            harness.service.documents.withLockedValue {
                $0["/contacts/a2"] = #"{"id":"a2","email":"ada.purge@example.com","title":"CTO","extra":1}"#
            }
            for id in ["a1", "a2", "g1"] { _ = try await RawHTTP.get("/contacts/\(id)", port: harness.proxyPort) }
            _ = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 3)
            #expect(try await harness.samples().count == 3)

            let fixtures = harness.directory.appendingPathComponent("fixtures")
            let export = try await FixturesExportCommand.parse([
                "--out", fixtures.path, "--data", harness.dataDirectory,
            ])
            .outcome()
            #expect(export.files.count == 3, "\(export.error)")
            // HAR files from elsewhere: one with the value itself, one without.
            let hars = fixtures.appendingPathComponent("har")
            try FileManager.default.createDirectory(at: hars, withIntermediateDirectories: true)
            try Data(
                #"{"log":{"entries":[{"response":{"content":{"text":"{\"email\":\"ada.purge@example.com\"}"}}}]}}"#.utf8
            ).write(to: hars.appendingPathComponent("a.har"))
            try Data(#"{"log":{"entries":[]}}"#.utf8).write(to: hars.appendingPathComponent("b.har"))

            let hash = RedactionKeyProbe.hash("ada.purge@example.com", store: harness.proxy.recorder.store)
            #expect(harness.storeBytes().range(of: Data(hash.utf8)) != nil, "the token is stored before the purge")
            let command = try PurgeCommand.parse([
                "--subject", "ada.purge@example.com", "--fixtures", fixtures.path, "--data", harness.dataDirectory,
                "--actor", "dpo",
            ])
            let erasure = try command.erase(
                "ada.purge@example.com", store: try DiffStore.open(path: harness.dataDirectory + "/diffs.sqlite"))
            #expect(erasure == PurgeCommand.Erasure(hash: hash, samples: 2, fixtures: 2, har: 1))
            let left = try await harness.samples()
            #expect(left.count == 1)
            #expect((left.first?["request"] as? [String: Any])?["path"] as? String == "/contacts/g1")
            let files = try FileManager.default.subpathsOfDirectory(atPath: fixtures.path).filter {
                $0.hasSuffix(".json") || $0.hasSuffix(".har")
            }
            #expect(files.count == 2 && files.contains("har/b.har"), "\(files)")
            #expect(
                harness.storeBytes().range(of: Data(hash.utf8)) == nil,
                "the token's bytes are gone from the file and its WAL")
            let audit = try String(contentsOfFile: harness.auditPath, encoding: .utf8)
            let entry = jsonValue(String(audit.split(separator: "\n").last ?? ""))
            #expect(
                entry["action"] == .string("purge") && entry["actor"] == .string("dpo")
                    && entry["subjectHash"] == .string(hash))
            #expect(
                entry["deleted"]?["samples"] == .number(2) && entry["deleted"]?["fixtures"] == .number(2)
                    && entry["deleted"]?["har"] == .number(1))
            #expect(!audit.contains("ada.purge"), "the audit log never holds the value")
        }
    }

    @Test func purgeBySubjectFindsValuesStoredWithTheDefaultsOff() async throws {
        try await ProxyHarness.run(routes: {
            privacyRoutes(monolith: $0, service: $1, table: #""redact": { "defaults": false }"#)
        }) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/p1"] = #"{"email":"ada.raw@example.com","title":"CEO"}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/p1"] = #"{"email":"ada.raw@example.com","title":"CTO"}"#
            }
            _ = try await RawHTTP.get("/contacts/p1", port: harness.proxyPort)
            _ = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 1)
            #expect(harness.storeBytes().range(of: Data("ada.raw@example.com".utf8)) != nil)
            let command = try PurgeCommand.parse(["--subject", "ada.raw@example.com", "--data", harness.dataDirectory])
            try await command.run()
            #expect(try await harness.samples().isEmpty)
            #expect(
                harness.storeBytes().range(of: Data("ada.raw@example.com".utf8)) == nil,
                "gone from the file and its WAL")
        }
    }

    @Test func purgeReadsTheSubjectFromStandardInputWithDash() {
        #expect(PurgeCommand.firstLine(Data("ada@example.com\n".utf8)) == "ada@example.com")
        #expect(PurgeCommand.firstLine(Data("ada@example.com\r\nrest\n".utf8)) == "ada@example.com")
        #expect(PurgeCommand.firstLine(Data()) == "")
    }

    @Test func purgeRefusesSubjectWithOtherFilters() async throws {
        #expect(throws: (any Error).self) { try PurgeCommand.parse(["--subject", "x", "--route", "a"]) }
        #expect(throws: (any Error).self) { try PurgeCommand.parse(["--fixtures", "dir"]) }
        #expect(throws: (any Error).self) { try PurgeCommand.parse(["--subject", ""]) }
        // A folder that is not there stops the erasure before anything is deleted (checked when it runs, so that a
        // command line is judged by its words alone when parsed).
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-purge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: data) }
        _ = try DiffStore.open(path: data.appendingPathComponent("diffs.sqlite").path)
        let missing = try PurgeCommand.parse([
            "--subject", "x", "--fixtures", "/nonexistent-\(UUID().uuidString)", "--data", data.path,
        ])
        await #expect(throws: ExitCode(2)) { try await missing.run() }
        #expect(
            !FileManager.default.fileExists(atPath: data.appendingPathComponent("audit.jsonl").path),
            "nothing erased, nothing audited")
    }

    @Test func storeFilesAreForTheOwnerOnly() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            harness.monolith.documents.withLockedValue { $0["/contacts/m1"] = #"{"title":"CEO"}"# }
            harness.service.documents.withLockedValue { $0["/contacts/m1"] = #"{"title":"CTO"}"# }
            _ = try await RawHTTP.get("/contacts/m1", port: harness.proxyPort)
            _ = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 1)
            func mode(_ name: String) throws -> Int {
                let path = name.isEmpty ? harness.dataDirectory : harness.dataDirectory + "/" + name
                return try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            }
            #expect(try mode("") == 0o700)
            for file in ["diffs.sqlite", "diffs.sqlite-wal", "diffs.sqlite-shm", "redaction.key"] {
                #expect(try mode(file) == 0o600, "\(file)")
            }
        }
    }
}

/// The keyed hash a store gives a value (as `strangler purge --subject` computes it).
enum RedactionKeyProbe {
    static func hash(_ value: String, store: DiffStore) -> String {
        PurgeCommand.hash(value, store: store)
    }
}
