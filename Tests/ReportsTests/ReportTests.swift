import AdminAPI
import Foundation
import Gateway
import JSON
import ProxyTestSupport
import RouteTable
import Testing

@testable import ControlPlane
@testable import DiffStore
@testable import Proxy
@testable import Reports

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The report's formats, from the fixture's store with known counts (ReportFixture.swift), against expected content.
@Suite("Report: formats")
struct ReportTests {
    static let expectedText = #"""
        strangler report: 4 routes: 1 ready to move, 1 blocked, 1 in eliminate, 1 without a service
        from the test store at 2026-11-27T09:10:00Z; table 0123456789abcdef; window: everything kept
        Personal data in samples: redacted by default (field names, value detectors, header allow-lists); samples \#
        kept until purged (no retention).

        contacts.get  GET /contacts/{id}  service contacts  coexist
          not ready to eliminate:
            - 30 compared samples so far, needs 100
            - match rate 96.66% of 30: its 95% lower bound 83.32% is under 90.00%
            - 1 untriaged mismatch signature: e1 (/email changed, 1×)
          Compared        30 so far: 28 matched, 2 mismatched; match rate 93.33% (95% CI 78.67%–98.15%)
          Triaged         1 mismatch of triaged signatures counted as matched: gate lower bound 83.32%
          Eliminate gate  at least 100 compared, lower bound at least 90.00%
          Shadow traffic  30 compared, 28 matched, 2 mismatched; 2 shadow errors, 1 timeout, 1 dropped, 3 skipped, 1 \#
        stale
          Sync            lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 \#
        missing, 0 extra, 0 differing)
          Signatures      2 (1 untriaged)
            1. e1  1× (1 since the stage change)  untriaged
               /email changed
               first seen 2026-11-27T09:01:10Z, last seen 2026-11-27T09:01:10Z; 1 sample kept
               sample 1: GET /contacts/c1?expand=<tags> at 2026-11-27T09:01:10Z, answered by the monolith
                 AT      KIND     MONOLITH         SERVICE
                 /email  changed  "a@example.com"  "b@example.com"
            2. s2  1× (1 since the stage change)  accepted by alice: 404 right after a delete: sync lag
               status changed
               first seen 2026-11-27T09:02:10Z, last seen 2026-11-27T09:02:10Z; 1 sample kept
               sample 2: GET /contacts/c2 at 2026-11-27T09:02:10Z, answered by the monolith
                 AT      KIND     MONOLITH  SERVICE
                 status  changed  404       200
          Top pointers    /email changed 1×, status changed 1×

        contacts.list  GET /contacts  service contacts  coexist
          ready to eliminate
          Compared        200 so far: 200 matched, 0 mismatched; match rate 100.00% (95% CI 98.11%–100.00%)
          Eliminate gate  at least 100 compared, lower bound at least 90.00%
          Shadow traffic  200 compared, 200 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 skipped, \#
        0 stale
          Sync            lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 \#
        missing, 0 extra, 0 differing)
          Signatures      none

        deals.get  GET /deals/{id}  service deals  eliminate
          in eliminate: the service answers alone
          Compared        0 so far: 0 matched, 0 mismatched
          Shadow traffic  0 compared, 0 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 skipped, 0 \#
        stale
          Sync            lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 \#
        missing, 0 extra, 0 differing)
          Signatures      none

        accounts.get  GET /accounts/{id}  transform
          no service: stays with the monolith
          Compared        0 so far: 0 matched, 0 mismatched
          Shadow traffic  0 compared, 0 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 skipped, 0 \#
        stale
          Signatures      none
        """#

    static let expectedMarkdown = #"""
        # Strangler report

        Generated 2026-11-27T09:10:00Z from the test store; table `0123456789abcdef`; window: everything kept.

        4 routes: 1 ready to move, 1 blocked, 1 in eliminate, 1 without a service.

        Personal data in samples: redacted by default (field names, value detectors, header allow-lists); samples \#
        kept until purged (no retention).

        | Route | Stage | Compared | Match rate | Untriaged | Sync lag | Verdict |
        |---|---|---:|---|---:|---:|---|
        | `contacts.get` | coexist | 30 | 93.33% (95% CI 78.67%–98.15%) | 1 | 0 | ❌ not ready to eliminate |
        | `contacts.list` | coexist | 200 | 100.00% (95% CI 98.11%–100.00%) | 0 | 0 | ✅ ready to eliminate |
        | `deals.get` | eliminate | 0 | — | 0 | 0 | ✅ in eliminate: the service answers alone |
        | `accounts.get` | transform | 0 | — | 0 | — | ➖ no service: stays with the monolith |

        ## `contacts.get`: `GET /contacts/{id}`

        ❌ **Not ready to eliminate**:

        - 30 compared samples so far, needs 100
        - match rate 96.66% of 30: its 95% lower bound 83.32% is under 90.00%
        - 1 untriaged mismatch signature: e1 (/email changed, 1×)

        * **Stage:** coexist; service `contacts`
        * **Compared:** 30 so far: 28 matched, 2 mismatched; match rate 93.33% (95% CI 78.67%–98.15%)
        * **Triaged:** 1 mismatch of triaged signatures counted as matched: gate lower bound 83.32%
        * **Eliminate gate:** at least 100 compared, lower bound at least 90.00%
        * **Shadow traffic:** 30 compared, 28 matched, 2 mismatched; 2 shadow errors, 1 timeout, 1 dropped, 3 skipped,\#
         1 stale
        * **Sync:** lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 missing, 0 \#
        extra, 0 differing)

        ### Mismatch signatures

        | # | Signature | Differences | Count | Since stage change | First seen | Last seen | Triage |
        |---:|---|---|---:|---:|---|---|---|
        | 1 | `e1` | /email changed | 1 | 1 | 2026-11-27T09:01:10Z | 2026-11-27T09:01:10Z | **untriaged** |
        | 2 | `s2` | status changed | 1 | 1 | 2026-11-27T09:02:10Z | 2026-11-27T09:02:10Z | accepted by alice: 404 \#
        right after a delete: sync lag |

        Newest sample of `e1`: `GET /contacts/c1?expand=<tags>`, 2026-11-27T09:01:10Z:

        | At | Kind | Monolith | Service |
        |---|---|---|---|
        | `/email` | changed | `"a@example.com"` | `"b@example.com"` |

        ### Top differing pointers

        | Pointer | Kind | Count |
        |---|---|---:|
        | `/email` | changed | 1 |
        | `status` | changed | 1 |

        ## `contacts.list`: `GET /contacts`

        ✅ **Ready to eliminate**

        * **Stage:** coexist; service `contacts`
        * **Compared:** 200 so far: 200 matched, 0 mismatched; match rate 100.00% (95% CI 98.11%–100.00%)
        * **Eliminate gate:** at least 100 compared, lower bound at least 90.00%
        * **Shadow traffic:** 200 compared, 200 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 \#
        skipped, 0 stale
        * **Sync:** lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 missing, 0 \#
        extra, 0 differing)

        ### Mismatch signatures

        None.

        ### Top differing pointers

        None.

        ## `deals.get`: `GET /deals/{id}`

        ✅ **In eliminate: the service answers alone**

        * **Stage:** eliminate; service `deals`
        * **Compared:** 0 so far: 0 matched, 0 mismatched
        * **Shadow traffic:** 0 compared, 0 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 skipped, \#
        0 stale
        * **Sync:** lag 0 events; health ok; last reconcile clean at 2026-11-27T09:05:00Z (40 compared; 0 missing, 0 \#
        extra, 0 differing)

        ### Mismatch signatures

        None.

        ### Top differing pointers

        None.

        ## `accounts.get`: `GET /accounts/{id}`

        ➖ **No service: stays with the monolith**

        * **Stage:** transform
        * **Compared:** 0 so far: 0 matched, 0 mismatched
        * **Shadow traffic:** 0 compared, 0 matched, 0 mismatched; 0 shadow errors, 0 timeouts, 0 dropped, 0 skipped, \#
        0 stale

        ### Mismatch signatures

        None.

        ### Top differing pointers

        None.
        """#

    @Test func textHasTheExpectedLines() async throws {
        let text = ReportText.render(try await ReportFixture.report(), style: .plain)
        #expect(text == Self.expectedText + "\n")
        #expect(!text.contains("\u{1B}"))
    }

    @Test func colourHighlightsTheDifferingValuesOnlyWhenAsked() async throws {
        let report = try await ReportFixture.report()
        let coloured = ReportText.render(report, style: TerminalStyle(colours: true))
        #expect(coloured.contains("\u{1B}[31m\"a@example.com\"\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[32m\"b@example.com\"\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[31mnot ready to eliminate\u{1B}[0m"))
        // Without the escape codes it is the plain text, aligned the same.
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(stripped == Self.expectedText + "\n")
        // NO_COLOR (any non-empty value) turns colours off, whatever the terminal.
        #expect(TerminalStyle.detect(environment: ["NO_COLOR": "1"]).colours == false)
        #expect(TerminalStyle.detect(environment: ["NO_COLOR": "yes", "TERM": "xterm-256color"]).colours == false)
    }

    @Test func storedControlCharactersNeverReachTheTerminal() async throws {
        let store = try DiffStore.open(path: nil)
        try ReportFixture.fill(store)
        var batch = DiffBatch(time: ReportFixture.start.addingTimeInterval(140))
        var sample = ReportFixture.emailSample
        sample.signature = "x9"
        sample.path = "/contacts/\u{1B}[2J"
        sample.diff =
            #"{"body":{"kind":"json","differences":[{"pointer":"/email","kind":"changed","monolith":"\u001b[31mred","#
            + #""service":"b"}],"truncated":false}}"#
        batch.samples.append(sample)
        batch.count(signature: "x9", text: "/email changed", on: "contacts.get", occurrences: 5)
        try store.apply(batch)
        let text = ReportText.render(
            try await ReportFixture.report(store: store, selector: "contacts.get"), style: .plain)
        #expect(text.contains("sample 3: GET /contacts/ [2J?expand=<tags> at"))
        #expect(!text.contains("\u{1B}"))
    }

    @Test func markdownHasTheExpectedLines() async throws {
        #expect(try await ReportFixture.report().markdown == Self.expectedMarkdown + "\n")
    }

    @Test func markdownEscapesWhatWouldBreakATable() {
        #expect(Report.code("a|b") == #"`a\|b`"#)
        #expect(Report.code("x`y") == "``x`y``")
        #expect(Report.markdownText("<b>*x*</b> | _y_") == #"&lt;b&gt;\*x\*&lt;/b&gt; \| \_y\_"#)
    }

    @Test func junitHasOneCasePerRouteAndFailsTheBlockedOnes() async throws {
        let report = try await ReportFixture.report()
        #expect(report.hasBlockedRoutes)
        let document = try XMLDocument(xmlString: report.junit, options: [])
        let suites = try #require(document.rootElement())
        #expect(suites.name == "testsuites")
        #expect(suites.attribute(forName: "tests")?.stringValue == "4")
        #expect(suites.attribute(forName: "failures")?.stringValue == "1")
        #expect(suites.attribute(forName: "skipped")?.stringValue == "1")
        let cases = try document.nodes(forXPath: "/testsuites/testsuite/testcase").compactMap { $0 as? XMLElement }
        #expect(
            cases.map { $0.attribute(forName: "name")?.stringValue } == [
                "contacts.get", "contacts.list", "deals.get", "accounts.get",
            ])
        #expect(
            cases.map { $0.attribute(forName: "classname")?.stringValue } == [
                "strangler.gates.coexist", "strangler.gates.coexist", "strangler.gates.eliminate",
                "strangler.gates.transform",
            ])
        let failure = try #require(cases[0].elements(forName: "failure").first)
        #expect(
            failure.attribute(forName: "message")?.stringValue
                == "not ready to eliminate: 30 compared samples so far, needs 100; match rate 96.66% of 30: its 95% "
                + "lower bound 83.32% is under 90.00%; "
                + "1 untriaged mismatch signature: e1 (/email changed, 1×)")
        #expect(failure.stringValue?.split(separator: "\n").count == 3)
        #expect(cases[1].elements(forName: "failure").isEmpty && cases[1].elements(forName: "skipped").isEmpty)
        #expect(cases[2].elements(forName: "failure").isEmpty)
        #expect(
            cases[3].elements(forName: "skipped").first?.attribute(forName: "message")?.stringValue
                == "no service: stays with the monolith")
        #expect(
            cases[1].elements(forName: "system-out").first?.stringValue?.hasPrefix(
                "ready to eliminate\nCompared: 200 so far") == true)
    }

    @Test func htmlIsSelfContainedWithTheChartAndTheEscapedSamples() async throws {
        let html = try await ReportFixture.report().html
        // contacts.get: 10/10 at 09:00, 9/10 at 09:01 and 09:02 (axis from 90%); contacts.list: one bucket, 200/200.
        #expect(html.contains(#"<polyline class="rate" points="48.0,12.0 338.0,152.0 628.0,152.0"/>"#))
        #expect(html.contains(#"<polyline class="rate" points="338.0,12.0"/>"#))
        #expect(
            html.contains(
                #"<circle class="point" cx="338.0" cy="152.0" r="3"><title>2026-11-27T09:01:00Z: 90.00% (9 of "#
                    + #"10)</title></circle>"#
            ))
        #expect(html.contains(#"<line class="threshold" x1="48.0" y1="152.0" x2="628.0" y2="152.0">"#))
        #expect(html.components(separatedBy: "<details class=\"signature\"").count == 3)
        #expect(html.contains(#"<details class="signature" id="signature-e1">"#))
        // The samples' request and both answers, escaped.
        #expect(html.contains("<h4>Sample 1: <code>GET /contacts/c1?expand=&lt;tags&gt;</code></h4>"))
        #expect(html.contains("&quot;email&quot;: &quot;a@example.com&quot;"))
        #expect(html.contains("&quot;email&quot;: &quot;b@example.com&quot;"))
        #expect(html.contains(#"&quot;note&quot;: &quot;&lt;b&gt;Tom &amp; \&quot;Jerry\&quot;&lt;/b&gt;&quot;"#))
        #expect(html.contains("<h5>Monolith answered 404</h5>"))
        #expect(!html.contains("<b>Tom"))
        #expect(!html.contains("<tags>"))
        // Nothing fetched: no script, stylesheet link, image, font or URL but the SVG namespace.
        for forbidden in ["<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "@font-face"] {
            #expect(!html.contains(forbidden))
        }
        #expect(!html.replacingOccurrences(of: #"xmlns="http://www.w3.org/2000/svg""#, with: "").contains("://"))
        #expect(
            html.contains(
                #"<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;"#
                    + #"unsafe-inline&#39;"#
            ))
    }

    @Test func aSamplesTraceIsShownAndLinkedWhereTheTemplateSays() async throws {
        var report = try await ReportFixture.report()
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let route = try #require(report.routes.firstIndex { $0.id == "contacts.get" })
        let signature = try #require(report.routes[route].signatures.firstIndex { !$0.samples.isEmpty })
        report.routes[route].signatures[signature].samples[0].traceID = trace
        // Without a template: the id, not a link.
        #expect(report.html.contains(", trace <code>\(trace)</code>, answered by"))
        #expect(!report.html.contains("/trace/"))
        // With one: a link in HTML and Markdown, and both keys in the JSON, which reads back the same.
        report.traceURL = "http://jaeger.test:16686/trace/{traceId}?uiEmbed=v0&x=1"
        #expect(
            report.html.contains(
                #", trace <a href="http://jaeger.test:16686/trace/\#(trace)?uiEmbed=v0&amp;x=1" rel="noreferrer">"#
                    + "<code>\(trace)</code></a>"))
        if report.routes[route].signatures[signature].id == report.routes[route].signatures.first?.id {
            #expect(
                report.markdown.contains(
                    ", trace [`\(trace)`](<http://jaeger.test:16686/trace/\(trace)?uiEmbed=v0&x=1>):"))
        }
        #expect(report.json["traceUrl"]?.stringValue == report.traceURL)
        #expect(try Report(json: report.json) == report)
        // Templates that cannot be one are refused, saying why.
        for bad in ["ftp://x/{traceId}", "http://x/trace", "http://x/{traceId} y", #"http://x/{traceId}"><b>"#] {
            guard case .failure = TraceURLTemplate.check(bad) else {
                Issue.record("\(bad) was taken as a template")
                continue
            }
        }
        #expect(
            TraceURLTemplate.check("https://grafana.test/explore?trace={traceId}")
                == .success("https://grafana.test/explore?trace={traceId}"))
    }

    @Test func sinceLimitsSignaturesSamplesBucketsAndTrafficButNotTheGate() async throws {
        let report = try await ReportFixture.report(window: "8m30s")
        #expect(report.window == Report.Window(since: ReportFixture.start.addingTimeInterval(90), duration: "8m30s"))
        let route = report.routes[0]
        // e1 was last seen at 09:01:10, before the window (09:01:30); s2 at 09:02:10.
        #expect(route.signatures.map(\.id) == ["s2"])
        #expect(route.signaturesTotal == 1)
        #expect(route.signatures[0].samples.map(\.id) == [2])
        #expect(
            route.buckets.map(\.start) == [
                ReportFixture.start.addingTimeInterval(60), ReportFixture.start.addingTimeInterval(120),
            ])
        #expect(route.traffic.compared == 20 && route.traffic.matched == 18 && route.traffic.shadowErrors == 2)
        #expect(route.gate.compared == 30 && route.gate.matched == 28)
        #expect(route.verdict.reasons.count == 3)

        let empty = try await ReportFixture.report(window: "5m")
        #expect(
            empty.routes[0].signatures.isEmpty && empty.routes[0].buckets.isEmpty
                && empty.routes[0].traffic.compared == 0)
        #expect(empty.html.contains("<p class=\"none\">No comparisons in the window.</p>"))
    }

    @Test func durationsParse() {
        #expect(ReportWindow("1h")?.seconds == 3600)
        #expect(ReportWindow("30m")?.seconds == 1800)
        #expect(ReportWindow("7d")?.seconds == 7 * 86400)
        #expect(ReportWindow("1h30m")?.seconds == 5400)
        #expect(ReportWindow("2w")?.seconds == 14 * 86400)
        for bad in ["", "5x", "h", "1", "0m", "-1h", "1.5h", "401d", "1h 30m"] {
            #expect(ReportWindow(bad) == nil, "\(bad)")
        }
    }

    @Test func selectorsNameRoutes() throws {
        let table = try RouteTable.parse(ReportFixture.routes)
        #expect(try ReportBuilder.select("contacts.*", in: table).get().map(\.id) == ["contacts.get", "contacts.list"])
        #expect(try ReportBuilder.select(nil, in: table).get().count == 4)
        guard case .failure(let unknown) = ReportBuilder.select("nope", in: table),
            case .failure(let none) = ReportBuilder.select("zz*", in: table)
        else {
            Issue.record("expected failures")
            return
        }
        #expect(unknown.message == "no route has id \"nope\"")
        #expect(none.message == "no route id matches \"zz*\"")
    }

    @Test func wilsonUpperBound() {
        let lower = Wilson.lowerBound(successes: 28, trials: 30, confidence: 0.95)
        let upper = Wilson.upperBound(successes: 28, trials: 30, confidence: 0.95)
        #expect(abs(lower - 0.786765) < 1e-6)
        #expect(abs(upper - 0.981523) < 1e-6)
        #expect(abs(Wilson.upperBound(successes: 200, trials: 200, confidence: 0.95) - 1) < 1e-12)
        #expect(Wilson.upperBound(successes: 0, trials: 0, confidence: 0.95) == 1)
        #expect(abs(Wilson.upperBound(successes: 0, trials: 10, confidence: 0.95) - 0.277533) < 1e-6)
    }
}

@Suite("Report: time buckets in the diff store")
struct ReportBucketTests {
    @Test func batchesAddUpPerMinuteAndExpire() throws {
        let store = try DiffStore.open(path: nil)
        let start = ReportFixture.start
        for (offset, compared, matched) in [(5.0, 4, 4), (50.0, 6, 5), (65.0, 10, 10)] {
            var batch = DiffBatch(time: start.addingTimeInterval(offset))
            var counts = ReportFixture.counts(compared, matched)
            counts.timeouts = 1
            batch.counts["r"] = counts
            batch.counts["other"] = ReportFixture.counts(1, 1)
            try store.apply(batch)
        }
        let buckets = try store.buckets(route: "r")
        #expect(buckets.map(\.start) == [start, start.addingTimeInterval(60)])
        #expect(buckets.map(\.counts.compared) == [10, 10])
        #expect(buckets.map(\.counts.matched) == [9, 10])
        #expect(buckets.map(\.counts.mismatched) == [1, 0])
        #expect(buckets.map(\.counts.timeouts) == [2, 1])
        #expect(try store.buckets(since: start.addingTimeInterval(61)).map(\.route) == ["other", "r"])
        #expect(try store.buckets().count == 4)

        // A batch fifteen days later drops what is older than fourteen days.
        var later = DiffBatch(time: start.addingTimeInterval(15 * 86400))
        later.counts["r"] = ReportFixture.counts(1, 0)
        try store.apply(later)
        #expect(try store.buckets().map(\.start) == [start.addingTimeInterval(15 * 86400)])
    }

    @Test func longSpansAreMergedIntoWiderBuckets() {
        func minute(_ index: Int, _ compared: Int, _ matched: Int) -> TimeBucket {
            TimeBucket(
                route: "r", start: ReportFixture.start.addingTimeInterval(Double(index * 60)),
                counts: ReportFixture.counts(compared, matched))
        }
        let hours = (0..<180).map { minute($0, 2, 1) }
        #expect(ReportBuilder.bucketWidth([hours]) == 300)
        #expect(ReportBuilder.bucketWidth([[minute(0, 1, 1)]]) == 60)
        let merged = ReportBuilder.merge(hours, width: 300)
        #expect(merged.count == 36)
        #expect(merged[0] == RouteReport.Bucket(start: ReportFixture.start, compared: 10, matched: 5, mismatched: 5))
        #expect(ReportBuilder.merge([minute(0, 0, 0), minute(1, 2, 2)], width: 60).map(\.compared) == [2])
    }
}

@Suite("Report: differing values")
struct ReportValueTests {
    @Test func aJSONNullIsShownAsNullAndOnlyAMissingValueAsAbsent() {
        let typeChanged = RouteReport.Difference(
            at: "/title", kind: "type_changed", monolith: .string(""), service: .null)
        #expect(!typeChanged.absentFromMonolith && !typeChanged.absentFromService)
        #expect(Report.valueText(typeChanged.service, absent: typeChanged.absentFromService) == "null")
        #expect(Report.valueText(typeChanged.monolith, absent: typeChanged.absentFromMonolith) == #""""#)
        let added = RouteReport.Difference(at: "/x", kind: "added", monolith: .null, service: .number(1))
        #expect(Report.valueText(added.monolith, absent: added.absentFromMonolith) == "(absent)")
        let removed = RouteReport.Difference(at: "/x", kind: "removed", monolith: .null, service: .null)
        #expect(Report.valueText(removed.monolith, absent: removed.absentFromMonolith) == "null")
        #expect(Report.valueText(removed.service, absent: removed.absentFromService) == "(absent)")
    }
}
