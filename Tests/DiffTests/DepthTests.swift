import Diff
import Foundation
import JSON
import Testing

@Suite("JSON diff: the deepest documents accepted fit a small stack")
struct DepthTests {
    /// `[{"a": [{"a": … value … }]}]`, `levels` containers deep.
    static func nested(_ levels: Int, value: String) -> String {
        String(repeating: #"[{"a": "#, count: levels / 2) + value + String(repeating: "}]", count: levels / 2)
    }

    /// Runs `body` on a thread with a 512 KiB stack (as small as the threads a server may run it on). The value
    /// engine and `JSONParser` recurse, so they are not run here.
    static func onSmallStack(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            body()
            done.signal()
        }
        thread.stackSize = 512 * 1024
        thread.start()
        done.wait()
    }

    @Test func theDepthLimitIsWalkedOnA512KiBStack() {
        let levels = JSONDiff.depthLimit
        let left = Array(Self.nested(levels - 2, value: #"{"x": 1, "y": [1, 2]}"#).utf8)
        let right = Array(Self.nested(levels - 2, value: #"{"y": [1, 2, 3], "x": 2}"#).utf8)
        let outcome = OutcomeBox()
        Self.onSmallStack {
            let options = DiffOptions(maxDepth: levels)
            let bytes = try? JSONDiff.diff(left, right, options: options)
            // A whole deep subtree removed is materialized as a value, and redacted, without recursion too.
            let deep = Array(#"{"deep": \#(Self.nested(levels - 2, value: #"{"secret": 1}"#))}"#.utf8)
            let removed = try? JSONDiff.diff(deep, Array("{}".utf8), options: options)
            let redacted = Redactor.redact(
                deep, pointers: ["/deep" + String(repeating: "/*/a", count: (levels - 2) / 2) + "/secret"])
            outcome.set([
                bytes.map(summary) ?? ["error"], removed.map(summary) ?? ["error"],
                [String(decoding: redacted, as: UTF8.self).contains(#""secret": "[redacted]""#) ? "redacted" : "kept"],
            ])
        }
        let prefix = String(repeating: "/0/a", count: (levels - 2) / 2)
        #expect(outcome.value[0] == ["changed \(prefix)/x", "added \(prefix)/y/2"])
        #expect(outcome.value[1] == ["removed /deep"])
        #expect(outcome.value[2] == ["redacted"])
    }

    @Test func deeperThanTheHardLimitIsAnErrorWhateverTheOption() {
        let text = Array(Self.nested(JSONDiff.depthLimit + 2, value: "1").utf8)
        #expect(throws: DiffError.self) { try JSONDiff.diff(text, text, options: DiffOptions(maxDepth: 100_000)) }
    }
}

/// A value handed back from another thread.
final class OutcomeBox: @unchecked Sendable {
    // Safe: written once by the worker thread before it signals, read by the test after waiting for that signal.
    private(set) var value: [[String]] = []

    func set(_ value: [[String]]) { self.value = value }
}
