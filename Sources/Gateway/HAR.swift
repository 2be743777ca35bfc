public import Foundation
public import JSON

/// HTTP Archive 1.2 (http://www.softwareishard.com/blog/har-12-spec/), as far as recording and replaying needs:
/// each entry's request (method, URL, headers, body) and response (status, headers, body), its start and duration.
/// `strangler record` writes it; `strangler replay` reads it, also one a browser's developer tools exported (HTTP/2
/// pseudo-headers such as `:authority` are left out, and a body given as base64 is decoded).
public enum HAR {
    public struct Message: Sendable, Equatable {
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        public var mimeType: String?

        public init(headers: [(name: String, value: String)], body: [UInt8], mimeType: String?) {
            self.headers = headers
            self.body = body
            self.mimeType = mimeType
        }

        public static func == (lhs: Message, rhs: Message) -> Bool {
            lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
                && lhs.body == rhs.body && lhs.mimeType == rhs.mimeType
        }
    }

    public struct Entry: Sendable, Equatable {
        public var started: Date
        /// Milliseconds from the request's start to the whole answer.
        public var time: Double
        public var method: String
        /// As recorded: absolute (`http://host/orders?id=1`) or a path with its query.
        public var url: String
        public var request: Message
        public var status: Int
        public var statusText: String
        public var response: Message

        public init(
            started: Date, time: Double, method: String, url: String, request: Message, status: Int,
            statusText: String, response: Message
        ) {
            self.started = started
            self.time = time
            self.method = method
            self.url = url
            self.request = request
            self.status = status
            self.statusText = statusText
            self.response = response
        }

        /// The path and query to send (the URL without scheme and authority).
        public var target: String {
            guard let components = URLComponents(string: self.url), components.host != nil else {
                return self.url.hasPrefix("/") ? self.url : "/" + self.url
            }
            let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            return path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    // MARK: Writing

    public static func document(_ entries: [Entry], creator: String = "strangler") -> JSONValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func headers(_ list: [(name: String, value: String)]) -> JSONValue {
            .array(list.map { .object([("name", .string($0.name)), ("value", .string($0.value))]) })
        }
        func content(_ message: Message) -> [(key: String, value: JSONValue)] {
            let mime = JSONValue.string(message.mimeType ?? "application/octet-stream")
            if message.body.isEmpty { return [("mimeType", mime), ("text", .string(""))] }
            if let text = String(validating: message.body, as: UTF8.self) {
                return [("mimeType", mime), ("text", .string(text))]
            }
            return [
                ("mimeType", mime), ("text", .string(Data(message.body).base64EncodedString())),
                ("encoding", .string("base64")),
            ]
        }
        let items: [JSONValue] = entries.map { entry in
            var request: [(key: String, value: JSONValue)] = [
                ("method", .string(entry.method)), ("url", .string(entry.url)), ("httpVersion", .string("HTTP/1.1")),
                ("cookies", .array([])), ("headers", headers(entry.request.headers)),
                ("queryString", .array(Self.query(of: entry.url))), ("headersSize", .number(-1)),
                ("bodySize", .number(Double(entry.request.body.count))),
            ]
            if !entry.request.body.isEmpty {
                request.append(("postData", .object(content(entry.request))))
            }
            let response: [(key: String, value: JSONValue)] = [
                ("status", .number(Double(entry.status))), ("statusText", .string(entry.statusText)),
                ("httpVersion", .string("HTTP/1.1")), ("cookies", .array([])),
                ("headers", headers(entry.response.headers)),
                ("content", .object([("size", .number(Double(entry.response.body.count)))] + content(entry.response))),
                ("redirectURL", .string("")), ("headersSize", .number(-1)),
                ("bodySize", .number(Double(entry.response.body.count))),
            ]
            return .object([
                ("startedDateTime", .string(formatter.string(from: entry.started))),
                ("time", .number((entry.time * 1000).rounded() / 1000)),
                ("request", .object(request)), ("response", .object(response)), ("cache", .object([])),
                ("timings", .object([("send", .number(0)), ("wait", .number(entry.time)), ("receive", .number(0))])),
            ])
        }
        return .object([
            (
                "log",
                .object([
                    ("version", .string("1.2")),
                    ("creator", .object([("name", .string(creator)), ("version", .string("1"))])),
                    ("entries", .array(items)),
                ])
            )
        ])
    }

    static func query(of url: String) -> [JSONValue] {
        (URLComponents(string: url)?.queryItems ?? []).map {
            .object([("name", .string($0.name)), ("value", .string($0.value ?? ""))])
        }
    }

    // MARK: Reading

    public static func read(_ path: String) throws(Failure) -> [Entry] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure("cannot read \(path): \(error.localizedDescription)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(data))
        } catch {
            throw Failure("\(path) is not JSON: \(error)")
        }
        do {
            return try self.entries(value)
        } catch {
            throw Failure("\(path): \(error.description)")
        }
    }

    public static func entries(_ value: JSONValue) throws(Failure) -> [Entry] {
        guard let items = value["log"]?["entries"]?.arrayValue else {
            throw Failure("$.log.entries: missing (not a HAR file)")
        }
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        var entries: [Entry] = []
        for (index, item) in items.enumerated() {
            let at = "$.log.entries[\(index)]"
            guard let request = item["request"], let method = request["method"]?.stringValue,
                let url = request["url"]?.stringValue
            else { throw Failure("\(at).request: needs method and url") }
            guard method.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5a }), !method.isEmpty else {
                throw Failure("\(at).request.method: \"\(method)\" is not a method")
            }
            let started = item["startedDateTime"]?.stringValue.flatMap { parser.date(from: $0) ?? plain.date(from: $0) }
            let response = item["response"]
            entries.append(
                Entry(
                    started: started ?? Date(timeIntervalSince1970: 0), time: item["time"]?.numberValue ?? 0,
                    method: method, url: url,
                    request: try self.message(request, body: request["postData"], at: "\(at).request"),
                    status: Int(response?["status"]?.numberValue ?? 0),
                    statusText: response?["statusText"]?.stringValue ?? "",
                    response: try self.message(
                        response ?? .object([]), body: response?["content"], at: "\(at).response")
                ))
        }
        return entries
    }

    static func message(_ value: JSONValue, body: JSONValue?, at: String) throws(Failure) -> Message {
        var headers: [(name: String, value: String)] = []
        for (index, header) in (value["headers"]?.arrayValue ?? []).enumerated() {
            guard let name = header["name"]?.stringValue, let text = header["value"]?.stringValue else {
                throw Failure("\(at).headers[\(index)]: needs name and value")
            }
            if name.hasPrefix(":") { continue }  // HTTP/2 pseudo-headers
            headers.append((name, text))
        }
        var bytes: [UInt8] = []
        if let text = body?["text"]?.stringValue {
            if body?["encoding"]?.stringValue == "base64" {
                guard let data = Data(base64Encoded: text) else { throw Failure("\(at): a base64 body that is not") }
                bytes = Array(data)
            } else {
                bytes = Array(text.utf8)
            }
        }
        return Message(headers: headers, body: bytes, mimeType: body?["mimeType"]?.stringValue)
    }
}
