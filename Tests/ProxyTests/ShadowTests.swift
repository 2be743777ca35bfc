import AdminAPI
import Foundation
import Gateway
import HTTP1
import NIOConcurrencyHelpers
import NIOCore
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import Proxy
@testable import Reports

/// A table whose routes are in coexist, each with the shadow policy given.

@Suite("Proxy: coexist shadows and compares")
struct ShadowTests {
    @Test func comparesEachShadowedRequestAndGroupsMismatchesBySignature() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            for id in 1...3 {
                harness.monolith.documents.withLockedValue {
                    $0["/contacts/c\(id)"] = #"{"id":"c\#(id)","title":"CEO","n":1.0}"#
                }
                harness.service.documents.withLockedValue {
                    $0["/contacts/c\(id)"] = #"{"n":1,"id":"c\#(id)","title":"CEO"}"#
                }
            }
            harness.monolith.documents.withLockedValue {
                $0["/contacts/c4"] = #"{"id":"c4","title":"CEO","tags":["a"]}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/c4"] = #"{"id":"c4","title":"CTO","tags":["a"]}"#
            }
            harness.monolith.documents.withLockedValue {
                $0["/contacts/c5"] = #"{"id":"c5","title":"Eng","tags":["b"]}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/c5"] = #"{"id":"c5","title":"Lead","tags":["b"]}"#
            }
            for id in 1...5 {
                let answer = try await RawHTTP.get("/contacts/c\(id)", port: harness.proxyPort)
                #expect(answer.status == 200)
                #expect(json(answer.body)["id"] as? String == "c\(id)", "the monolith answers in coexist")
            }
            let summary = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 5)
            #expect(summary["compared"] as? Int == 5)
            #expect(summary["matched"] as? Int == 3, "key order and 1 vs 1.0 do not count as differences")
            #expect(summary["mismatched"] as? Int == 2)
            let signatures = summary["signatures"] as? [[String: Any]] ?? []
            #expect(signatures.count == 1, "two mismatches of the same field share one signature")
            #expect(signatures.first?["signature"] as? String == "/title changed")
            #expect(signatures.first?["count"] as? Int == 2)
            #expect(signatures.first?["samples"] as? Int == 2)
            let pointers = summary["pointers"] as? [[String: Any]] ?? []
            #expect(pointers.first?["pointer"] as? String == "/title")

            let samples =
                json(try await harness.admin("GET", "/admin/diffs/samples?route=contacts.get").body)["samples"]
                as? [[String: Any]] ?? []
            #expect(samples.count == 2)
            let sample = samples.first { ($0["request"] as? [String: Any])?["path"] as? String == "/contacts/c4" }
            #expect(sample?["servedBy"] as? String == "monolith")
            let differences =
                ((sample?["diff"] as? [String: Any])?["body"] as? [String: Any])?["differences"] as? [[String: Any]]
            #expect(differences?.first?["monolith"] as? String == "CEO")
            #expect(differences?.first?["service"] as? String == "CTO")
        }
    }

    @Test func answersAtDifferentVersionsAreStaleNotMismatched() async throws {
        // c1: the service is one change behind (sync lag); c2: same version, a real difference; c3: a list with one
        // item behind; c4: versions differ but so does the status (not stale: a real difference).
        try await ProxyHarness.run(routes: {
            coexistRoutes(
                monolith: $0, service: $1,
                extra:
                    #", { "id": "contacts.list", "method": "GET", "path": "/contacts", "service": "contacts", "#
                    + #""stage": "coexist" }"#
                    + #", { "id": "plain.get", "method": "GET", "path": "/plain/{id}", "service": "contacts", "#
                    + #""stage": "coexist", "shadow": { "version": [] } }"#
            )
        }) { harness in
            harness.monolith.documents.withLockedValue { documents in
                documents["/contacts/c1"] = #"{"id":"c1","title":"CTO","version":3}"#
                documents["/contacts/c2"] = #"{"id":"c2","title":"CTO","version":3}"#
                documents["/contacts"] =
                    #"{"items":[{"id":"c1","title":"CTO","version":3},{"id":"c2","version":1}],"next":null}"#
                documents["/plain/c1"] = #"{"id":"c1","title":"CTO","version":3}"#
            }
            harness.service.documents.withLockedValue { documents in
                documents["/contacts/c1"] = #"{"id":"c1","title":"CEO","version":2}"#
                documents["/contacts/c2"] = #"{"id":"c2","title":"CEO","version":3}"#
                documents["/contacts"] =
                    #"{"items":[{"id":"c1","title":"CEO","version":2},{"id":"c2","version":1}],"next":null}"#
                documents["/plain/c1"] = #"{"id":"c1","title":"CEO","version":2}"#
            }
            for path in ["/contacts/c1", "/contacts/c2", "/contacts", "/plain/c1"] {
                #expect(try await RawHTTP.get(path, port: harness.proxyPort).status == 200)
            }
            let single = try await harness.waitForDiffs("contacts.get", "mismatched", atLeast: 1)
            _ = try await harness.waitForDiffs("contacts.get", "stale", atLeast: 1)
            let get = try await harness.diffs("contacts.get")
            #expect(
                get["stale"] as? Int == 1 && get["compared"] as? Int == 1 && get["mismatched"] as? Int == 1, "\(single)"
            )
            #expect((get["signatures"] as? [[String: Any]])?.first?["signature"] as? String == "/title changed")
            let list = try await harness.waitForDiffs("contacts.list", "stale", atLeast: 1)
            #expect(list["compared"] as? Int == 0 && list["mismatched"] as? Int == 0)
            // With "version": [] a version difference is an ordinary mismatch.
            let plain = try await harness.waitForDiffs("plain.get", "mismatched", atLeast: 1)
            #expect(plain["stale"] as? Int == 0)
        }
    }

    @Test func theClientNeverWaitsForASlowShadow() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            harness.monolith.documents.withLockedValue { $0["/slow/1"] = #"{"id":"1"}"# }
            harness.service.documents.withLockedValue { $0["/slow/1"] = #"{"id":"1"}"# }
            // The service's /slow answers only when its gate opens, which this test never does before the end:
            // the client must get the monolith's answer while the shadow is provably still waiting.
            harness.monolith.gate.open()
            let answer = try await RawHTTP.get("/slow/1", port: harness.proxyPort)
            #expect(answer.status == 200)
            #expect(json(answer.body)["id"] as? String == "1")
            #expect(await eventually { harness.service.gate.arrived == 1 }, "the shadow reached the service")
            let summary = try await harness.waitForDiffs("slow.get", "timeouts", atLeast: 1)
            #expect(summary["timeouts"] as? Int == 1, "the shadow's deadline (300ms) ran out and was counted")
            #expect(summary["compared"] as? Int == 0)
        }
    }

    /// The shadow's answer can come before the answering side's: it waits in the tap (in a buffer of its own, not the
    /// connection's) and is compared when the client's answer is in.
    @Test func aShadowAnswerThatComesFirstWaitsForTheAnsweringSide() async throws {
        // A generous shadow deadline: on a loaded machine the service's answer can take a while to come back.
        // No noise repeats: a repeat is a third request to the monolith's gated path, and the count below is exact.
        let route =
            #", { "id": "first.get", "method": "GET", "path": "/slowfirst/{id}", "service": "contacts", "stage": "#
            + #""coexist", "shadow": { "timeout": "20s" } }"#
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1, extra: route) }, configure: { $0.noiseShare = 0 }
        ) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/slowfirst/2"] = #"{"id":"2","title":"CEO"}"#
                $0["/slowfirst/3"] = #"{"id":"3","title":"CEO"}"#
            }
            harness.service.documents.withLockedValue {
                $0["/slowfirst/2"] = #"{"id":"2","title":"CEO"}"#
                $0["/slowfirst/3"] = #"{"id":"3","title":"CTO"}"#
            }
            // The service answers at once; the monolith, which answers the client, only once both shadows are in.
            harness.service.gate.open()
            async let first = RawHTTP.get("/slowfirst/2", port: harness.proxyPort)
            async let second = RawHTTP.get("/slowfirst/3", port: harness.proxyPort)
            #expect(
                await eventually {
                    harness.service.seenPaths.withLockedValue { Set($0) }.isSuperset(of: [
                        "/slowfirst/2", "/slowfirst/3",
                    ])
                })
            #expect(await eventually { harness.monolith.gate.arrived == 2 })
            harness.monolith.gate.open()
            #expect(try await first.status == 200)
            #expect(try await second.status == 200)
            let summary = try await harness.waitForDiffs("first.get", "compared", atLeast: 2)
            #expect(summary["matched"] as? Int == 1 && summary["mismatched"] as? Int == 1, "\(summary)")
            #expect(summary["timeouts"] as? Int == 0 && summary["shadowErrors"] as? Int == 0, "\(summary)")
            let samples =
                json(try await harness.admin("GET", "/admin/diffs/samples?route=first.get").body)["samples"]
                as? [[String: Any]] ?? []
            let differences =
                ((samples.first?["diff"] as? [String: Any])?["body"] as? [String: Any])?["differences"]
                as? [[String: Any]]
            #expect(
                differences?.first?["service"] as? String == "CTO",
                "the kept answer is the service's, whole: \(samples)")
        }
    }

    @Test func shadowsBeyondTheCapAreDroppedAndCountedWhileClientsAreServed() async throws {
        let held =
            #", { "id": "held.get", "method": "GET", "path": "/slow/held/{id}", "service": "contacts", "stage": "#
            + #""coexist", "shadow": { "timeout": "60s" } }"#
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1, extra: held) }, configure: { $0.maxShadowsInFlight = 2 }
        ) { harness in
            harness.monolith.gate.open()
            for id in 1...10 {
                harness.monolith.documents.withLockedValue { $0["/slow/held/\(id)"] = #"{"id":"\#(id)"}"# }
                harness.service.documents.withLockedValue { $0["/slow/held/\(id)"] = #"{"id":"\#(id)"}"# }
            }
            // The service holds every shadow until its gate opens: two fill the cap, the other eight are dropped.
            for id in 1...10 {
                let answer = try await RawHTTP.get("/slow/held/\(id)", port: harness.proxyPort)
                #expect(answer.status == 200, "request \(id) is answered whatever happens to shadows")
            }
            #expect(await eventually { harness.service.gate.arrived == 2 })
            #expect(harness.proxy.recorder.shadowsInFlight == 2)
            var summary = try await harness.diffs("held.get")
            #expect(summary["dropped"] as? Int == 8)
            harness.service.gate.open()
            summary = try await harness.waitForDiffs("held.get", "compared", atLeast: 2)
            #expect(summary["compared"] as? Int == 2)
            #expect(summary["matched"] as? Int == 2)
            #expect(harness.proxy.recorder.shadowsInFlight == 0)
        }
    }

    @Test func aFailingShadowIsCountedAndNeverReachesTheClient() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let answer = try await RawHTTP.get("/dead", port: harness.proxyPort)
            #expect(answer.status == 200)
            #expect(json(answer.body)["upstream"] as? String == "monolith")
            let summary = try await harness.waitForDiffs("dead.get", "shadowErrors", atLeast: 1)
            #expect(summary["shadowErrors"] as? Int == 1)
        }
    }

    @Test func writesAreNotShadowedUnlessTheRouteAsksForADryRun() async throws {
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1) }) { harness in
            let created = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nContent-Length: "
                    + "11\r\nConnection: close\r\n\r\n{\"a\":\"bc\"}\n",
                port: harness.proxyPort)
            #expect(json(RawHTTP.parse(created.text).first?.body ?? "")["upstream"] as? String == "monolith")
            // A GET afterwards is shadowed: once it is compared, the POST would have been too.
            harness.monolith.documents.withLockedValue { $0["/contacts/x"] = "{}" }
            harness.service.documents.withLockedValue { $0["/contacts/x"] = "{}" }
            _ = try await RawHTTP.get("/contacts/x", port: harness.proxyPort)
            _ = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 1)
            #expect(
                harness.service.seenRequests.withLockedValue { $0.map(\.method) } == ["GET"],
                "the POST was not sent to the service")
        }
        try await ProxyHarness.run(routes: {
            coexistRoutes(monolith: $0, service: $1, writes: #"{ "writes": "dry-run" }"#)
        }) { harness in
            let created = try await RawHTTP.send(
                "POST /contacts HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nContent-Length: "
                    + "11\r\nConnection: close\r\n\r\n{\"a\":\"bc\"}\n",
                port: harness.proxyPort)
            #expect(json(RawHTTP.parse(created.text).first?.body ?? "")["upstream"] as? String == "monolith")
            _ = try await harness.waitForDiffs("contacts.create", "compared", atLeast: 1)
            let seen = harness.service.seenRequests.withLockedValue { $0 }
            #expect(seen.count == 1)
            #expect(seen.first?.method == "POST")
            #expect(seen.first?.headers["strangler-dry-run"] == "1", "the shadow write asks the service for a dry run")
            #expect(
                harness.monolith.seenRequests.withLockedValue { $0.first?.headers["strangler-dry-run"] } == nil,
                "the real write is not a dry run")
            let samples =
                json(try await harness.admin("GET", "/admin/diffs/samples?route=contacts.create").body)["samples"]
                as? [[String: Any]] ?? []
            let request = samples.first?["request"] as? [String: Any]
            #expect(request?["body"] as? String == "{\"a\":\"bc\"}\n", "the sample keeps the request body")
        }
    }

    @Test func theServeShareIsAnsweredByTheServiceWithTheMonolithAsShadow() async throws {
        let shadow = #"{ "serve": 1.0 }"#
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1, shadow: shadow) }) { harness in
            harness.monolith.documents.withLockedValue { $0["/contacts/c1"] = #"{"id":"c1","title":"CEO"}"# }
            harness.service.documents.withLockedValue { $0["/contacts/c1"] = #"{"id":"c1","title":"CTO"}"# }
            let answer = try await RawHTTP.get("/contacts/c1", port: harness.proxyPort)
            #expect(json(answer.body)["title"] as? String == "CTO", "the service answers the canary share")
            let summary = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 1)
            #expect(summary["mismatched"] as? Int == 1)
            let samples =
                json(try await harness.admin("GET", "/admin/diffs/samples?route=contacts.get").body)["samples"]
                as? [[String: Any]] ?? []
            #expect(samples.first?["servedBy"] as? String == "service")
            let difference =
                (((samples.first?["diff"] as? [String: Any])?["body"] as? [String: Any])?["differences"]
                as? [[String: Any]])?.first
            #expect(difference?["monolith"] as? String == "CEO", "the monolith stays the left side whoever answered")
            #expect(difference?["service"] as? String == "CTO")
        }
    }

    @Test func samplingByKeyShadowsAnEntitysWholeFlowOrNone() async throws {
        let shadow = #"{ "sample": 0.5, "sampleBy": "{id}" }"#
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1, shadow: shadow) }) { harness in
            for round in 1...2 {
                for id in 1...24 {
                    _ = try await RawHTTP.get("/contacts/k\(id)?round=\(round)", port: harness.proxyPort)
                }
            }
            // Every decision was taken when its request started: once none is in flight, all shadows have ended.
            #expect(await eventually { harness.proxy.recorder.shadowsInFlight == 0 })
            let seen = harness.service.seenPaths.withLockedValue { $0 }
            let perID = Dictionary(grouping: seen, by: { $0 }).mapValues(\.count)
            #expect(perID.values.allSatisfy { $0 == 2 }, "an id shadowed once is shadowed every time: \(perID)")
            #expect(perID.count > 3 && perID.count < 21, "about half the ids are shadowed (\(perID.count) of 24)")
        }
    }

    @Test func bodiesOverTheComparisonLimitAreSkippedAndCounted() async throws {
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1) }, configure: { $0.maxCompareBytes = 64 }
        ) { harness in
            let big = #"{"id":"b","text":"\#(String(repeating: "x", count: 200))"}"#
            harness.monolith.documents.withLockedValue { $0["/contacts/b"] = big }
            harness.service.documents.withLockedValue { $0["/contacts/b"] = big }
            let answer = try await RawHTTP.get("/contacts/b", port: harness.proxyPort)
            #expect(answer.body == big, "the client gets the whole answer")
            let summary = try await harness.waitForDiffs("contacts.get", "skipped", atLeast: 1)
            #expect(summary["skipped"] as? Int == 1)
            #expect(summary["compared"] as? Int == 0)
        }
    }

    /// A request body over the limit: counted once as skipped, reason too-large, with its in-flight slot given back
    /// (it used to wait forever for a shadow that never went out: uncounted, and its slot never released).
    @Test func aRequestBodyOverTheLimitIsCountedWithItsReasonAndFreesItsSlot() async throws {
        let writes = #"{ "writes": "dry-run" }"#
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1, writes: writes) },
            configure: { $0.maxCompareBytes = 64 }
        ) { harness in
            let body = #"{"name":"\#(String(repeating: "y", count: 300))"}"#
            for _ in 0..<3 {
                let answer = try await RawHTTP.send(
                    "POST /contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                        + "\(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)", port: harness.proxyPort)
                #expect(answer.text.hasPrefix("HTTP/1.1 200"))
            }
            let summary = try await harness.waitForDiffs("contacts.create", "skipped", atLeast: 3)
            #expect(summary["skipped"] as? Int == 3 && summary["tooLarge"] as? Int == 3, "\(summary)")
            #expect(summary["compared"] as? Int == 0 && summary["dropped"] as? Int == 0)
            #expect(try await eventually { harness.proxy.recorder.shadowsInFlight == 0 })
            let metrics = try await harness.admin("GET", "/metrics").body
            #expect(
                metrics.contains(
                    #"strangler_shadows_not_compared_total{route="contacts.create",reason="too-large"} 3"#),
                "\(metrics)")
        }
    }

    @Test func redactedValuesAndSecretsNeverReachTheStoreFile() async throws {
        let shadow = #"{ "redact": ["/email", "/items/*/phone"] }"#
        try await ProxyHarness.run(routes: { coexistRoutes(monolith: $0, service: $1, shadow: shadow) }) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/p1"] =
                    #"{"id":"p1","email":"ada.secret@example.com","title":"CEO","items":[{"phone":"+1 555 0101"}]}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/p1"] =
                    #"{"id":"p1","email":"grace.secret@example.com","title":"CTO","items":[{"phone":"+1 555 0202"}]}"#
            }
            _ = try await RawHTTP.get(
                "/contacts/p1", port: harness.proxyPort,
                headers: ["Authorization: Bearer tok-SECRET-1", "Cookie: session=COOKIE-SECRET"])
            let summary = try await harness.waitForDiffs("contacts.get", "compared", atLeast: 1)
            #expect(summary["mismatched"] as? Int == 1)
            let signature = (summary["signatures"] as? [[String: Any]])?.first?["signature"] as? String
            #expect(
                signature == "/email changed, /items/*/phone changed, /title changed",
                "redaction hides values, not the difference")
            #expect((summary["signatures"] as? [[String: Any]])?.first?["samples"] as? Int == 1)
            // The store's file and its write-ahead log, as they are on disk now that the sample is written.
            var data = Data()
            for suffix in ["", "-wal"] {
                data +=
                    (try? Data(contentsOf: harness.directory.appendingPathComponent("data/diffs.sqlite\(suffix)")))
                    ?? Data()
            }
            for secret in ["ada.secret", "grace.secret", "555 0101", "555 0202", "tok-SECRET-1", "COOKIE-SECRET"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(secret) is in the store's bytes")
            }
            #expect(data.range(of: Data("CTO".utf8)) != nil, "the sample itself was stored")
            // The sample's request headers are the client's own, as it sent them (secrets masked), not the
            // proxy's rewrite of them.
            let samples =
                json(try await harness.admin("GET", "/admin/diffs/samples?route=contacts.get").body)["samples"]
                as? [[String: Any]] ?? []
            let headers = ((samples.first?["request"] as? [String: Any])?["headers"] as? [[String]] ?? []).map {
                ($0.first ?? "", $0.last ?? "")
            }
            #expect(headers.contains { $0.0 == "Authorization" && $0.1.hasPrefix("[redacted:") }, "\(headers)")
            #expect(headers.contains { $0.0 == "Cookie" && $0.1.hasPrefix("[redacted:") }, "\(headers)")
            #expect(
                !headers.contains { $0.0.lowercased() == "x-request-id" || $0.0.lowercased() == "x-forwarded-for" },
                "\(headers)")
        }
    }

    @Test func noiseLearningProposesIgnoreRulesForWhatChangesBetweenTwoAnswers() async throws {
        let shadow = #"{ "ignore": ["/id"] }"#
        try await ProxyHarness.run(
            routes: { coexistRoutes(monolith: $0, service: $1, shadow: shadow) }, configure: { $0.noiseShare = 1.0 }
        ) { harness in
            harness.monolith.documents.withLockedValue {
                $0["/contacts/n1"] = #"{"id":"n{{n}}","title":"CEO","requestedAt":"t{{n}}"}"#
            }
            harness.service.documents.withLockedValue {
                $0["/contacts/n1"] = #"{"id":"n1","title":"CEO","requestedAt":"t0"}"#
            }
            for _ in 1...3 { _ = try await RawHTTP.get("/contacts/n1", port: harness.proxyPort) }
            _ = try await harness.waitForDiffs("contacts.get", "noiseChecks", atLeast: 3)
            let noise = json(try await harness.admin("GET", "/admin/noise?route=contacts.get").body)
            #expect(noise["checks"] as? Int == 3)
            let pointers = (noise["pointers"] as? [[String: Any]] ?? []).compactMap { $0["pointer"] as? String }
            #expect(Set(pointers) == ["/id", "/requestedAt"])
            #expect(
                noise["proposed"] as? [String] == ["/requestedAt"], "pointers already ignored are not proposed again")
            let unknown = try await harness.admin("GET", "/admin/noise?route=nope")
            #expect(unknown.status == 404)
        }
    }
}

@Suite("Proxy: raw answers as the recorder reads them")
struct RawAnswerTests {
    static let head = Array(
        ("HTTP/1.1 200 OK\r\nContent-Type:  application/json \r\nX-A: 1\r\ncontent-type: charset=x\r\n"
            + "Content-Typo: no\r\n\r\n").utf8)

    @Test func fieldsAreParsedFromTheHeadBytes() {
        let fields = RawAnswer.fields(of: Self.head)
        #expect(fields.map(\.name) == ["Content-Type", "X-A", "content-type", "Content-Typo"])
        #expect(fields.first?.value == "application/json", "values are trimmed")
        #expect(RawAnswer.fields(of: Self.head, only: ["x-a"]).map(\.value) == ["1"])
    }

    @Test func sameValuesComparesEveryOccurrenceCaseInsensitivelyByName() {
        let name = Array("content-type".utf8)
        let same = Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nCONTENT-TYPE: charset=x\r\n\r\n".utf8)
        let other = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".utf8)
        #expect(RawAnswer.sameValues(of: name, Self.head, same))
        #expect(!RawAnswer.sameValues(of: name, Self.head, other))
        #expect(RawAnswer.sameValues(of: Array("x-missing".utf8), Self.head, other), "absent on both sides is the same")
    }

    /// The event loop's fast match compares the field ranges the parser found: same answers as the byte scan.
    @Test func sameValuesFromParsedFieldsAgreesWithTheByteScan() throws {
        func parsed(_ text: String) throws -> (raw: [UInt8], fields: RawAnswer.Fields) {
            let head = try HTTPHeadParser.parseResponse(ByteBuffer(string: text))
            return (head.raw, head.fields)
        }
        let heads = try [
            String(decoding: Self.head, as: UTF8.self),
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nCONTENT-TYPE: charset=x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Type: charset=x\r\nContent-Type: application/json\r\n\r\n",
        ].map(parsed)
        for name in ["content-type", "x-a", "x-missing"].map({ Array($0.utf8) }) {
            for left in heads {
                for right in heads {
                    #expect(
                        RawAnswer.sameValues(of: name, left.raw, left.fields, right.raw, right.fields)
                            == RawAnswer.sameValues(of: name, left.raw, right.raw))
                }
            }
        }
        #expect(
            !RawAnswer.sameValues(
                of: Array("content-type".utf8), heads[1].raw, heads[1].fields, heads[4].raw, heads[4].fields),
            "order matters")
    }
}

extension RawAnswerTests {
    @Test func namesFoldOnlyASCIILetters() {
        let head = Array("HTTP/1.1 200 OK\r\nX-A^B: 1\r\n\r\n".utf8)
        #expect(RawAnswer.fields(of: head, only: ["x-a^b"]).count == 1)
        #expect(RawAnswer.fields(of: head, only: ["x-a~b"]).isEmpty)
    }
}

extension RawAnswer {
    /// The reference the parsed-fields comparison is checked against: the same question answered by scanning both
    /// heads' bytes.
    static func sameValues(of name: [UInt8], _ left: [UInt8], _ right: [UInt8]) -> Bool {
        func values(_ head: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
            var result: [Range<Int>] = []
            Self.forEachField(in: head) { field, value in
                if Self.nameIs(name, field, in: head) { result.append(value) }
            }
            return result
        }
        return left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                let a = values(left)
                let b = values(right)
                return a.count == b.count && zip(a, b).allSatisfy { left[$0].elementsEqual(right[$1]) }
            }
        }
    }
}

extension RawAnswer {
    /// The parsed-fields comparison over arrays (the event loop calls it on the buffers' bytes).
    static func sameValues(
        of name: [UInt8], _ left: [UInt8], _ leftFields: Fields, _ right: [UInt8], _ rightFields: Fields
    ) -> Bool {
        left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in Self.sameValues(of: name, left, leftFields, right, rightFields) }
        }
    }
}
