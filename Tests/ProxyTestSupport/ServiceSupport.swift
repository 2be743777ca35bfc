package import Foundation
package import GRDB
package import HTTPTypes
package import Hummingbird
package import HummingbirdTesting
package import JSON
package import Logging
package import Monolith
package import NIOCore
import PostgresSupport
package import ServiceKit
package import Testing
package import Tracing

@testable package import ContactsService

/// An answer reduced to what the monolith and a service must agree on.
package struct Answer: Equatable, CustomStringConvertible {
    package var status: Int
    /// Content-Type, ETag, Location and Content-Length (Date and Server differ by nature).
    package var headers: [String: String]
    package var body: String

    package init(_ response: TestResponse) {
        self.status = Int(response.status.code)
        var headers: [String: String] = [:]
        for name in [HTTPField.Name.contentType, .eTag, .location, .contentLength] {
            headers[name.canonicalName] = response.headers[name]
        }
        self.headers = headers
        self.body = String(buffer: response.body)
    }

    package var json: JSONValue? { try? JSONParser.parse(self.body) }
    package var errorCode: String? { self.json?["error"]?["code"]?.stringValue }

    package var description: String { "\(self.status) \(self.headers.sorted { $0.key < $1.key }) \(self.body)" }

    /// The monolith's answer as the contacts service gives it: every `"title": ""` as `null`, the demo's one deliberate
    /// difference (docs/services.md); Content-Length dropped (the body's length changes with it).
    package var withEmptyTitlesAsNull: Answer {
        guard let json = self.json else { return self }
        func rewrite(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let members):
                .object(
                    members.map { ($0.key, $0.key == "title" && $0.value == .string("") ? .null : rewrite($0.value)) })
            case .array(let items): .array(items.map(rewrite))
            default: value
            }
        }
        var copy = self
        copy.headers["content-length"] = nil
        copy.body = rewrite(json).jsonText
        return copy
    }

    /// The answer with the members at `names` (top level) set to `"*"`, and Content-Length dropped: for
    /// comparing writes whose generated ids and times cannot be equal.
    package func masking(_ names: Set<String>, location: Bool = false) -> Answer {
        var copy = self
        copy.headers["content-length"] = nil
        if location { copy.headers["location"] = nil }
        if let members = self.json?.objectValue {
            copy.body =
                JSONValue.object(members.map { (key: $0.key, value: names.contains($0.key) ? .string("*") : $0.value) })
                .jsonText
        }
        return copy
    }
}

extension TestClientProtocol {
    package func answer(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]
    )
        async throws -> Answer
    {
        var headers = headers
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await self.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }
        ) { Answer($0) }
    }

    /// Creates a record on the monolith and returns its id.
    package func create(
        _ path: String, _ json: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws
        -> String
    {
        let answer = try await self.answer(.post, path, json: json)
        #expect(answer.status == 201, "POST \(path): \(answer)", sourceLocation: sourceLocation)
        return answer.json?["id"]?.stringValue ?? ""
    }
}

/// A live monolith (in-memory database, real socket on a free port) for `body`; its feed is at `feed`.
package func withLiveMonolith<T: Sendable>(
    _ body: @Sendable (_ monolith: any TestClientProtocol, _ feed: FeedEndpoint) async throws -> T
) async throws -> T {
    let app = try await buildMonolithApplication(
        configuration: .init(port: 0, databasePath: nil), logger: Logger(label: "test.monolith"))
    return try await app.test(.live) { client in
        let port = try #require(client.port)
        return try await body(client, FeedEndpoint(host: "localhost", port: port))
    }
}

/// An extracted service (contacts by default) with its own in-memory (or file) database, following `feed`.
package struct ServiceUnderTest: Sendable {
    package let service: ExtractedService
    package let database: ServiceDatabase
    package let consumer: FeedConsumer
    /// Spans for its requests and the events it applies (nil: none).
    package let tracer: (any Tracer)?

    /// With `postgres` (a `postgres://` URL), the service's tables are on PostgreSQL there instead of SQLite.
    package init(
        _ service: ExtractedService = .contacts, feed: any EventFeed, path: String? = nil, postgres: String? = nil,
        pageSize: Int = 500, projection: (any EventProjection)? = nil, tracer: (any Tracer)? = nil
    ) async throws {
        self.service = service
        self.tracer = tracer
        if let postgres {
            self.database = try await service.openDatabase(
                postgres: try StoreLocation.parse(postgres), logger: Logger(label: "test.\(service.name)"))
        } else {
            self.database = try await service.openDatabase(path: path)
        }
        self.consumer = try await FeedConsumer(
            database: self.database, feed: feed, projection: projection ?? service.projection, pageSize: pageSize,
            longPollSeconds: 1,
            logger: Logger(label: "test.\(service.name)"), tracer: tracer)
    }

    package init(
        _ service: ExtractedService = .contacts, feed: FeedEndpoint, path: String? = nil, postgres: String? = nil,
        pageSize: Int = 500, projection: (any EventProjection)? = nil, tracer: (any Tracer)? = nil
    ) async throws {
        try await self.init(
            service, feed: HTTPEventFeed(feed) as any EventFeed, path: path, postgres: postgres, pageSize: pageSize,
            projection: projection, tracer: tracer)
    }

    /// Runs `body` with a client of the service on a real socket (so that its answers are compared with the
    /// live monolith's as they travel, framing headers included).
    package func test<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        let app = Application(
            router: ServiceKit.HeadAsGet(
                self.service.router(database: self.database, sync: self.consumer, tracer: self.tracer)))
        return try await app.test(.live) { client in try await body(client) }
    }

    /// Applies `events` with the service's projection, bypassing the checkpoint (a replay), on either database.
    package func replay(_ events: [FeedEvent]) async throws {
        let projection = self.service.projection
        if let store = self.database.postgres, let projection = projection as? any PostgresEventProjection {
            try await store.transaction(writing: true) { transaction in
                for event in events { try await projection.apply(event, transaction) }
            }
            return
        }
        try await self.database.write { db in
            for event in events { try projection.apply(event, db) }
        }
    }

    /// Every row of the service's tables, for before/after comparisons.
    package func snapshot() async throws -> [String] {
        if let store = self.database.postgres {
            return try await store.transaction(writing: false) { try await $0.snapshot() }
        }
        return try await self.database.read { db in
            var rows: [String] = []
            let tables = try String.fetchAll(
                db,
                sql:
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb%' "
                    + "AND name NOT LIKE 'sqlite%' AND name <> 'sync_checkpoint' ORDER BY name"
            )
            for table in tables {
                rows += try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY id").map { "\(table) \($0)" }
            }
            return rows
        }
    }
}

/// Creates a small CRM on the monolith: two accounts, contacts with every kind of field, a deal, an update
/// and a deletion. Returns the ids the tests use.
package struct SampleCRM: Sendable {
    package var acme: String
    package var globex: String
    package var ada: String
    package var grace: String
    package var linus: String
    package var deleted: String
    package var deal: String

    package static func create(on monolith: any TestClientProtocol) async throws -> SampleCRM {
        let acme = try await monolith.create("/accounts", #"{"name":"Acme","domain":"acme.example.com"}"#)
        let globex = try await monolith.create("/accounts", #"{"name":"Globex"}"#)
        let ada = try await monolith.create(
            "/contacts",
            #"{"accountId":"\#(acme)","firstName":"Ada","lastName":"Lovelace","email":"Ada@Acme.example.com","#
                + #""phone":"+44 (20) 7946-0000","title":"Countess","tags":["vip","math","vip"]}"#
        )
        let grace = try await monolith.create(
            "/contacts",
            #"{"accountId":"\#(acme)","firstName":"Grace \"Amazing\" \\ Hopper","lastName":"Hopper","#
                + #""email":"grace@acme.example.com","title":"Rear Admiral – ✓"}"#
        )
        let linus = try await monolith.create(
            "/contacts",
            #"{"accountId":"\#(globex)","firstName":"Linus","lastName":"","email":"linus@globex.example.com"}"#)
        let deleted = try await monolith.create(
            "/contacts",
            #"{"accountId":"\#(globex)","firstName":"Gone","lastName":"Soon","email":"gone@globex.example.com"}"#)
        let deal = try await monolith.create(
            "/deals",
            #"{"accountId":"\#(acme)","contactId":"\#(ada)","name":"Engine","amount":100000,"currency":"GBP","#
                + #""stage":"proposal"}"#
        )
        let patched = try await monolith.answer(
            .patch, "/contacts/\(grace)", json: #"{"phone":"555-12345","tags":["navy"]}"#)
        #expect(patched.status == 200, "\(patched)")
        let removed = try await monolith.answer(.delete, "/contacts/\(deleted)")
        #expect(removed.status == 204, "\(removed)")
        return SampleCRM(acme: acme, globex: globex, ada: ada, grace: grace, linus: linus, deleted: deleted, deal: deal)
    }
}

/// The `strangler` executable built next to the tests (`swift build` builds it with them).
package enum StranglerExecutable {
    package static let url: URL? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let url = root.appendingPathComponent(".build/debug/strangler")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }()
}
