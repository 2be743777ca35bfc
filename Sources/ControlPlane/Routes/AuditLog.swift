public import JSON
import RouteTable

/// Appends to `<data>/audit.jsonl` for what changes no route table (`strangler purge` records an erasure there).
public enum AuditLog {
    /// The log's path in a data directory.
    public static func path(dataDirectory: String) -> String {
        dataDirectory.hasSuffix("/") ? dataDirectory + "audit.jsonl" : dataDirectory + "/audit.jsonl"
    }

    /// Appends one entry (one JSON object on one line), as the table changes are appended.
    public static func append(_ entry: JSONValue, dataDirectory: String) throws {
        try AtomicFile.append(entry.jsonText + "\n", to: Self.path(dataDirectory: dataDirectory))
    }
}

/// One entry of the audit log as `history` shows it: who did what, when and why, without the tables.
public struct AuditRecord: Sendable {
    /// The entry's members as written in `<data>/audit.jsonl` (`before` and `after` left out, `routes` added for a
    /// whole-table replace): what the admin API sends, member for member.
    package let fields: JSONValue

    package init(fields: JSONValue) {
        self.fields = fields
    }

    public var time: String? { self.fields["time"]?.stringValue }
    public var actor: String? { self.fields["actor"]?.stringValue }
    public var reason: String? { self.fields["reason"]?.stringValue }
    /// `stage`, `replace`, `undo`, `triage`, `edit` (the routes file edited by hand), `purge`, …
    public var action: String? { self.fields["action"]?.stringValue }
    /// True when the change overrode refused gates.
    public var forced: Bool { self.fields["forced"]?.boolValue == true }
    /// The stage moves the change made.
    public var changes: [StageChange] { StageChange.changes(self.fields["changes"]) }
    /// The selector of a group move (`contacts.*`).
    public var pattern: String? { self.fields["pattern"]?.stringValue }
    /// The route of a one-route change or a triage.
    public var route: String? { self.fields["route"]?.stringValue }
    /// A triage's signature and decision, and the ignore rules it added.
    public var signature: String? { self.fields["signature"]?.stringValue }
    public var decision: String? { self.fields["decision"]?.stringValue }
    public var ignore: [String] { (self.fields["ignore"]?.arrayValue ?? []).compactMap(\.stringValue) }
    /// What an undo reverted.
    public var undoes: UndoneChange? {
        guard let undone = self.fields["undoes"] else { return nil }
        return UndoneChange(
            time: undone["time"]?.stringValue ?? "?", action: undone["action"]?.stringValue ?? "?",
            actor: undone["actor"]?.stringValue,
            reason: undone["reason"]?.stringValue)
    }
    /// The routes a whole-table replace changed.
    public var routes: [String] { (self.fields["routes"]?.arrayValue ?? []).compactMap(\.stringValue) }
}

/// The newest entries of the audit log (`limit` at most), oldest first, and how many matched in all.
public struct HistoryPage: Sendable {
    public var total: Int
    public var entries: [AuditRecord]

    public init(total: Int, entries: [AuditRecord]) {
        self.total = total
        self.entries = entries
    }
}
