import ControlPlane
import Diff
public import Foundation
public import JSON
public import Proxy
public import RouteTable
import Synchronization

/// Keeps the exchanges a recording asks for (`strangler record`, `POST /admin/record`), redacted as samples are
/// (the table's `"redact"` rules and the route's `shadow.redact`, `docs/shadow.md`), and hands them over as HAR.
/// With no recording running, the data plane asks one atomic load per request.
///
/// ```swift
/// let har = await recorder.record(pattern: "orders.*", limit: 100, within: .seconds(60))
/// ```
public final class TrafficRecorder: CaptureSink {
    private struct Session {
        var pattern: String
        var limit: Int
        var entries: [HAR.Entry] = []
        var done: CheckedContinuation<Void, Never>?
    }

    private let active = Atomic<Int>(0)
    private let sessions = Mutex<[UInt64: Session]>([:])
    private let nextID = Atomic<UInt64>(1)
    private let key: RedactionKey
    private let table: @Sendable () -> RouteTable

    /// `table` gives the live table (its redaction rules, and each route's); `redactionKey` is the diff store's, so
    /// that a value redacted in a recording hashes as it does in samples.
    public init(redactionKey: [UInt8], table: @escaping @Sendable () -> RouteTable) {
        self.key = RedactionKey(bytes: redactionKey)
        self.table = table
    }

    public func wants(route: String) -> Bool {
        guard self.active.load(ordering: .relaxed) > 0 else { return false }
        return self.sessions.withLock { sessions in
            sessions.values.contains { $0.entries.count < $0.limit && RouteOperations.glob($0.pattern, matches: route) }
        }
    }

    public func submit(_ exchange: CapturedExchange) {
        let entry = self.entry(exchange)
        let finished: [CheckedContinuation<Void, Never>] = self.sessions.withLock { sessions in
            var done: [CheckedContinuation<Void, Never>] = []
            for id in sessions.keys {
                guard var session = sessions[id], session.entries.count < session.limit,
                    RouteOperations.glob(session.pattern, matches: exchange.route)
                else { continue }
                session.entries.append(entry)
                if session.entries.count == session.limit, let continuation = session.done {
                    session.done = nil
                    done.append(continuation)
                }
                sessions[id] = session
            }
            return done
        }
        for continuation in finished { continuation.resume() }
    }

    /// Records the exchanges of the routes `pattern` matches (an id, or `*`/`?` glob) until `limit` are kept or
    /// `within` has passed, and returns them as a HAR document with `recorded` (how many) beside it.
    public func record(pattern: String, limit: Int, within: Duration) async -> [HAR.Entry] {
        let id = self.nextID.add(1, ordering: .relaxed).oldValue
        self.sessions.withLock { $0[id] = Session(pattern: pattern, limit: max(1, limit)) }
        self.active.add(1, ordering: .relaxed)
        defer { self.active.subtract(1, ordering: .relaxed) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let ready = self.sessions.withLock { sessions -> Bool in
                        guard var session = sessions[id] else { return true }
                        if session.entries.count >= session.limit { return true }
                        session.done = continuation
                        sessions[id] = session
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: within) }
            _ = await group.next()
            // Whichever came first: the other is released (the wait by its continuation, the sleep by cancel).
            let waiting = self.sessions.withLock { sessions -> CheckedContinuation<Void, Never>? in
                let continuation = sessions[id]?.done
                sessions[id]?.done = nil
                return continuation
            }
            waiting?.resume()
            group.cancelAll()
        }
        return self.sessions.withLock { $0.removeValue(forKey: id)?.entries ?? [] }
    }

    /// The exchange as a HAR entry, redacted: path and query, headers (credentials and cookies), bodies.
    func entry(_ exchange: CapturedExchange) -> HAR.Entry {
        let table = self.table()
        let policy = table.route(id: exchange.route)?.shadow ?? ShadowPolicy.defaults
        let privacy = table.privacy
        var redaction = Redaction(
            rules: RedactionRules(
                defaults: privacy.defaults, fields: privacy.fields + policy.redactFields,
                pointers: privacy.pointers + policy.redact),
            key: self.key)
        let requestFields = RawAnswer.fields(of: exchange.requestHead)
        let responseFields = RawAnswer.fields(of: exchange.responseHead)
        let path = redaction.path(exchange.path)
        let query = exchange.query.map { redaction.query($0) }
        func mime(_ fields: [(name: String, value: String)]) -> String? {
            fields.first { $0.name.lowercased() == "content-type" }?.value
        }
        let host = requestFields.first { $0.name.lowercased() == "host" }?.value ?? "localhost"
        return HAR.Entry(
            started: exchange.started, time: exchange.seconds * 1000, method: exchange.method,
            url: "http://\(host)\(path)\(query.map { "?" + $0 } ?? "")",
            request: HAR.Message(
                headers: redaction.requestHeaders(requestFields),
                body: redaction.body(exchange.requestBody, headers: requestFields), mimeType: mime(requestFields)),
            status: exchange.status, statusText: Self.reason(exchange.responseHead),
            response: HAR.Message(
                headers: redaction.responseHeaders(responseFields),
                body: redaction.body(exchange.responseBody, headers: responseFields), mimeType: mime(responseFields)))
    }

    /// The reason phrase of a status line (`HTTP/1.1 201 Created` → `Created`).
    static func reason(_ head: [UInt8]) -> String {
        let line = head.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2)
        return parts.count == 3 ? String(decoding: parts[2], as: UTF8.self) : ""
    }
}
