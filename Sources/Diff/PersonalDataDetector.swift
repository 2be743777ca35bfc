/// Finds personal data and credentials written in free text: e-mail addresses, phone numbers, payment card numbers
/// (Luhn check), IBANs (mod-97 check), JWTs and bearer credentials. Pure and linear: every candidate starts at a word
/// boundary and is read a bounded number of bytes (a JWT: its own length), so a text of n bytes costs O(n).
///
/// ```swift
/// PersonalDataDetector.matches(in: Array("write to ada@example.com or +44 20 7946 0958".utf8))
/// // [(9..<24, .email), (28..<44, .phone)]
/// ```
///
/// What counts (so that ordinary ids, timestamps, UUIDs and amounts are not taken):
/// - **e-mail**: `local@domain.tld`, the domain with at least one dot and a top-level label of 2+ letters;
/// - **phone**: a `+` followed by 7–15 digits with single spaces, dashes, dots or parentheses between them, or the
///   North American grouping `(555) 010-0199`, `555-010-0199`, `555.010.0199`, `555 010 0199` (3-3-4 with one kind of
///   separator). A bare run of digits is never a phone number: it is an id, an amount or a time;
/// - **card**: 13–19 digits (single spaces or dashes between groups allowed) whose first digit is 2–6 (the card
///   networks' ranges; millisecond and nanosecond timestamps start with 1) and that pass the Luhn check;
/// - **IBAN**: two capital letters, two check digits, then 11–30 capital letters and digits (optionally in groups of
///   four separated by single spaces), 15–34 characters in all, that pass the ISO 7064 mod-97 check;
/// - **JWT**: three base64url segments separated by dots, the first starting with `eyJ` (`{"` encoded), the first two
///   at least 4 characters long;
/// - **bearer**: the word `Bearer` (any case) then spaces and a credential of 8+ token characters (the credential is
///   what is matched).
///
/// Each candidate must stand alone: not preceded or followed by a letter or digit (so `user12345678901234`, a
/// UUID's groups and words around an address do not count).
public enum PersonalDataDetector {
    public enum Kind: String, Sendable, Equatable {
        case email, phone, card, iban, jwt, bearer
    }

    /// The detected ranges of `bytes`, in order, none overlapping.
    public static func matches(in bytes: [UInt8]) -> [(range: Range<Int>, kind: Kind)] {
        bytes.withUnsafeBufferPointer { Self.matches(in: $0) }
    }

    /// The detected ranges of `text` (byte offsets in its UTF-8 view), in order, none overlapping.
    public static func matches(in bytes: UnsafeBufferPointer<UInt8>) -> [(range: Range<Int>, kind: Kind)] {
        var found: [(range: Range<Int>, kind: Kind)] = []
        var index = 0
        var lastEnd = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            let atBoundary = index == 0 || !Self.isAlphanumeric(bytes[index - 1])
            var match: (Range<Int>, Kind)?
            if byte == UInt8(ascii: "@") {
                match = Self.email(bytes, at: index, notBefore: lastEnd).map { ($0, .email) }
            } else if atBoundary {
                switch byte {
                case UInt8(ascii: "+"), UInt8(ascii: "("):
                    match = Self.phone(bytes, at: index).map { ($0, .phone) }
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    if let end = Self.card(bytes, at: index) {
                        match = (index..<end, .card)
                    } else if let end = Self.northAmericanPhone(bytes, at: index) {
                        match = (index..<end, .phone)
                    }
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    if let end = Self.iban(bytes, at: index) {
                        match = (index..<end, .iban)
                    } else if let range = Self.bearer(bytes, at: index) {
                        match = (range, .bearer)
                    }
                case UInt8(ascii: "e"):
                    if let end = Self.jwt(bytes, at: index) { match = (index..<end, .jwt) }
                case UInt8(ascii: "b"):
                    if let range = Self.bearer(bytes, at: index) { match = (range, .bearer) }
                default:
                    break
                }
            }
            if let (range, kind) = match {
                found.append((range, kind))
                lastEnd = range.upperBound
                index = range.upperBound
                continue
            }
            // A run of letters and digits holds no candidate that starts inside it (they start at boundaries), except
            // an e-mail's `@`, which stops the run.
            if Self.isAlphanumeric(byte) {
                index += 1
                while index < count, Self.isAlphanumeric(bytes[index]) { index += 1 }
            } else {
                index += 1
            }
        }
        return found
    }

    // MARK: - Checks

    /// The Luhn checksum of a string of digits is valid (`"4111111111111111"`).
    public static func luhnValid(_ digits: some Collection<UInt8>) -> Bool {
        guard digits.count >= 2 else { return false }
        var sum = 0
        for (position, byte) in digits.reversed().enumerated() {
            var digit = Int(byte &- UInt8(ascii: "0"))
            guard digit < 10 else { return false }
            if position % 2 == 1 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        return sum % 10 == 0
    }

    /// An IBAN (capital letters and digits only, no spaces) passes the ISO 7064 mod-97 check.
    public static func ibanValid(_ characters: some Collection<UInt8>) -> Bool {
        let text = Array(characters)
        guard (15...34).contains(text.count), Self.isUpper(text[0]), Self.isUpper(text[1]), Self.isDigit(text[2]),
            Self.isDigit(text[3])
        else {
            return false
        }
        var remainder = 0
        for byte in text[4...] + text[..<4] {
            if Self.isDigit(byte) {
                remainder = (remainder * 10 + Int(byte - UInt8(ascii: "0"))) % 97
            } else if Self.isUpper(byte) {
                remainder = (remainder * 100 + Int(byte - UInt8(ascii: "A")) + 10) % 97
            } else {
                return false
            }
        }
        return remainder == 1
    }

    // MARK: - Candidates

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    @inline(__always) static func isUpper(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "A") < 26 }
    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- UInt8(ascii: "a") < 26 }
    @inline(__always) static func isAlphanumeric(_ byte: UInt8) -> Bool { Self.isDigit(byte) || Self.isLetter(byte) }

    private static func endsAtBoundary(_ bytes: UnsafeBufferPointer<UInt8>, _ end: Int) -> Bool {
        end == bytes.count || !Self.isAlphanumeric(bytes[end])
    }

    /// An address around the `@` at `at`: the local part no further back than `notBefore` (the end of the last match).
    private static func email(_ bytes: UnsafeBufferPointer<UInt8>, at: Int, notBefore: Int) -> Range<Int>? {
        func isLocal(_ byte: UInt8) -> Bool { Self.isAlphanumeric(byte) || "._%+-".utf8.contains(byte) }
        var start = at
        while start > notBefore, at - start < 64, isLocal(bytes[start - 1]) { start -= 1 }
        while start < at, bytes[start] == UInt8(ascii: ".") { start += 1 }
        guard start < at else { return nil }
        var end = at + 1
        var lastDot = -1
        var labelLength = 0
        while end < bytes.count, end - at <= 253 {
            let byte = bytes[end]
            if Self.isAlphanumeric(byte) || byte == UInt8(ascii: "-") {
                labelLength += 1
            } else if byte == UInt8(ascii: "."), labelLength > 0, end + 1 < bytes.count,
                Self.isAlphanumeric(bytes[end + 1])
            {
                lastDot = end
                labelLength = 0
            } else {
                break
            }
            end += 1
        }
        guard lastDot > at + 1 else { return nil }
        let topLevel = bytes[(lastDot + 1)..<end]
        guard topLevel.count >= 2, topLevel.allSatisfy(Self.isLetter) else { return nil }
        return start..<end
    }

    /// `+` and 7–15 digits with single separators, or `(ddd) ddd-dddd`.
    private static func phone(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Range<Int>? {
        if bytes[at] == UInt8(ascii: "(") {
            return Self.northAmericanPhone(bytes, at: at).map { at..<$0 }
        }
        var index = at + 1
        var digits = 0
        var end = at
        var openParenthesis = false
        while index < bytes.count, index - at < 32 {
            let byte = bytes[index]
            if Self.isDigit(byte) {
                digits += 1
                index += 1
                end = index
            } else if byte == UInt8(ascii: "("), !openParenthesis, digits > 0, index + 1 < bytes.count,
                Self.isDigit(bytes[index + 1])
            {
                openParenthesis = true
                index += 1
            } else if byte == UInt8(ascii: ")"), openParenthesis, index > 0, Self.isDigit(bytes[index - 1]) {
                openParenthesis = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: " "), index + 1 < bytes.count,
                    Self.isDigit(bytes[index + 1])
                {
                    index += 1
                }
            } else if " -.".utf8.contains(byte), digits > 0, index + 1 < bytes.count,
                Self.isDigit(bytes[index + 1]) || bytes[index + 1] == UInt8(ascii: "(")
            {
                index += 1
            } else {
                break
            }
        }
        guard digits > 0, Self.isDigit(bytes[at + 1]) || bytes[at + 1] == UInt8(ascii: "("), (7...15).contains(digits),
            !openParenthesis,
            Self.endsAtBoundary(bytes, end)
        else { return nil }
        return at..<end
    }

    /// `(ddd) ddd-dddd`, `ddd-ddd-dddd`, `ddd.ddd.dddd`, `ddd ddd dddd`: the end, or nil.
    private static func northAmericanPhone(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Int? {
        var index = at
        func digits(_ count: Int) -> Bool {
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where !Self.isDigit(bytes[index + offset]) { return false }
            index += count
            return true
        }
        func byte(_ expected: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == expected else { return false }
            index += 1
            return true
        }
        if byte(UInt8(ascii: "(")) {
            guard digits(3), byte(UInt8(ascii: ")")) else { return nil }
            _ = byte(UInt8(ascii: " "))
            guard digits(3), byte(UInt8(ascii: "-")) || byte(UInt8(ascii: " ")) || byte(UInt8(ascii: ".")), digits(4)
            else { return nil }
        } else {
            guard digits(3), index < bytes.count else { return nil }
            let separator = bytes[index]
            guard " -.".utf8.contains(separator), byte(separator), digits(3), byte(separator), digits(4) else {
                return nil
            }
        }
        return Self.endsAtBoundary(bytes, index) ? index : nil
    }

    /// 13–19 digits, first 2–6, single spaces or dashes between groups, Luhn-valid: the end, or nil.
    private static func card(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Int? {
        guard (UInt8(ascii: "2")...UInt8(ascii: "6")).contains(bytes[at]) else { return nil }
        var digits: [UInt8] = []
        digits.reserveCapacity(19)
        var index = at
        var separator: UInt8?
        var ends: [(end: Int, count: Int)] = []
        while index < bytes.count, digits.count < 19 {
            let byte = bytes[index]
            if Self.isDigit(byte) {
                digits.append(byte)
                index += 1
                ends.append((index, digits.count))
            } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-"), separator == nil || separator == byte,
                index + 1 < bytes.count,
                Self.isDigit(bytes[index + 1])
            {
                separator = byte
                index += 1
            } else {
                break
            }
        }
        // The whole run must be the number: a card number does not stop in the middle of digits.
        guard let last = ends.last, (13...19).contains(last.count), Self.endsAtBoundary(bytes, last.end) else {
            return nil
        }
        return Self.luhnValid(digits) ? last.end : nil
    }

    /// `CCdd` then 11–30 capitals and digits (groups of four may be separated by single spaces), mod-97 valid.
    private static func iban(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Int? {
        guard at + 4 < bytes.count, Self.isUpper(bytes[at]), Self.isUpper(bytes[at + 1]), Self.isDigit(bytes[at + 2]),
            Self.isDigit(bytes[at + 3])
        else {
            return nil
        }
        var characters: [UInt8] = Array(bytes[at..<(at + 4)])
        var index = at + 4
        // Where the candidate may end (after a character, at a word boundary), longest first below.
        var ends: [(end: Int, count: Int)] = []
        while index < bytes.count, characters.count < 34 {
            let byte = bytes[index]
            if Self.isUpper(byte) || Self.isDigit(byte) {
                characters.append(byte)
                index += 1
                if Self.endsAtBoundary(bytes, index) { ends.append((index, characters.count)) }
            } else if byte == UInt8(ascii: " "), characters.count % 4 == 0, index + 1 < bytes.count,
                Self.isUpper(bytes[index + 1]) || Self.isDigit(bytes[index + 1])
            {
                index += 1
            } else {
                break
            }
        }
        for candidate in ends.reversed() where candidate.count >= 15 {
            if Self.ibanValid(characters[..<candidate.count]) { return candidate.end }
        }
        return nil
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        Self.isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// `eyJ…` `.` `…` `.` `…` (base64url): the end, or nil.
    private static func jwt(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Int? {
        guard at + 3 <= bytes.count, bytes[at] == UInt8(ascii: "e"), bytes[at + 1] == UInt8(ascii: "y"),
            bytes[at + 2] == UInt8(ascii: "J")
        else {
            return nil
        }
        var index = at
        var lengths: [Int] = []
        while lengths.count < 3 {
            let start = index
            while index < bytes.count, Self.isBase64URL(bytes[index]) { index += 1 }
            lengths.append(index - start)
            guard lengths.count < 3 else { break }
            guard index < bytes.count, bytes[index] == UInt8(ascii: ".") else { return nil }
            index += 1
        }
        guard lengths[0] >= 4, lengths[1] >= 4,
            index == bytes.count || !(Self.isBase64URL(bytes[index]) || bytes[index] == UInt8(ascii: "."))
        else {
            return nil
        }
        return index
    }

    /// `Bearer <credential>`: the credential's range, or nil.
    private static func bearer(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Range<Int>? {
        let word = Array("bearer".utf8)
        guard at + word.count < bytes.count else { return nil }
        for offset in 0..<word.count where bytes[at + offset] | 0x20 != word[offset] { return nil }
        var index = at + word.count
        guard bytes[index] == UInt8(ascii: " ") else { return nil }
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        let start = index
        func isToken(_ byte: UInt8) -> Bool { Self.isAlphanumeric(byte) || "-._~+/".utf8.contains(byte) }
        while index < bytes.count, isToken(bytes[index]) { index += 1 }
        while index < bytes.count, bytes[index] == UInt8(ascii: "=") { index += 1 }
        return index - start >= 8 ? start..<index : nil
    }
}
