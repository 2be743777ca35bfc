import Synchronization

/// The requests no route matched (they went to the monolith), grouped by method and path template: what
/// `strangler routes suggest` proposes routes from. Ids in paths are folded into `{id}` as they are counted (numbers,
/// UUIDs, long hex and other id-like segments), so the groups stay few; at most `capacity` groups are kept (later
/// new ones are counted as `overflow`). Touched only by requests that match no route.
public final class UnmatchedTraffic: Sendable {
    public struct Group: Sendable, Equatable {
        public var method: String
        /// `/orders/{id}/items`.
        public var template: String
        public var count: Int
        /// One path as it came (canonical), for a look.
        public var example: String
    }

    private struct State {
        var groups: [String: Group] = [:]
        var overflow = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    func record(method: String, path: String) {
        let template = Self.template(path)
        let key = method + " " + template
        self.state.withLock { state in
            if state.groups[key] != nil {
                state.groups[key]!.count += 1
            } else if state.groups.count < self.capacity {
                state.groups[key] = Group(method: method, template: template, count: 1, example: path)
            } else {
                state.overflow += 1
            }
        }
    }

    /// The groups, most requests first, and how many requests fell outside the kept groups.
    public func snapshot() -> (groups: [Group], overflow: Int) {
        self.state.withLock { state in
            (
                state.groups.values.sorted {
                    $0.count != $1.count ? $0.count > $1.count : ($0.template, $0.method) < ($1.template, $1.method)
                }, state.overflow
            )
        }
    }

    /// A canonical path with its id-like segments as `{id}` (several in one path: `{id}`, `{id2}`, …).
    public static func template(_ path: String) -> String {
        var ids = 0
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            guard Self.isIdentifier(segment) else { return String(segment) }
            ids += 1
            return ids == 1 ? "{id}" : "{id\(ids)}"
        }
        return segments.joined(separator: "/")
    }

    /// Numbers, UUIDs, hex of 8 or more digits, and long mixed letter-and-digit tokens (`ord_8f3k2m9x`).
    static func isIdentifier(_ segment: Substring) -> Bool {
        guard !segment.isEmpty else { return false }
        let utf8 = segment.utf8
        if utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return true }
        let hexOrDash = utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) || $0 == 0x2d
        }
        let digits = utf8.filter { $0 >= 0x30 && $0 <= 0x39 }.count
        if hexOrDash, utf8.count >= 8, digits > 0 { return true }
        let letters = utf8.filter { ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) }.count
        return utf8.count >= 8 && digits >= 2 && letters >= 1
            && utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x5f
                    || $0 == 0x2d
            }
    }
}
