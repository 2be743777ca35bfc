public import HTTPTypes
public import Hummingbird
import JSON
import NIOCore

/// Writes a service's JSON answers: keys in the order written, explicit `null`s, strings escaped like
/// every JSON text of the toolkit (``JSON/JSONValue/appendQuoted(_:to:)``), so that the same record is
/// always the same bytes and a shadow diff sees no noise from serialisation.
///
/// ```swift
/// var output = JSONOutput()
/// output.object { $0.field("status", "ok") }   // {"status":"ok"}
/// ```
public struct JSONOutput: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 256) {
        self.bytes.reserveCapacity(capacity)
    }

    /// An object whose members `members` writes.
    public mutating func object(_ members: (inout JSONOutput) -> Void) {
        self.open(UInt8(ascii: "{"))
        members(&self)
        self.close(UInt8(ascii: "}"))
    }

    /// An array whose items `items` writes.
    public mutating func array(_ items: (inout JSONOutput) -> Void) {
        self.open(UInt8(ascii: "["))
        items(&self)
        self.close(UInt8(ascii: "]"))
    }

    /// A member's key; the next value written is its value.
    public mutating func key(_ name: String) {
        self.separate()
        JSONValue.appendQuoted(name, to: &self.bytes)
        self.bytes.append(UInt8(ascii: ":"))
        self.needsComma = false
    }

    public mutating func string(_ value: String?) {
        self.separate()
        if let value {
            JSONValue.appendQuoted(value, to: &self.bytes)
        } else {
            self.bytes.append(contentsOf: "null".utf8)
        }
        self.needsComma = true
    }

    public mutating func integer(_ value: Int64?) {
        self.separate()
        self.bytes.append(contentsOf: (value.map { String($0) } ?? "null").utf8)
        self.needsComma = true
    }

    public mutating func number(_ value: Double?) {
        self.separate()
        self.bytes.append(contentsOf: (value.map { JSONValue.format($0) } ?? "null").utf8)
        self.needsComma = true
    }

    /// JSON text that is already valid, as one value.
    public mutating func raw(_ json: some Collection<UInt8>) {
        self.separate()
        self.bytes.append(contentsOf: json)
        self.needsComma = true
    }

    public mutating func field(_ name: String, _ value: String?) {
        self.key(name)
        self.string(value)
    }

    public mutating func field(_ name: String, _ value: Int64?) {
        self.key(name)
        self.integer(value)
    }

    public mutating func field(_ name: String, strings: [String]) {
        self.key(name)
        self.array { output in for item in strings { output.string(item) } }
    }

    mutating func open(_ byte: UInt8) {
        self.separate()
        self.bytes.append(byte)
        self.needsComma = false
    }

    mutating func close(_ byte: UInt8) {
        self.bytes.append(byte)
        self.needsComma = true
    }

    private mutating func separate() {
        if self.needsComma { self.bytes.append(UInt8(ascii: ",")) }
    }
}

extension Response {
    /// A JSON answer: `Content-Type`, then `extra` (ETag, Location), then `Content-Length`, as the monolith
    /// orders them.
    public static func json(
        status: HTTPResponse.Status = .ok, _ bytes: [UInt8], headers extra: HTTPFields = [:]
    )
        -> Response
    {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers.append(contentsOf: extra)
        headers[.contentLength] = String(bytes.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A JSON answer written by `write`.
    public static func json(
        status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], _ write: (inout JSONOutput) -> Void
    ) -> Response {
        var output = JSONOutput()
        write(&output)
        return self.json(status: status, output.bytes, headers: headers)
    }
}
