import AsyncHTTPClient
import Glibc
import NIOCore
import NIOPosix
import ServiceKit
import StranglerTesting
import Testing

/// A server that answers every request with `answer` as soon as its first bytes arrive (and closes the connection
/// when `close` says so), or never answers when `answer` is nil.
private final class CannedServer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let answer: String?
    let close: Bool

    init(answer: String?, close: Bool) {
        self.answer = answer
        self.close = close
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let answer = self.answer else { return }
        let channel = context.channel
        let close = self.close
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in
            if close { channel.close(promise: nil) }
        }
    }
}

/// Runs `body` with the port of a server answering `answer` (nil: never answering).
private func withCannedServer<T>(
    answer: String?, close: Bool = true, _ body: (Int) async throws -> T
) async throws -> T {
    let handler = CannedServer(answer: answer, close: close)
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let port = try #require(server.localAddress?.port)
    do {
        let result = try await body(port)
        try await server.close()
        return result
    } catch {
        try? await server.close()
        throw error
    }
}

private func page(_ body: String) -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        + "Connection: close\r\n\r\n\(body)"
}

@Suite("HTTPEventFeed")
struct HTTPEventFeedTests {
    static let emptyPage = #"{"items":[],"next":0,"head":0}"#

    /// A server that answers and closes before it has read the whole request: the answer is still read.
    @Test func anAnswerSentBeforeTheRequestIsReadIsStillRead() async throws {
        try await withCannedServer(answer: page(Self.emptyPage)) { port in
            // Many times, so that the server's close lands before, during and after the client's writes.
            for _ in 0..<50 {
                let answer = try await HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: port)).events(
                    after: 0, limit: 1, wait: 0)
                #expect(answer.events.isEmpty && answer.head == 0)
            }
        }
    }

    @Test func anAnswerLargerThanTheBoundIsRefused() async throws {
        let large = #"{"items":[],"next":0,"head":0,"padding":""# + String(repeating: "x", count: 4096) + #""}"#
        try await withCannedServer(answer: page(large)) { port in
            let feed = HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: port), maxAnswerBytes: 1024)
            await #expect(throws: HTTPEventFeed.BadAnswer.self) { try await feed.events(after: 0, limit: 1, wait: 0) }
            // Within the bound, the same answer is a page.
            let roomy = HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: port), maxAnswerBytes: 8192)
            let head = try await roomy.events(after: 0, limit: 1, wait: 0).head
            #expect(head == 0)
        }
    }

    /// A server that accepts and never answers: the request ends at its deadline (the long poll's wait plus the
    /// answer timeout), not never.
    @Test func aServerThatNeverAnswersTimesOut() async throws {
        try await withCannedServer(answer: nil) { port in
            let feed = HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: port), answerTimeout: .milliseconds(300))
            let started = ContinuousClock.now
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                try await feed.events(after: 0, limit: 1, wait: 0)
            }
            // An upper bound that tells "at its deadline" from "never" on a loaded machine (21 s was seen in a full
            // parallel run on two cores).
            #expect(ContinuousClock.now - started < .seconds(60))
        }
    }

    @Test func aRefusedPortIsReportedAtOnce() async throws {
        // Bound and never listening: a port only closed again could be taken by a test running beside.
        let closed = try ClosedPort()
        defer { closed.release() }
        let feed = HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: closed.port))
        let error = await #expect(throws: (any Error).self) { try await feed.events(after: 0, limit: 1, wait: 0) }
        // A refusal, not a connect timeout (no clock is read: the machines are shared): the CLI's commands tell
        // "nothing listens there" apart by the errno.
        #expect((error as? IOError)?.errnoCode == ECONNREFUSED, "\(String(describing: error))")
    }

    @Test func anAnswerThatIsNotAPageIsABadAnswer() async throws {
        try await withCannedServer(answer: page(#"{"status":"ok"}"#)) { port in
            let feed = HTTPEventFeed(FeedEndpoint(host: "127.0.0.1", port: port))
            await #expect(throws: HTTPEventFeed.BadAnswer.self) { try await feed.events(after: 0, limit: 1, wait: 0) }
        }
    }
}
