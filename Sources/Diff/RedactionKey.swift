import Crypto

/// The secret of a diff store's keyed hashes: a redacted value is stored as the HMAC-SHA256 of the value under this
/// key, cut short. The same value gives the same hash on both sides of a comparison and across samples (so two
/// sides that disagree on an e-mail still show two different hashes), and nobody without the key can test a guess.
///
/// The key lives beside the diff store (`DiffStore.redactionKey(directory:)` creates it, mode 0600).
///
/// ```swift
/// let key = RedactionKey(bytes: keyBytes)
/// key.hash(Array("ada@example.com".utf8))   // "3f1c0a9e5b7d2c41" (16 hex digits)
/// key.token(Array("ada@example.com".utf8))  // "[redacted:3f1c0a9e5b7d2c41]"
/// ```
public struct RedactionKey: Sendable {
    /// The key's bytes (swift-crypto's `SymmetricKey` is made from them per hash: it is not `Sendable` here).
    private let bytes: [UInt8]

    /// Bytes of a key (the store makes 32 random ones; any length works, as for HMAC).
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The first 8 bytes of HMAC-SHA256(key, value), in 16 lowercase hex digits: what a sample keeps of a value.
    public func hash(_ value: some Collection<UInt8>) -> String {
        Self.hex(self.digest(value).prefix(8))
    }

    /// `"[redacted:<hash>]"`: a string value as stored.
    public func token(_ value: some Collection<UInt8>) -> String {
        Self.token(hash: self.hash(value))
    }

    /// The token of a hash: `"[redacted:" + hash + "]"`.
    public static func token(hash: String) -> String { "[redacted:" + hash + "]" }

    /// The HMAC's first 40 bits as a whole number (0 to 1,099,511,627,775): a number value as stored, a number still
    /// (and never 13 digits long, so never taken for a card number again).
    public func number(_ value: some Collection<UInt8>) -> (number: Double, hash: String) {
        let bytes = self.digest(value).prefix(8)
        let number = bytes.prefix(5).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (Double(number), Self.hex(bytes))
    }

    private func digest(_ value: some Collection<UInt8>) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: self.bytes))
        hmac.update(data: Array(value))
        return Array(hmac.finalize())
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: some Collection<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(Self.digits[Int(byte >> 4)])
            text.append(Self.digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
