package import Foundation
package import JSON
import NIOConcurrencyHelpers
import StranglerTesting
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Headless Chromium, when the machine has it (`.ci/run` installs it on Debian).
package enum Chromium {
    package static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }()

    package static let missing =
        "Chromium is not installed (apt-get install -y chromium, as .ci/run does): the HTML report is not rendered in "
        + "a browser here"

    /// The DOM of `file` after Chromium loaded and rendered it (`--dump-dom`); the browser is killed past `timeout`.
    package static func dumpDOM(_ file: URL, timeout: Duration = .seconds(90)) async throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let output = profile.appendingPathComponent("dom.html")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        // In a container (often as root) Chromium needs --no-sandbox; no GPU, no first-run work, a profile of its own.
        let process = try ChildProcess(
            executable: try #require(self.executable),
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check",
                "--user-data-dir=\(profile.appendingPathComponent("profile").path)", "--dump-dom", file.absoluteString,
            ],
            output: output.path)
        let deadline = Task {
            try await Task.sleep(for: timeout)
            process.signal(SIGTERM)
        }
        // Chromium exits after dumping; wait for it off the test's threads.
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
        deadline.cancel()
        let data = (try? Data(contentsOf: output)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Headless Chromium driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: the browser reads
/// commands on its descriptor 3 and writes answers on 4, each a JSON message ended by a NUL byte), for tests of a
/// live page: open it, run script in it, read what it shows.
package struct BrowserFailure: Error, CustomStringConvertible {
    package var description: String
}

package final class BrowserSession: Sendable {
    private let process: ChildProcess
    private let commands: Int32
    private let profile: URL
    private let answers = NIOLockedValueBox<[Int: JSONValue]>([:])
    private let nextID = NIOLockedValueBox(0)

    private init(process: ChildProcess, commands: Int32, profile: URL) {
        self.process = process
        self.commands = commands
        self.profile = profile
    }

    /// Starts the browser (a profile of its own, removed by ``close()``).
    package static func start() throws -> BrowserSession {
        let executable = try #require(Chromium.executable)
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        var toBrowser: [Int32] = [0, 0]
        var fromBrowser: [Int32] = [0, 0]
        guard pipe(&toBrowser) == 0, pipe(&fromBrowser) == 0 else {
            throw BrowserFailure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec at once, so that no other child inherits them (the copies made for the browser as 3 and 4
        // are not close-on-exec).
        for descriptor in toBrowser + fromBrowser { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let process = try ChildProcess(
            executable: executable,
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--remote-debugging-pipe",
                "--user-data-dir=\(profile.appendingPathComponent("profile").path)", "about:blank",
            ],
            output: profile.appendingPathComponent("browser.log").path,
            descriptors: [3: toBrowser[0], 4: fromBrowser[1]])
        _ = Glibc.close(toBrowser[0])
        _ = Glibc.close(fromBrowser[1])
        let session = BrowserSession(process: process, commands: toBrowser[1], profile: profile)
        let input = fromBrowser[0]
        // The answers are read on a thread of their own (blocking reads), never the cooperative pool's.
        let answers = session.answers
        Thread.detachNewThread {
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                pending += chunk[0..<count]
                while let end = pending.firstIndex(of: 0) {
                    let message = Array(pending[..<end])
                    pending.removeSubrange(...end)
                    if let value = try? JSONParser.parse(message), let id = value["id"]?.numberValue {
                        answers.withLockedValue { $0[Int(id)] = value }
                    }
                }
            }
            _ = Glibc.close(input)
        }
        return session
    }

    /// Sends a command (to a page's `session`, or to the browser) and waits for its answer's `result`.
    @discardableResult
    package func call(
        _ method: String, _ params: [(key: String, value: JSONValue)] = [], session: String? = nil,
        within: Duration = .seconds(30)
    ) async throws -> JSONValue {
        let id = self.nextID.withLockedValue { id in
            id += 1
            return id
        }
        var members: [(key: String, value: JSONValue)] = [
            ("id", .number(Double(id))), ("method", .string(method)), ("params", .object(params)),
        ]
        if let session { members.append(("sessionId", .string(session))) }
        let bytes = Array(JSONValue.object(members).jsonText.utf8) + [0]
        let written = bytes.withUnsafeBytes { write(self.commands, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw BrowserFailure(description: "the browser's pipe took \(written) of \(bytes.count) bytes")
        }
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            if let answer = self.answers.withLockedValue({ $0.removeValue(forKey: id) }) {
                if let error = answer["error"] {
                    throw BrowserFailure(description: "\(method): \(error.jsonText)")
                }
                return answer["result"] ?? .null
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw BrowserFailure(description: "\(method): no answer within \(within)")
    }

    /// A new page (tab) at `url`; its session id.
    package func open(_ url: String) async throws -> String {
        let target = try await self.call("Target.createTarget", [("url", .string("about:blank"))])
        let targetID = try #require(target["targetId"]?.stringValue)
        let attached = try await self.call(
            "Target.attachToTarget", [("targetId", .string(targetID)), ("flatten", .bool(true))])
        let session = try #require(attached["sessionId"]?.stringValue)
        try await self.call("Page.enable", session: session)
        try await self.call("Page.navigate", [("url", .string(url))], session: session)
        return session
    }

    /// The value of `expression` evaluated in the page (awaited when it is a promise).
    package func evaluate(_ expression: String, session: String) async throws -> JSONValue {
        let result = try await self.call(
            "Runtime.evaluate",
            [("expression", .string(expression)), ("returnByValue", .bool(true)), ("awaitPromise", .bool(true))],
            session: session)
        return result["result"]?["value"] ?? .null
    }

    /// Waits until `expression` is true in the page; false past `within`.
    package func waitUntil(_ expression: String, session: String, within: Duration = .seconds(30)) async throws -> Bool
    {
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            if try await self.evaluate("Boolean(\(expression))", session: session).boolValue == true { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    package func close() {
        _ = Glibc.close(self.commands)
        self.process.signal(SIGTERM)
        self.process.waitUntilExit()
        try? FileManager.default.removeItem(at: self.profile)
    }
}
