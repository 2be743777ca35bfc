import Foundation
public import GRDB
public import Hummingbird

/// Cursor pagination exactly as the monolith pages: `?limit=` (1–200, default 50) and `?after=<cursor>`, in
/// id order; a cursor is the base64url form (no padding) of the last id of the previous page, so cursors
/// from the monolith and from a service are interchangeable.
public struct PageQuery: Sendable {
    public static let defaultLimit = 50
    public static let maxLimit = 200

    public var limit = Self.defaultLimit
    public var afterID: String?

    /// Reads `limit` and `after`, adding problems to `errors`.
    public init(_ query: Parameters, errors: inout [String: String]) {
        let limitText = query.get("limit")
        let limit = limitText.flatMap { Int($0) }.flatMap { (1...Self.maxLimit).contains($0) ? $0 : nil }
        if limitText != nil, limit == nil { errors["limit"] = "must be a whole number from 1 to \(Self.maxLimit)" }
        self.limit = limit ?? Self.defaultLimit
        guard let cursor = query.get("after"), !cursor.isEmpty else { return }
        self.afterID = Self.id(fromCursor: cursor)
        if self.afterID == nil { errors["after"] = "is not a cursor given by this API" }
    }

    public static func cursor(for id: String) -> String {
        var text = Data(id.utf8).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    public static func id(fromCursor cursor: String) -> String? {
        guard cursor.utf8.count <= 128 else { return nil }
        var text = String(cursor.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        text += String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: text), let id = String(data: data, encoding: .utf8),
            RecordID.isWellFormed(id)
        else { return nil }
        return id
    }

    /// One page of `table` rows matching `conditions` (SQL with `?` placeholders, joined by AND), in id order.
    public func fetch<Record: FetchableRecord>(
        _ type: Record.Type, from table: String, where conditions: [(sql: String, argument: String)],
        id: (Record) -> String, _ db: Database
    ) throws -> Page<Record> {
        var clauses = conditions.map(\.sql)
        var arguments = StatementArguments(conditions.map(\.argument))
        if let afterID = self.afterID {
            clauses.append("id > ?")
            arguments += [afterID]
        }
        arguments += [self.limit + 1]
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        var records = try Record.fetchAll(
            db, sql: "SELECT * FROM \(table)\(filter) ORDER BY id LIMIT ?", arguments: arguments)
        guard records.count > self.limit else { return Page(items: records, next: nil) }
        records.removeLast()
        return Page(items: records, next: records.last.map { Self.cursor(for: id($0)) })
    }
}

/// One page of a list: `{ "items": [...], "next": "cursor-or-null" }`.
public struct Page<Item> {
    public var items: [Item]
    public var next: String?

    public func write(to output: inout JSONOutput, item write: (Item, inout JSONOutput) -> Void) {
        output.object { page in
            page.key("items")
            page.array { list in for item in self.items { write(item, &list) } }
            page.field("next", self.next)
        }
    }
}

extension Page: Sendable where Item: Sendable {}
