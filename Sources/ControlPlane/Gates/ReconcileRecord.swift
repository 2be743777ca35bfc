public import Foundation
public import JSON

/// The result of the last `strangler reconcile <service>`, kept in `<data>/reconcile/<service>.json` for the
/// eliminate gate ("the last reconcile clean").
///
/// ```json
/// { "service": "contacts", "time": "2026-11-28T10:00:00Z", "clean": true,
///   "compared": 1000, "missing": 0, "extra": 0, "differing": 0,
///   "ignored": ["/title"] }
/// ```
public struct ReconcileRecord: Sendable, Equatable {
    public var service: String
    public var time: Date
    public var clean: Bool
    /// Records in the monolith.
    public var compared: Int
    public var missing: Int
    public var extra: Int
    public var differing: Int
    /// Pointers left out of the comparison (`strangler reconcile --ignore`): differences accepted on purpose, named
    /// here so that a clean record never hides what it did not compare.
    public var ignored: [String]

    public init(
        service: String, time: Date = Date(), clean: Bool, compared: Int, missing: Int, extra: Int, differing: Int,
        ignored: [String] = []
    ) {
        self.service = service
        self.time = time
        self.clean = clean
        self.compared = compared
        self.missing = missing
        self.extra = extra
        self.differing = differing
        self.ignored = ignored
    }

    /// Whether `name` can name an entity (and its record's file, `<name>.json`): letters, digits, `.`, `_`, `-`.
    public static func isEntityName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    public static func path(service: String, dataDirectory: String) -> String {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent("reconcile").appendingPathComponent(
            "\(service).json"
        ).path
    }

    /// `1000 compared; 0 missing, 0 extra, 0 differing`.
    public var summary: String {
        "\(self.compared) compared; \(self.missing) missing, \(self.extra) extra, \(self.differing) differing"
            + (self.ignored.isEmpty ? "" : " (ignoring \(self.ignored.joined(separator: ", ")))")
    }

    public var json: JSONValue {
        .object([
            ("service", .string(self.service)),
            ("time", .string(Self.formatter.string(from: self.time))),
            ("clean", .bool(self.clean)),
            ("compared", .number(Double(self.compared))),
            ("missing", .number(Double(self.missing))),
            ("extra", .number(Double(self.extra))),
            ("differing", .number(Double(self.differing))),
            ("ignored", .array(self.ignored.map(JSONValue.string))),
        ])
    }

    /// Writes the record atomically, creating `<data>/reconcile/`.
    public func write(dataDirectory: String) throws {
        let path = Self.path(service: self.service, dataDirectory: dataDirectory)
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(self.json.prettyJSONText + "\n", to: path)
    }

    /// The last record of a service; nil when it was never reconciled (or the file is unreadable).
    public static func read(service: String, dataDirectory: String) -> ReconcileRecord? {
        guard
            let text = try? String(
                contentsOfFile: self.path(service: service, dataDirectory: dataDirectory), encoding: .utf8)
        else { return nil }
        return ReconcileRecord(text: text, service: service)
    }

    /// A record from its JSON text (``json``); nil when it is not one. `service` stands in for a missing name.
    public init?(text: String, service: String) {
        guard let document = try? JSONParser.parse(text),
            let time = document["time"]?.stringValue.flatMap(Self.formatter.date(from:)),
            let clean = document["clean"]?.boolValue
        else { return nil }
        func count(_ key: String) -> Int { Int(document[key]?.numberValue ?? 0) }
        self.init(
            service: document["service"]?.stringValue ?? service, time: time, clean: clean, compared: count("compared"),
            missing: count("missing"), extra: count("extra"), differing: count("differing"),
            ignored: (document["ignored"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    /// ISO 8601 formatting is thread-safe once configured, and this formatter is never reconfigured.
    nonisolated(unsafe) static let formatter = ISO8601DateFormatter()
}
