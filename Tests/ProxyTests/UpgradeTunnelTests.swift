import Foundation
import JSON
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import ProxyTestSupport
import RouteTable
import Testing

@testable import Gateway

/// A WebSocket echo server on raw NIO: it answers the handshake (the RFC 6455 sample key's accept value, the only key
/// the tests send) and each masked text frame with an unmasked one, `NAME: text`; `GET /refuse` is answered 426
/// without switching. It counts the connections it upgraded and those that closed.
final class EchoServer: Sendable {
    let name: String
    let upgraded = NIOLockedValueBox(0)
    let closed = NIOLockedValueBox(0)
    let channel: any Channel
    var port: Int { self.channel.localAddress?.port ?? 0 }

    final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let server: EchoServer
        var buffer: [UInt8] = []
        var switched = false
        init(server: EchoServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.buffer += self.unwrapInboundIn(data).readableBytesView
            if !self.switched {
                guard
                    let end = self.buffer.indices.first(where: {
                        $0 + 3 < self.buffer.count && self.buffer[$0..<($0 + 4)] == [13, 10, 13, 10]
                    })
                else { return }
                let head = String(decoding: self.buffer[..<end], as: UTF8.self)
                self.buffer.removeFirst(end + 4)
                if head.hasPrefix("GET /refuse ") {
                    let answer =
                        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 15\r\n"
                        + "Connection: close\r\n\r\nupgrade refused"
                    context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
                    return
                }
                guard head.lowercased().contains("upgrade: websocket") else { return }
                self.switched = true
                self.server.upgraded.withLockedValue { $0 += 1 }
                let answer =
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
            }
            // Masked frames with short payloads: [0x81, 0x80 | length, mask×4, payload].
            while self.buffer.count >= 6 {
                let length = Int(self.buffer[1] & 0x7f)
                guard self.buffer.count >= 6 + length else { return }
                let mask = Array(self.buffer[2..<6])
                let payload = self.buffer[6..<(6 + length)].enumerated().map { $0.element ^ mask[$0.offset % 4] }
                self.buffer.removeFirst(6 + length)
                let reply = Array("\(self.server.name): \(String(decoding: payload, as: UTF8.self))".utf8)
                context.writeAndFlush(
                    self.wrapOutboundOut(ByteBuffer(bytes: [0x81, UInt8(reply.count)] + reply)), promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if self.switched { self.server.closed.withLockedValue { $0 += 1 } }
        }
    }

    private init(name: String, channel: any Channel) {
        self.name = name
        self.channel = channel
    }

    static func start(name: String) async throws -> EchoServer {
        let box = NIOLockedValueBox<EchoServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let server = box.withLockedValue({ $0 }) else { return }
                    try channel.pipeline.syncOperations.addHandler(Echo(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = EchoServer(name: name, channel: channel)
        box.withLockedValue { $0 = server }
        return server
    }

    func stop() async { try? await self.channel.close() }
}

/// A masked client text frame (RFC 6455 §5.2), short payloads only.
func clientFrame(_ text: String) -> [UInt8] {
    let payload = Array(text.utf8)
    let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    return [0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
}

/// The text of the server's (unmasked) text frames in `bytes`, after the 101 head.
func serverTexts(_ bytes: [UInt8]) -> [String] {
    guard let end = bytes.indices.first(where: { $0 + 3 < bytes.count && bytes[$0..<($0 + 4)] == [13, 10, 13, 10] })
    else { return [] }
    var index = end + 4
    var texts: [String] = []
    while index + 2 <= bytes.count {
        let length = Int(bytes[index + 1] & 0x7f)
        guard index + 2 + length <= bytes.count else { break }
        texts.append(String(decoding: bytes[(index + 2)..<(index + 2 + length)], as: UTF8.self))
        index += 2 + length
    }
    return texts
}

@Suite("Proxy: WebSocket and other protocol upgrades are tunnelled")
struct UpgradeTunnelTests {
    static let handshake =
        "GET /ws HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    static func routes(monolith: Int, service: Int, stage: String) -> String {
        """
        { "monolith": "http://127.0.0.1:\(monolith)", "services": { "chat": "http://127.0.0.1:\(service)" },
          "routes": [ { "id": "chat.ws", "method": "GET", "path": "/ws", "service": "chat", "stage": "\(stage)" },
                      { "id": "chat.refuse", "method": "GET", "path": "/refuse", "service": "chat", "stage": "\(stage)" } ] }
        """
    }

    static func withEchoes(
        stage: String, _ body: (ProxyHarness, EchoServer, EchoServer) async throws -> Void
    ) async throws {
        let monolith = try await EchoServer.start(name: "monolith")
        let service = try await EchoServer.start(name: "service")
        defer {
            Task {
                await monolith.stop()
                await service.stop()
            }
        }
        try await ProxyHarness.run(routes: { _, _ in
            Self.routes(monolith: monolith.port, service: service.port, stage: stage)
        }) {
            harness in try await body(harness, monolith, service)
        }
    }

    @Test(arguments: [("transform", "monolith"), ("eliminate", "service")])
    func aWebSocketEchoWorksThroughTheProxy(stage: String, side: String) async throws {
        try await Self.withEchoes(stage: stage) { harness, monolith, service in
            let client = try await RawConnection.open(port: harness.proxyPort)
            // The first frame rides in the same write as the handshake: it must not be lost.
            await client.write(bytes: Array(Self.handshake.utf8) + clientFrame("hello"))
            #expect(await eventually { serverTexts(client.received).count == 1 }, "\(client.text)")
            #expect(client.text.hasPrefix("HTTP/1.1 101 "), "\(client.text)")
            #expect(client.text.lowercased().contains("upgrade: websocket"))
            #expect(client.text.lowercased().contains("connection: upgrade"))
            #expect(client.text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
            await client.write(bytes: clientFrame("again"))
            #expect(await eventually { serverTexts(client.received).count == 2 })
            #expect(serverTexts(client.received) == ["\(side): hello", "\(side): again"])
            let answering = side == "monolith" ? monolith : service
            #expect(answering.upgraded.withLockedValue { $0 } == 1)
            // The client goes: the upstream side of the tunnel closes too.
            await client.close()
            #expect(await eventually { answering.closed.withLockedValue { $0 } == 1 })
            // The upstream may see the half-close (and close) before the proxy ends the exchange and counts it.
            let counted = try await eventually {
                let metrics = try await harness.admin("GET", "/metrics").body
                return metrics.contains(#"route="chat.ws""#) && metrics.contains(#"status="1xx""#)
            }
            #expect(counted)
        }
    }

    @Test func inCoexistOnlyTheAnsweringSideIsAskedAndTheShadowIsCountedAsSkipped() async throws {
        try await Self.withEchoes(stage: "coexist") { harness, monolith, service in
            let client = try await RawConnection.open(port: harness.proxyPort)
            await client.write(bytes: Array(Self.handshake.utf8) + clientFrame("hi"))
            #expect(await eventually { serverTexts(client.received) == ["monolith: hi"] }, "\(client.text)")
            let summary = try await harness.waitForDiffs("chat.ws", "upgrades", atLeast: 1)
            #expect(summary["skipped"] as? Int == 1 && summary["compared"] as? Int == 0, "\(summary)")
            #expect(service.upgraded.withLockedValue { $0 } == 0)
            #expect(monolith.upgraded.withLockedValue { $0 } == 1)
            await client.close()
        }
    }

    @Test func anUpgradeTheUpstreamRefusesIsRelayedAsAnAnswer() async throws {
        try await Self.withEchoes(stage: "transform") { harness, _, _ in
            let client = try await RawConnection.open(port: harness.proxyPort)
            await client.write(
                "GET /refuse HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let answer = try #require(await client.waitForResponses(1).first)
            let refused = client
            #expect(answer.status == 426 && answer.body == "upgrade refused", "\(refused.text)")
            await client.close()
        }
    }

    @Test func aRequestWithoutUpgradeStillLosesTheField() async throws {
        try await ProxyHarness.run { harness in
            // `Upgrade` without `Connection: upgrade` is no upgrade request: hop-by-hop, not forwarded.
            let answer = try await RawHTTP.get("/contacts/1", port: harness.proxyPort, headers: ["Upgrade: websocket"])
            let echoed = json(answer.body)["headers"] as? [String: String] ?? [:]
            #expect(echoed["upgrade"] == nil && echoed["Upgrade"] == nil, "\(echoed)")
        }
    }
}

@Suite("Proxy: Expect: 100-continue through real sockets")
struct ExpectContinueTests {
    @Test(arguments: ["transform", "eliminate"])
    func aClientThatWaitsForContinueGetsItsRequestThrough(stage: String) async throws {
        try await ProxyHarness.run(stage: stage) { harness in
            let client = try await RawConnection.open(port: harness.proxyPort)
            let body = #"{"name":"Ada"}"#
            await client.write(
                "POST \(stage == "transform" ? "/unrouted" : "/contacts") HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                    + "\(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
            #expect(
                await eventually(within: .seconds(10)) { client.text.hasPrefix("HTTP/1.1 100 Continue\r\n") },
                "\(client.text)")
            await client.write(body)
            let responses = await client.waitForResponses(2)
            let final = try #require(responses.last)
            #expect(final.status == 200, "\(client.text)")
            #expect(json(final.body)["bodyLength"] as? Int == body.utf8.count, "\(final.body)")
            let headers = json(final.body)["headers"] as? [String: String] ?? [:]
            #expect(headers.keys.allSatisfy { $0.lowercased() != "expect" }, "answered here, not forwarded: \(headers)")
            #expect(json(final.body)["upstream"] as? String == (stage == "transform" ? "monolith" : "service"))
            await client.close()
        }
    }
}

@Suite("Unmatched traffic: id-like segments fold into templates")
struct UnmatchedTemplateTests {
    @Test func idsFoldAndWordsStay() {
        #expect(UnmatchedTraffic.template("/orders/42/items") == "/orders/{id}/items")
        #expect(UnmatchedTraffic.template("/orders/3f2a9c1e-1b2c-4d5e-8f90-123456789abc") == "/orders/{id}")
        #expect(UnmatchedTraffic.template("/users/ord_8f3k2m9x/carts/7") == "/users/{id}/carts/{id2}")
        #expect(UnmatchedTraffic.template("/v2/health/") == "/v2/health/")
        #expect(UnmatchedTraffic.template("/api/deadbeef") == "/api/deadbeef", "hex without a digit is a word")
        #expect(UnmatchedTraffic.template("/") == "/")
    }
}
