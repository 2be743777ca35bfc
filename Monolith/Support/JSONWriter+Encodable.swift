extension JSONWriter {
    /// Writes `value`'s JSON form: an object with its coding keys in the order it encodes them (a synthesized
    /// `encode(to:)` follows the declaration order), `nil` as an explicit `null`. The records' columns are their
    /// properties, listed once; this is how their one JSON form follows from them.
    ///
    /// Only flat values are written: strings, whole numbers, `Bool`s and arrays of strings.
    mutating func object(encoding value: some Encodable) {
        let sink = Sink(self)
        do {
            try value.encode(to: ObjectEncoder(sink: sink))
        } catch {
            preconditionFailure("\(type(of: value)) has no flat JSON form: \(error)")
        }
        if sink.opened { sink.writer.endObject() }
        self = sink.writer
    }
}

/// The writer while a value encodes itself (its containers are values, so they share it through this box).
private final class Sink {
    var writer: JSONWriter
    var opened = false

    init(_ writer: JSONWriter) {
        self.writer = writer
    }
}

private struct NotFlat: Error {
    var what: String
}

private struct ObjectEncoder: Encoder {
    let sink: Sink
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if !self.sink.opened {
            self.sink.writer.beginObject()
            self.sink.opened = true
        }
        return KeyedEncodingContainer(Members(sink: self.sink))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer { preconditionFailure("only objects are written") }
    func singleValueContainer() -> any SingleValueEncodingContainer { preconditionFailure("only objects are written") }
}

private struct Members<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: Sink
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) { self.sink.writer.field(key.stringValue, nil as String?) }
    mutating func encode(_ value: Bool, forKey key: Key) {
        self.sink.writer.key(key.stringValue)
        self.sink.writer.value(value)
    }
    mutating func encode(_ value: String, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }
    mutating func encode(_ value: Int, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }
    mutating func encode(_ value: Int64, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) { self.sink.writer.field(key.stringValue, value) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        guard let strings = value as? [String] else { throw NotFlat(what: "\(key.stringValue): \(T.self)") }
        self.sink.writer.field(key.stringValue, strings)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    )
        -> KeyedEncodingContainer<NestedKey>
    {
        preconditionFailure("\(key.stringValue): nested objects are not written")
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        preconditionFailure("\(key.stringValue): nested arrays are not written")
    }
    mutating func superEncoder() -> any Encoder { preconditionFailure("no super encoder") }
    mutating func superEncoder(forKey key: Key) -> any Encoder { preconditionFailure("no super encoder") }
}
