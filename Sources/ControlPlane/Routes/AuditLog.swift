public import JSON

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
