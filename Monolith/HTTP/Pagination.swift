import Foundation
import GRDB
import Hummingbird

/// Cursor pagination: `?limit=` (1–200, default 50) and `?after=<cursor>`, in id order.
///
/// A cursor is opaque to clients: today the base64url form of the last id of the previous page.
struct PageRequest: Sendable {
    static let defaultLimit = 50
    static let maxLimit = 200

    var limit: Int
    /// The id after which the page starts.
    var afterID: String?

    /// Reads `limit` and `after`, adding any problem to `errors`.
    init(query: Parameters, errors: inout [String: String]) {
        self.limit = Self.defaultLimit
        self.afterID = nil
        if let text = query.get("limit") {
            if let limit = Int(text), (1...Self.maxLimit).contains(limit) {
                self.limit = limit
            } else {
                errors["limit"] = "must be a whole number from 1 to \(Self.maxLimit)"
            }
        }
        if let cursor = query.get("after"), !cursor.isEmpty {
            if let id = Self.decodeCursor(cursor) {
                self.afterID = id
            } else {
                errors["after"] = "is not a cursor given by this API"
            }
        }
    }

    static func encodeCursor(_ id: String) -> String {
        Data(id.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) -> String? {
        guard cursor.utf8.count <= 128 else { return nil }
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let id = String(data: data, encoding: .utf8),
            EntityID.isWellFormed(id), !id.isEmpty
        else {
            return nil
        }
        return id
    }

    /// Fetches one page of `request` (already filtered) in id order.
    func fetch<E: CRMEntity>(_ request: QueryInterfaceRequest<E>, _ db: Database) throws -> Page<E> {
        var request = request
        if let afterID { request = request.filter(Column("id") > afterID) }
        var items = try request.order(Column("id")).limit(self.limit + 1).fetchAll(db)
        var next: String?
        if items.count > self.limit {
            items.removeLast()
            next = items.last.map { Self.encodeCursor($0.id) }
        }
        return Page(items: items, next: next)
    }
}

/// A page of a list: `{ "items": [...], "next": "cursor-or-null" }`.
struct Page<E: CRMEntity>: Sendable {
    var items: [E]
    var next: String?

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("items")
        writer.beginArray()
        for item in self.items { item.writeJSON(to: &writer) }
        writer.endArray()
        writer.field("next", self.next)
        writer.endObject()
    }
}
