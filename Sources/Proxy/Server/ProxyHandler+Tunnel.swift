import HTTP1
import NIOCore

// Protocol upgrades (WebSocket): after the upstream's `101 Switching Protocols`, the client's connection and the
// exchange's upstream connection (opened for it, never pooled) carry bytes both ways as they come, with no deadline
// of the route's (an open WebSocket may stay quiet for hours), until either side closes. Reads on each side wait
// while the other cannot take more, as for any answer.
extension ProxyHandler {
    /// Relays the 101 head to the client, and what either side already sent past its head, then tunnels.
    func beginTunnel(
        _ head: HTTPHead, _ exchange: Exchange, rest bytes: inout ByteBuffer, context: ChannelHandlerContext
    ) {
        self.tunnel = true
        self.timer?.cancel()
        self.timer = nil
        exchange.answered = true
        let rewritten = HeadRewriter.clientResponse(
            head, requestID: exchange.requestID, close: false, keepChunked: false, upgrading: true,
            allocator: context.channel.allocator)
        context.write(self.wrapOutboundOut(rewritten), promise: nil)
        if bytes.readableBytes > 0 {
            context.write(self.wrapOutboundOut(bytes), promise: nil)
            bytes = ByteBuffer()
        }
        self.clientUnflushed = false
        context.flush()
        // The client may have sent its first frames right behind the request: they were read and kept.
        if let early = self.machine.takeInbound(), early.readableBytes > 0 {
            self.tunnelClientBytes(early)
            exchange.connection?.flush()
            exchange.upstreamUnflushed = false
        }
        self.resumeReadsIfHeld()
        context.read()
    }

    /// Client bytes in a tunnel: to the upstream as they come (flushed at the read's end).
    func tunnelClientBytes(_ bytes: ByteBuffer) {
        guard let exchange = self.exchange, let connection = exchange.connection else { return }
        connection.write(bytes)
        exchange.upstreamUnflushed = true
    }
}
