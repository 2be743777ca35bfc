public import Foundation

/// Record ids as the monolith makes them: a prefix, `_`, then 10 Crockford base32 characters of the
/// creation time in milliseconds and 10 random ones (`con_01JD8X7Q2M4B9T5KZ3WQ`), so that ids sort in
/// creation order.
public enum RecordID {
    private static let digits = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// A new id with `prefix` (`con`).
    public static func make(prefix: String, at date: Date = Date()) -> String {
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down)))
        let random = UInt64.random(in: .min ... .max)
        var characters = [UInt8](repeating: 0, count: 20)
        for position in 0..<10 {
            characters[9 - position] = self.digits[Int((milliseconds >> (5 * UInt64(position))) & 31)]
            characters[10 + position] = self.digits[Int((random >> (5 * UInt64(position))) & 31)]
        }
        return prefix + "_" + String(decoding: characters, as: UTF8.self)
    }

    /// Whether `text` can be an id: 1 to 64 ASCII letters, digits and `_` (anything else is a 404 without a query).
    public static func isWellFormed(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { byte in
                byte == UInt8(ascii: "_") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            }
    }
}

/// Timestamps as the monolith writes them: ISO 8601, UTC, milliseconds (`2026-01-31T09:30:00.000Z`).
public enum ServiceTime {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    public static func now() -> String { self.format(Date()) }

    public static func format(_ date: Date) -> String {
        // Whole milliseconds, rounded down, as the monolith does.
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        return Date(timeIntervalSince1970: milliseconds / 1000).formatted(self.style)
    }

    public static func parse(_ text: String) -> Date? { try? self.style.parse(text) }
}
