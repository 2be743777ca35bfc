package import NIOConcurrencyHelpers
package import NIOCore
import NIOHTTP1
import NIOPosix
package import NIOSSL

/// One instance of a test upstream, on 127.0.0.1 and a port of its own (TLS with a context): it answers
/// `{"instance": NAME, "path": PATH}` (200), or as its `mode` says, and `GET /healthz` with `healthStatus`. It records
/// every request it read, and `stop()` closes it and every connection to it (an instance that dies).
package final class InstanceOrigin: Sendable {
    package enum Mode: Sendable {
        /// 200 with its name.
        case answer
        /// 500 to everything but `/healthz`.
        case fail
        /// Closes the connection on a request's head, answering nothing (a reset before any answer byte).
        case reset
        /// Holds each answer until `releaseHeld()`.
        case hold
    }

    package let name: String
    package let port: Int
    /// `http://HOST:PORT`, or `https://…` with TLS.
    package let url: String
    private let mode: NIOLockedValueBox<Mode>
    private let health: NIOLockedValueBox<Int>
    /// Every request read (method and target), health checks included, in order.
    private let requests: NIOLockedValueBox<[(method: String, target: String)]>
    private let server: any Channel
    private let children: NIOLockedValueBox<[any Channel]>
    private let held: NIOLockedValueBox<[@Sendable () -> Void]>

    private init(
        name: String, port: Int, url: String, mode: NIOLockedValueBox<Mode>, health: NIOLockedValueBox<Int>,
        requests: NIOLockedValueBox<[(method: String, target: String)]>, server: any Channel,
        children: NIOLockedValueBox<[any Channel]>, held: NIOLockedValueBox<[@Sendable () -> Void]>
    ) {
        self.name = name
        self.port = port
        self.url = url
        self.mode = mode
        self.health = health
        self.requests = requests
        self.server = server
        self.children = children
        self.held = held
    }

    /// Starts listening on a free port of `host` (`localhost` binds what the name resolves to first, as the proxy
    /// connects to).
    package static func start(
        _ name: String, mode: Mode = .answer, tls: NIOSSLContext? = nil, host: String = "127.0.0.1"
    ) async throws -> InstanceOrigin {
        let children = NIOLockedValueBox<[any Channel]>([])
        let held = NIOLockedValueBox<[@Sendable () -> Void]>([])
        let modeBox = NIOLockedValueBox(mode)
        let health = NIOLockedValueBox(200)
        let requests = NIOLockedValueBox<[(method: String, target: String)]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                children.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(
                        Handler(name: name, mode: modeBox, health: health, requests: requests, held: held))
                }
            }
            .bind(host: host, port: 0).get()
        let port = server.localAddress?.port ?? 0
        return InstanceOrigin(
            name: name, port: port, url: "\(tls == nil ? "http" : "https")://\(host):\(port)",
            mode: modeBox, health: health, requests: requests, server: server, children: children, held: held)
    }

    /// Sets how it answers from now on.
    package func setMode(_ mode: Mode) {
        self.mode.withLockedValue { $0 = mode }
    }

    /// Sets what `GET /healthz` answers.
    package func setHealth(_ status: Int) {
        self.health.withLockedValue { $0 = status }
    }

    /// The requests read so far, health checks left out.
    package var served: [(method: String, target: String)] {
        self.requests.withLockedValue { $0 }.filter { $0.target != "/healthz" }
    }

    /// The health checks read so far.
    package var healthChecks: Int {
        self.requests.withLockedValue { $0 }.filter { $0.target == "/healthz" }.count
    }

    /// Answers every held request.
    package func releaseHeld() {
        for answer in self.held.withLockedValue({ list in
            defer { list = [] }
            return list
        }) { answer() }
    }

    /// The number of requests held now.
    package var heldCount: Int { self.held.withLockedValue { $0.count } }

    /// Connections it accepted, all told (closed ones included).
    package var connectionsAccepted: Int { self.children.withLockedValue { $0.count } }

    /// Connections open to it now.
    package var connectionsOpen: Int { self.children.withLockedValue { $0 }.filter(\.isActive).count }

    /// Stops listening and closes every connection: connecting to it is refused from now on.
    package func stop() async {
        try? await self.server.close()
        for channel in self.children.withLockedValue({ $0 }) { try? await channel.close() }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let name: String
        let mode: NIOLockedValueBox<Mode>
        let health: NIOLockedValueBox<Int>
        let requests: NIOLockedValueBox<[(method: String, target: String)]>
        let held: NIOLockedValueBox<[@Sendable () -> Void]>
        private var target = "/"

        init(
            name: String, mode: NIOLockedValueBox<Mode>, health: NIOLockedValueBox<Int>,
            requests: NIOLockedValueBox<[(method: String, target: String)]>,
            held: NIOLockedValueBox<[@Sendable () -> Void]>
        ) {
            self.name = name
            self.mode = mode
            self.health = health
            self.requests = requests
            self.held = held
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.target = head.uri
                self.requests.withLockedValue { $0.append((head.method.rawValue, head.uri)) }
                if head.uri != "/healthz", self.mode.withLockedValue({ $0 }) == .reset { context.close(promise: nil) }
            case .body:
                break
            case .end:
                if self.target == "/healthz" {
                    self.answer(context, status: self.health.withLockedValue { $0 }, body: "{}")
                    return
                }
                let body = #"{"instance":"\#(self.name)","path":"\#(self.target)"}"#
                switch self.mode.withLockedValue({ $0 }) {
                case .answer: self.answer(context, status: 200, body: body)
                case .fail: self.answer(context, status: 500, body: body)
                case .reset: context.close(promise: nil)
                case .hold:
                    let loop = context.eventLoop
                    let bound = NIOLoopBound((self, context), eventLoop: loop)
                    self.held.withLockedValue {
                        $0.append { loop.execute { bound.value.0.answer(bound.value.1, status: 200, body: body) } }
                    }
                }
            }
        }

        func answer(_ context: ChannelHandlerContext, status: Int, body: String) {
            let head = HTTPResponseHead(
                version: .http1_1, status: HTTPResponseStatus(statusCode: status),
                headers: ["content-type": "application/json", "content-length": "\(body.utf8.count)"])
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
