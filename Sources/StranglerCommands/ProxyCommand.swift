public import ArgumentParser
import ControlPlane
import Foundation
import Gateway
import Logging
import PostgresSupport
import Proxy
import Reports
import RouteTable
import SharedStore
import Telemetry
import UnixSignals

/// `strangler proxy`: runs the routing proxy in front of the monolith.
public struct ProxyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the routing proxy: each route of routes.json goes to the monolith or its service by its stage.",
        discussion: """
            routes.json is validated on start (every problem is listed, and the proxy does not start), then watched: a \
            valid edit is live within a second, an invalid one is refused and the last good table stays. The admin API \
            listens on 127.0.0.1 only and needs the bearer token from STRANGLER_ADMIN_TOKEN or <data>/admin-token \
            (created on first start, mode 0600). SIGTERM or Ctrl-C drains the requests in flight, then exits.

            At start the soft limit on open files is raised to the hard limit; --max-connections defaults to half of \
            that limit once a reserve (256, the admin API's connections, the shadows in flight) is set aside. Over it, \
            new client connections are closed at once and counted.

            TLS: with --tls-cert and --tls-key (PEM; the certificate file may be a chain, leaf first) --port speaks \
            HTTPS (ALPN http/1.1); add --tls-port to serve plain HTTP on --port and HTTPS on --tls-port side by side. \
            The certificate and key are checked at start (a file that cannot be served stops the start, naming it), \
            then reread every second and on SIGHUP: a change that loads is served to new connections, connections \
            already open keep theirs, and one that does not load is logged and refused while the certificate in force \
            stays. --admin-tls-cert and --admin-tls-key do the same for the admin API, whose URL in <data>/proxy.json \
            becomes https://127.0.0.1:PORT; the CLI trusts its CA with --admin-ca or STRANGLER_ADMIN_CA (docs/tls.md).

            Shared store (docs/scale-out.md): with --store (or STRANGLER_STORE) the route table, its versions \
            and its audit log live in PostgreSQL, created and migrated at start; a store that holds no table yet \
            is seeded from --routes. Every proxy on the store routes by the same table: a change made through \
            any of them is a compare-and-set on the table's version (a stale If-Match is 412 everywhere) and \
            reaches the others within a second (LISTEN/NOTIFY, and a re-read every --store-poll). Each proxy \
            reports itself every --instance-report (strangler instances). While the store does not answer, the \
            proxy routes by the last table and refuses changes (503 store_unavailable, after --store-timeout). \
            The shadow evidence goes to the store too (counters, signatures, pointers, noise, samples redacted \
            with the store's one key, triage), and the gates read reconcile records there (strangler reconcile \
            --store); --data keeps this proxy's token and its own counts. strangler store import|export moves a \
            table and its evidence. Give the password in PGPASSWORD rather than in the URL, where `ps` shows it.

            Example:
              strangler proxy --routes routes.json --port 8080 --admin-port 8090 --data .strangler
              strangler proxy --port 8080 --tls-port 8443 --tls-cert chain.pem --tls-key key.pem
              strangler proxy --store postgres://strangler@db.internal:5432/strangler --instance-id proxy-a
            """
    )

    @Option(help: "The route table to serve and watch.")
    public var routes: String = "routes.json"

    @Option(help: "Port for client traffic.")
    public var port: Int = 8080

    @Option(help: "Port of the admin API (127.0.0.1 only).")
    public var adminPort: Int = 8090

    @Option(
        help: ArgumentHelp(
            "Serve HTTPS with this PEM certificate, or chain (leaf first); needs --tls-key.", valueName: "file"))
    public var tlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --tls-cert (not encrypted).", valueName: "file"))
    public var tlsKey: String?

    @Option(help: "Serve HTTPS on this port and plain HTTP on --port (without it, --port speaks HTTPS).")
    public var tlsPort: Int?

    @Option(
        help: ArgumentHelp(
            "Serve the admin API over HTTPS with this PEM certificate; needs --admin-tls-key.", valueName: "file"))
    public var adminTlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --admin-tls-cert.", valueName: "file"))
    public var adminTlsKey: String?

    @Option(help: "Address to listen on for client traffic.")
    public var host: String = "127.0.0.1"

    @Option(help: "Data directory (admin token, audit log, diff store).")
    public var data: String = ".strangler"

    @Option(
        help: ArgumentHelp(
            "Keep the route table, its versions and audit log in this PostgreSQL database, shared by every proxy on it "
                + "(default: STRANGLER_STORE; without either, routes.json and the data directory).",
            valueName: "postgres://user@host:port/db"))
    public var store: String?

    @Option(
        help: ArgumentHelp(
            "This proxy's name among the instances on the store (default: HOST:ADMIN-PORT).", valueName: "id"))
    public var instanceId: String?

    @Option(
        help: ArgumentHelp(
            "How often the table is re-read from the store, in case a notification was missed.",
            valueName: "duration"))
    public var storePoll: String = "5s"

    @Option(help: ArgumentHelp("How often this proxy reports itself to the store.", valueName: "duration"))
    public var instanceReport: String = "2s"

    @Option(
        help: ArgumentHelp(
            "How long one operation on the store may take before it counts as unreachable (changes are then refused).",
            valueName: "duration"))
    public var storeTimeout: String = "3s"

    @Option(help: ArgumentHelp("Largest request header block, in bytes (larger: 431).", valueName: "bytes"))
    public var maxHeaderBytes: Int = 64 * 1024

    @Option(help: ArgumentHelp("Largest request body, in bytes (larger: 413).", valueName: "bytes"))
    public var maxBodyBytes: Int = 10 * 1024 * 1024

    @Option(help: "Shadows in flight at once in coexist (the excess is dropped and counted).")
    public var maxShadows: Int = 256

    @Option(
        help: ArgumentHelp(
            "Largest body kept to compare a shadowed exchange (larger: counted as skipped).", valueName: "bytes"))
    public var maxCompareBytes: Int = 1024 * 1024

    @Option(
        help: ArgumentHelp(
            "Share of shadowed GETs asked twice of the answering side to learn noise (0–1).", valueName: "share"))
    public var noiseShare: Double = 0.01

    @Option(help: "Samples kept per route and mismatch signature in the diff store.")
    public var samplesPerSignature: Int = 20

    @Option(help: "Event-loop threads (default: one per core).")
    public var threads: Int?

    @Option(
        help: ArgumentHelp(
            "Client connections open at once; more are closed at once (default: from the open-files limit, see above).",
            valueName: "count"))
    public var maxConnections: Int?

    @Option(help: ArgumentHelp("Connections open at once on the admin API (its own cap).", valueName: "count"))
    public var adminMaxConnections: Int = 64

    @Option(
        help: ArgumentHelp(
            "Deadline for a whole request head, from its first byte (past it: 408).", valueName: "duration"))
    public var headTimeout: String = "10s"

    @Option(
        help: ArgumentHelp(
            "Least request-body rate, in bytes per second over each --body-rate-window (slower: 408; 0: none).",
            valueName: "bytes"))
    public var minBodyRate: Int = 1024

    @Option(help: ArgumentHelp("The window over which --min-body-rate is measured.", valueName: "duration"))
    public var bodyRateWindow: String = "10s"

    @Option(
        help: ArgumentHelp(
            "Where reports link a mismatch sample's trace, {traceId} standing for its id "
                + "(http://localhost:16686/trace/{traceId}; default: STRANGLER_TRACE_URL; without either, trace ids "
                + "are shown, not linked).",
            valueName: "url"))
    public var traceUrl: String?

    public init() {}

    public func validate() throws {
        try PortFlags.validate(
            [("--port", self.port), ("--admin-port", self.adminPort)]
                + (self.tlsPort.map { [("--tls-port", $0)] } ?? []))
        _ = try Self.certificateFiles(certificate: ("--tls-cert", self.tlsCert), key: ("--tls-key", self.tlsKey))
        _ = try Self.certificateFiles(
            certificate: ("--admin-tls-cert", self.adminTlsCert), key: ("--admin-tls-key", self.adminTlsKey))
        if self.tlsPort != nil, self.tlsCert == nil {
            throw ValidationError("--tls-port needs --tls-cert and --tls-key")
        }
        if let tlsPort, tlsPort == self.port, tlsPort != 0 {
            throw ValidationError(
                "--tls-port must differ from --port (\(tlsPort)); without --tls-port, --port speaks TLS")
        }
        guard self.maxHeaderBytes >= 1024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
        guard self.maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must be 0 or more") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be from 1 to 256") }
        guard self.maxShadows >= 0 else {
            throw ValidationError("--max-shadows must be 0 or more, not \(self.maxShadows)")
        }
        guard self.maxCompareBytes >= 0 else { throw ValidationError("--max-compare-bytes must be 0 or more") }
        guard (0...1).contains(self.noiseShare) else {
            throw ValidationError("--noise-share must be from 0 to 1, not \(self.noiseShare)")
        }
        guard self.samplesPerSignature >= 0 else { throw ValidationError("--samples-per-signature must be 0 or more") }
        if let maxConnections, maxConnections < 1 {
            throw ValidationError("--max-connections must be 1 or more, not \(maxConnections)")
        }
        guard self.adminMaxConnections >= 1 else {
            throw ValidationError("--admin-max-connections must be 1 or more, not \(self.adminMaxConnections)")
        }
        if let store = self.storeURL {
            _ = try StoreFlag.location(store, flag: self.store == nil ? "STRANGLER_STORE" : "--store")
        }
        if let instanceId, instanceId.isEmpty || instanceId.count > 200 || instanceId.contains(where: \.isNewline) {
            throw ValidationError("--instance-id must be 1 to 200 characters on one line")
        }
        for (name, text) in [
            ("--head-timeout", self.headTimeout), ("--body-rate-window", self.bodyRateWindow),
            ("--store-poll", self.storePoll), ("--instance-report", self.instanceReport),
            ("--store-timeout", self.storeTimeout),
        ] {
            guard let duration = DurationText.parse(text), duration > .zero else {
                throw ValidationError("\(name) must be a duration such as \"10s\" or \"500ms\", not \"\(text)\"")
            }
        }
        if let template = self.traceURLTemplate, case .failure(let problem) = TraceURLTemplate.check(template) {
            throw ValidationError(
                "\(self.traceUrl == nil ? "STRANGLER_TRACE_URL" : "--trace-url") \(problem) (\(template))")
        }
        guard self.minBodyRate >= 0 else {
            throw ValidationError("--min-body-rate must be 0 or more, not \(self.minBodyRate)")
        }
    }

    /// A certificate and its key, both given or neither (nil); one without the other is a `ValidationError`.
    static func certificateFiles(
        certificate: (flag: String, path: String?), key: (flag: String, path: String?)
    ) throws -> TLSCertificateFiles? {
        switch (certificate.path, key.path) {
        case (nil, nil): return nil
        case (let certificatePath?, let keyPath?):
            guard !certificatePath.isEmpty, !keyPath.isEmpty else {
                throw ValidationError("\(certificate.flag) and \(key.flag) must name files")
            }
            return TLSCertificateFiles(certificatePath: certificatePath, keyPath: keyPath)
        case (_?, nil): throw ValidationError("\(certificate.flag) needs \(key.flag) (the certificate's private key)")
        case (nil, _?):
            throw ValidationError("\(key.flag) needs \(certificate.flag) (the certificate it is the key of)")
        }
    }

    /// `--store`, else `STRANGLER_STORE` (empty: none).
    var storeURL: String? { StoreFlag.url(self.store) }

    /// `--trace-url`, else `STRANGLER_TRACE_URL` (empty: none).
    var traceURLTemplate: String? {
        let text = self.traceUrl ?? ProcessInfo.processInfo.environment["STRANGLER_TRACE_URL"]
        return text?.isEmpty == false ? text : nil
    }

    /// The proxy's configuration from the flags (`maxConnections` nil: derived from the file-descriptor limit at
    /// start).
    var proxyConfiguration: ProxyConfiguration {
        var configuration = ProxyConfiguration()
        configuration.routesPath = self.routes
        configuration.port = self.port
        configuration.adminPort = self.adminPort
        configuration.host = self.host
        configuration.dataDirectory = self.data
        configuration.store = self.storeURL
        configuration.instanceID = self.instanceId
        configuration.storePollInterval = DurationText.parse(self.storePoll) ?? configuration.storePollInterval
        configuration.instanceReportInterval =
            DurationText.parse(self.instanceReport) ?? configuration.instanceReportInterval
        configuration.storeTimeout = DurationText.parse(self.storeTimeout) ?? configuration.storeTimeout
        configuration.maxHeaderBytes = self.maxHeaderBytes
        configuration.maxBodyBytes = self.maxBodyBytes
        configuration.threads = self.threads
        configuration.maxShadowsInFlight = self.maxShadows
        configuration.maxCompareBytes = self.maxCompareBytes
        configuration.noiseShare = self.noiseShare
        configuration.samplesPerSignature = self.samplesPerSignature
        configuration.maxConnections = self.maxConnections
        configuration.adminMaxConnections = self.adminMaxConnections
        configuration.headTimeout = DurationText.parse(self.headTimeout) ?? configuration.headTimeout
        configuration.minBodyRate = self.minBodyRate
        configuration.bodyRateWindow = DurationText.parse(self.bodyRateWindow) ?? configuration.bodyRateWindow
        configuration.tls = try? Self.certificateFiles(certificate: ("", self.tlsCert), key: ("", self.tlsKey))
        configuration.tlsPort = self.tlsPort
        configuration.traceURL = self.traceURLTemplate
        configuration.adminTLS = try? Self.certificateFiles(
            certificate: ("", self.adminTlsCert), key: ("", self.adminTlsKey))
        return configuration
    }

    public func run() async throws {
        // The process's own limit, raised before the default connection cap is derived from it.
        FileDescriptorLimit.raiseSoftLimit()
        var configuration = self.proxyConfiguration
        let logger = Logger(label: "strangler.proxy")
        if let tracing = try CommandTracing.backend(command: "proxy", defaultServiceName: "strangler", logger: logger) {
            configuration.tracing = (tracing.tracer, tracing.service)
        }
        let proxy: ProxyApplication
        do {
            proxy = try await ProxyApplication.start(
                configuration: configuration, logger: logger, reloadSignals: [.sighup])
        } catch let error as StoreLocation.Invalid {
            FileHandle.standardError.write(Data("strangler proxy: --store: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as SharedStoreFailure {
            FileHandle.standardError.write(Data("strangler proxy: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as TLSCertificateError {
            FileHandle.standardError.write(Data("strangler proxy: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as RouteTableError {
            let source =
                configuration.store.map {
                    "the table in the store " + ((try? StoreLocation.parse($0).description) ?? $0)
                } ?? self.routes
            FileHandle.standardError.write(Data("strangler proxy: \(source): \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as DataDirectoryInUse {
            FileHandle.standardError.write(Data("strangler proxy: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as ProxyPresence.Malformed {
            FileHandle.standardError.write(Data("strangler proxy: \(error)\n".utf8))
            throw ExitCode(2)
        }
        try await proxy.runWithSignals()
    }
}
