import RouteTable
import Testing

@Suite("Durations")
struct DurationTextTests {
    @Test func hugeDurationsAreRefusedNotTrapped() {
        #expect(DurationText.parse("2s") == .seconds(2))
        #expect(DurationText.parse("30d") == .seconds(30 * 86_400))
        #expect(DurationText.parse("36500d") == .seconds(36_500 * 86_400))
        for text in ["2e11d", "1e13s", "1e300s", "9999999999999999h"] {
            #expect(DurationText.parse(text) == nil, "\(text)")
        }
    }

    @Test func aHugeDurationInRoutesJSONIsAProblemOfTheTable() {
        #expect(throws: RouteTableError.self) {
            try RouteTable.parse(#"{ "monolith": "http://127.0.0.1:1", "retention": "2e11d", "routes": [] }"#)
        }
        #expect(throws: RouteTableError.self) {
            try RouteTable.parse(
                #"{ "monolith": "http://127.0.0.1:1", "routes": [ { "id": "a", "method": "GET", "path": "/a", "#
                    + #""stage": "transform", "timeout": "1e13s" } ] }"#
            )
        }
    }
}
