// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "strangler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strangler", targets: ["strangler"]),
        .library(name: "Monolith", targets: ["Monolith"]),
        .library(name: "StranglerTesting", targets: ["StranglerTesting", "RouteTable", "Diff", "JSON"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        // TLS for the proxy's listener and its upstreams (already in the graph through async-http-client).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // X.509, for the certificates the TLS tests make (already in the graph through swift-nio-extras).
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        // DER values the certificates' extensions are built from (an IP address SAN), swift-certificates' own base.
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        // Structured field values (RFC 9651), for the tests that read the rate-limit fields as a client would (already
        // in the graph through async-http-client).
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", from: "1.7.0"),
        // JSON Web Tokens: the gateway verifies bearer tokens (RS256, ES256, EdDSA) with a key set's keys.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        // PostgreSQL: the shared store several proxies route by (`strangler proxy --store postgres://…`).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // YAML, for OpenAPI documents (`strangler init --openapi`).
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Benchmarks (`swift package benchmark`): allocations and CPU time per forwarded request. Naming the trait
        // keeps the malloc interposer and drops the default RuntimeInterposer (a package these machines do not have).
        // Distributed tracing: spans through the Tracing API (already in the graph through Hummingbird), exported over
        // OTLP/HTTP by swift-otel when the standard OTEL_* variables ask for it. The gRPC exporter's trait is left out
        // (it would build gRPC and HTTP/2 into every binary); OTEL_EXPORTER_OTLP_PROTOCOL=grpc is refused by name.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // Relaxed atomic counters for the data plane's running totals (already in the graph through swift-nio).
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-service-context.git", from: "1.5.1"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // W3C trace context for any Hummingbird application: a server span per request (with a tracer), the request's
        // traceparent for the outbox rows its transaction writes, and consumer spans linked to an event's traceparent.
        // Generic: it knows nothing of the toolkit (the monolith uses it as it would any tracing library).
        .target(
            name: "HTTPTracing",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The legacy CRM that the toolkit migrates. Self-contained: of the toolkit's targets it imports only
        // HTTPTracing, a generic middleware.
        .target(
            name: "Monolith",
            dependencies: [
                "HTTPTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Monolith",
            swiftSettings: swiftSettings
        ),
        // A strict JSON parser and value tree (routes.json, admin API; the diff engine's input later). Pure.
        .target(name: "JSON", swiftSettings: swiftSettings),
        // The diff engine: compares two responses (status, chosen headers, JSON bodies structurally). Pure: no I/O.
        // Redaction's keyed hashes are HMAC-SHA256 (swift-crypto): computation only, still no I/O.
        .target(
            name: "Diff",
            dependencies: ["JSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The diff store: per-route counters, signatures and samples of shadow comparisons, in SQLite (WAL).
        .target(
            name: "DiffStore",
            dependencies: [
                "Diff",
                "JSON",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP/1.1 wire rules the data plane and the shadow share: the strict head parser, body framing,
        // chunked tracking, safe and idempotent methods. Pure: no I/O (NIOCore's ByteBuffer only).
        .target(
            name: "HTTP1",
            dependencies: ["JSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // routes.json: schema, validation, path templates and matching. Pure: no I/O.
        .target(name: "RouteTable", dependencies: ["HTTP1", "JSON"], swiftSettings: swiftSettings),
        // The data plane: listener, connection handling, forwarding, upstream pool, shadowing, the live table's
        // snapshot and metrics. Neither Hummingbird nor GRDB: shadowed exchanges leave through `ShadowSink`.
        .target(
            name: "Proxy",
            dependencies: [
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "Diff",
                "HTTP1",
                "JSON",
                "RouteTable",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The control plane: route table changes (stage, promote, rollback, undo, triage, ignore rules), the audit log,
        // the evidence gates and the evidence they judge. Typed results and errors: no HTTP status, no JSON document.
        .target(
            name: "ControlPlane",
            dependencies: [
                "Diff",
                "DiffStore",
                "JSON",
                "RouteTable",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Diff reports: the report model, built from the diff store and the table, and its renderers (text is the
        // CLI's; JSON, Markdown, HTML, JUnit here).
        .target(
            name: "Reports",
            dependencies: ["ControlPlane", "Diff", "DiffStore", "JSON", "RouteTable"],
            swiftSettings: swiftSettings
        ),
        // The admin API (Hummingbird): the one place where the control plane's typed outcomes become statuses and
        // JSON bodies.
        .target(
            name: "AdminAPI",
            dependencies: [
                "ControlPlane",
                "Diff",
                "DiffStore",
                "HTTP1",
                "JSON",
                "Reports",
                "RouteTable",
                "StranglerTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Where a PostgreSQL database is (`postgres://USER@HOST:PORT/DB`) and how to connect to it: what the shared
        // store and a service on PostgreSQL (`strangler service leads --db postgres://…`) have in common.
        .target(
            name: "PostgresSupport",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The shared store on PostgreSQL (`--store postgres://…`): the route table's versions and audit log, the
        // instances that route by it, committed as compare-and-sets and announced with LISTEN/NOTIFY.
        .target(
            name: "SharedStore",
            dependencies: [
                "ControlPlane",
                "PostgresSupport",
                "DiffStore",
                "JSON",
                "RouteTable",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The running proxy process: the data plane, the shadow recorder (comparisons into the diff store), the
        // admin API and the routes.json watcher, as services of one ServiceGroup.
        .target(
            name: "Gateway",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "AdminAPI",
                .product(name: "CompressNIO", package: "compress-nio"),
                "ControlPlane",
                "Diff",
                "DiffStore",
                "JSON",
                "Proxy",
                "RouteTable",
                "SharedStore",
                "PostgresSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the extracted services share: configuration, database, error envelope, pagination, dry-run,
        // health, and the feed consumer that keeps their databases in sync with the monolith.
        .target(
            name: "ServiceKit",
            dependencies: [
                "HTTPTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "HTTP1",
                "JSON",
                "PostgresSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The contacts service: the monolith's contacts endpoints on its own database, synced from the feed.
        .target(
            name: "ContactsService",
            dependencies: [
                "JSON",
                "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The leads service: the monolith's lead endpoints (not conversion) on its own database, synced from the feed.
        .target(
            name: "LeadsService",
            dependencies: [
                "JSON",
                "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The deals service: the monolith's deal endpoints and pipeline on its own database, synced from the feed.
        .target(
            name: "DealsService",
            dependencies: [
                "JSON",
                "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The both-paths test harness: scenarios run against the monolith, the services and the proxy, compared under
        // each route's diff rules; fixtures replayed. No XCTest or Testing, so it works with both.
        .target(
            name: "StranglerTesting",
            dependencies: [
                "Diff",
                "HTTP1",
                "JSON",
                "RouteTable",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tracing's backend: swift-otel's OTLP exporter, made from the OTEL_* environment (off unless it names an
        // endpoint), for the proxy, the monolith and the services, which see only the Tracing API.
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `strangler` subcommands, in a library so that tests can call them.
        .target(
            name: "StranglerCommands",
            dependencies: [
                "Telemetry",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "Diff",
                "DiffStore",
                "JSON",
                "ContactsService",
                "DealsService",
                "LeadsService",
                "Monolith",
                "AdminAPI",
                "ControlPlane",
                "Gateway",
                "SharedStore",
                "PostgresSupport",
                "Reports",
                "RouteTable",
                "ServiceKit",
                "StranglerTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The thin executable.
        .executableTarget(
            name: "strangler",
            dependencies: [
                "StranglerCommands",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings,
            // Release builds link the Swift runtime and Foundation statically (as `--static-swift-stdlib` does):
            // calls into the runtime (retain, release, allocation) are direct instead of through the dynamic
            // linker's tables, which takes 9–11% off the proxy's user time per request, and start-up loses
            // most of its symbol binding (`strangler diff` on a small pair: ~24 ms -> ~15 ms).
            // The modules are compiled as usual, so the static Foundation's own dependencies are named here (what
            // `--static-swift-stdlib`'s compile flag would have had each module ask for).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-static-stdlib", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims",
                        "-l_FoundationCollections",
                    ],
                    .when(platforms: [.linux], configuration: .release))
            ]
        ),
        // The monolith library: its endpoints, feed, seed and database files, in process and on a real socket.
        .testTarget(
            name: "MonolithTests",
            dependencies: [
                "Monolith",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Several proxies on one PostgreSQL store (a throw-away cluster the tests start, or STRANGLER_TEST_POSTGRES).
        .testTarget(
            name: "ScaleOutTests",
            dependencies: [
                "AdminAPI",
                "Diff",
                "DiffStore",
                "ControlPlane",
                "Gateway",
                "JSON",
                "Proxy",
                "ProxyTestSupport",
                "RouteTable",
                "SharedStore",
                "PostgresSupport",
                "Reports",
                "StranglerCommands",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The contacts, leads and deals services against the live monolith (answers, sync, kill -9), and reverse sync.
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "PostgresSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "ContactsService",
                "DealsService",
                "JSON",
                "LeadsService",
                "Monolith",
                "ProxyTestSupport",
                "ServiceKit",
                "StranglerTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // ServiceKit's generic pieces on their own: configuration, the feed client, the database, the sync tables.
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "JSON",
                "ServiceKit",
                "StranglerTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParityTests",
            dependencies: [
                "PostgresSupport",
                "ContactsService",
                "DealsService",
                "Diff",
                "DiffStore",
                "JSON",
                "LeadsService",
                "Monolith",
                "Gateway",
                "Proxy",
                "ProxyTestSupport",
                "RouteTable",
                "ServiceKit",
                "StranglerCommands",
                "StranglerTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The JSON parser, the writer and text edits that keep formatting.
        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HTTP1Tests",
            dependencies: ["HTTP1", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RouteTableTests",
            dependencies: ["RouteTable", "JSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DiffTests",
            dependencies: ["Diff", "JSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DiffStoreTests",
            dependencies: [
                "Diff",
                "DiffStore",
                "JSON",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the gateway tests share: a proxy with test upstreams on port 0, raw HTTP clients, a report fixture;
        // and what the service and CLI tests share: a live monolith, a service following its feed, a sample CRM.
        .target(
            name: "ProxyTestSupport",
            dependencies: [
                "Telemetry",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "AdminAPI",
                "ContactsService",
                "ControlPlane",
                "Diff",
                "DiffStore",
                "Gateway",
                "JSON",
                "Monolith",
                "Proxy",
                "Reports",
                "RouteTable",
                "ServiceKit",
                "SharedStore",
                "PostgresSupport",
                "StranglerTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/ProxyTestSupport",
            swiftSettings: swiftSettings
        ),
        // The data plane, through real sockets and without (the connection state machine, EmbeddedChannel).
        .testTarget(
            name: "ProxyTests",
            dependencies: [
                "Telemetry",
                "Monolith",
                "ServiceKit",
                "ContactsService",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "CompressNIO", package: "compress-nio"),
                "Gateway",
                "HTTP1",
                "JSON",
                "Proxy",
                "ProxyTestSupport",
                "RouteTable",
                "StranglerTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Route changes, gates, evidence and the audit log: in-process on a standalone table, and through a proxy.
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "AdminAPI",
                "ControlPlane",
                "DiffStore",
                "Gateway",
                "JSON",
                "Proxy",
                "ProxyTestSupport",
                "RouteTable",
                "StranglerTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The report model and its renderers.
        .testTarget(
            name: "ReportsTests",
            dependencies: [
                "ControlPlane",
                "DiffStore",
                "JSON",
                "ProxyTestSupport",
                "Reports",
                "RouteTable",
            ],
            swiftSettings: swiftSettings
        ),
        // A whole migration in front of an application the test builds itself (not the demo CRM).
        .testTarget(
            name: "OwnMonolithTests",
            dependencies: [
                "Gateway",
                "JSON",
                "Proxy",
                "ProxyTestSupport",
                "RouteTable",
                "ServiceKit",
                "StranglerCommands",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The data plane's cost per forwarded request (`swift package benchmark --target ProxyBenchmarks`): an
        // in-process origin, the proxy in front of it and a keep-alive client, on loopback sockets.
        .executableTarget(
            name: "ProxyBenchmarks",
            dependencies: [
                "Proxy",
                "RouteTable",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/ProxyBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The `strangler` commands (monolith, service, up, traffic, diff, reconcile, route, report, shadow, proxy…),
        // against files, a live monolith and services, a running proxy and the built executable.
        .testTarget(
            name: "StranglerCommandsTests",
            dependencies: [
                "Diff",
                "LeadsService",
                "PostgresSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "AdminAPI",
                "ControlPlane",
                "DiffStore",
                "Gateway",
                "JSON",
                "Monolith",
                "Proxy",
                "ProxyTestSupport",
                "Reports",
                "RouteTable",
                "ServiceKit",
                "StranglerCommands",
                "StranglerTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
