public import Foundation

/// One Server-Sent Event of the dashboard: its name (`snapshot`, `routes`, `services`, `changes`, `alerts`) and its
/// data (one line of JSON).
public struct DashboardEvent: Sendable, Equatable {
    public var name: String
    public var data: String

    public init(name: String, data: String) {
        self.name = name
        self.data = data
    }

    /// A comment line, which keeps the connection busy (`: ping`); browsers ignore it.
    public static let keepAlive = DashboardEvent(name: "", data: "ping")

    /// The event as the `text/event-stream` wire has it (the data is one line: JSON text has no raw newline); a
    /// comment when it has no name.
    public var wire: String {
        self.name.isEmpty ? ": \(self.data)\n\n" : "event: \(self.name)\ndata: \(self.data)\n\n"
    }
}

/// What the dashboard shows, live: a subscriber gets the whole state first (`snapshot`), then only what changed.
/// The gateway's `DashboardHub` is the one a proxy serves.
public protocol DashboardFeed: Sendable {
    /// The events for one viewer, until it goes away (the stream is cancelled) or the process shuts down (it ends).
    func subscribe() -> AsyncStream<DashboardEvent>
}

/// The dashboard's logins: a session id (random, 128 bits) per viewer who gave the admin token on the login page,
/// held in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/dashboard`): the token itself is never in a URL or a cookie.
/// Sessions end after ``lifetime``, at logout, or when the process stops; at most ``capacity`` are kept (the oldest
/// goes first).
public final class DashboardSessions: Sendable {
    public static let cookie = "strangler_dashboard"
    public let lifetime: TimeInterval
    public let capacity: Int
    private let sessions = LockedSessions()

    public init(lifetime: TimeInterval = 12 * 3600, capacity: Int = 1000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// A new session's id.
    public func open(now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let id = (0..<2).map { _ -> String in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        self.sessions.update { sessions in
            sessions = sessions.filter { $0.value > now }
            if sessions.count >= self.capacity, let oldest = sessions.min(by: { $0.value < $1.value }) {
                sessions[oldest.key] = nil
            }
            sessions[id] = now.addingTimeInterval(self.lifetime)
        }
        return id
    }

    /// Whether `id` is a session that has not ended.
    public func isValid(_ id: String, now: Date = Date()) -> Bool {
        guard id.utf8.count == 32 else { return false }
        return self.sessions.update { sessions in
            guard let until = sessions[id] else { return false }
            if until <= now {
                sessions[id] = nil
                return false
            }
            return true
        }
    }

    public func close(_ id: String) {
        self.sessions.update { $0[id] = nil }
    }

    /// The session id in a `Cookie` field's value, if it names one.
    public static func id(inCookie header: String?) -> String? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            if trimmed.hasPrefix(Self.cookie + "=") { return String(trimmed.dropFirst(Self.cookie.count + 1)) }
        }
        return nil
    }
}

/// A lock around the sessions (Foundation's, so that this file needs nothing more).
private final class LockedSessions: @unchecked Sendable {
    private let lock = NSLock()
    private var sessions: [String: Date] = [:]

    func update<T>(_ body: (inout [String: Date]) -> T) -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return body(&self.sessions)
    }
}
