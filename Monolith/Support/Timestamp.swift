import Foundation

/// ISO-8601 UTC timestamps with millisecond precision (`2026-01-31T09:30:00.000Z`), formatted without
/// Foundation's formatters so that they are cheap and identical on every platform. As text they sort in
/// time order.
enum Timestamp {
    /// The current time.
    static func now() -> String {
        self.format(millisecondsSince1970: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }

    static func format(millisecondsSince1970 milliseconds: Int64) -> String {
        let days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let millisecondOfDay = milliseconds - days * 86_400_000
        let (year, month, day) = self.civil(fromDays: days)
        let hour = millisecondOfDay / 3_600_000
        let minute = (millisecondOfDay / 60_000) % 60
        let second = (millisecondOfDay / 1000) % 60
        let millisecond = millisecondOfDay % 1000
        return
            "\(self.pad(year, 4))-\(self.pad(month, 2))-\(self.pad(day, 2))T\(self.pad(hour, 2)):"
            + "\(self.pad(minute, 2)):"
            + "\(self.pad(second, 2)).\(self.pad(millisecond, 3))Z"
    }

    /// Whether `text` is a calendar date `YYYY-MM-DD` that exists.
    static func isValidDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), day >= 1
        else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= lengths[month - 1]
    }

    /// Howard Hinnant's `civil_from_days`.
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
