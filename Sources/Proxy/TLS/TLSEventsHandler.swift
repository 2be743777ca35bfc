package import Logging
package import NIOCore
import NIOSSL

/// Sits between `NIOSSLServerHandler` and the connection's handler on a TLS listener, so that TLS connections end as
/// plain ones do:
///
/// - a client that closes its side without a TLS `close_notify` (many do) is a half-close like a plain FIN, not an
///   error: `NIOSSLError.uncleanShutdown` is dropped here (the `inputClosed` event, or the channel's end, follows it);
/// - a handshake that fails (a client that does not trust the certificate, a scanner, a client speaking plain HTTP)
///   is logged at debug with the client's address, not as an error; the TLS handler closes the connection.
package final class TLSEventsHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let logger: Logger

    package init(logger: Logger) {
        self.logger = logger
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOSSLError {
            switch error {
            case .uncleanShutdown:
                return
            case .handshakeFailed:
                self.logger.debug(
                    "tls handshake failed",
                    metadata: [
                        "client": "\(context.channel.remoteAddress?.description ?? "unknown")", "error": "\(error)",
                    ])
            default:
                break
            }
        }
        context.fireErrorCaught(error)
    }
}
