import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Proxy

/// A Hummingbird child channel that speaks TLS in front of `Base` (the admin API's HTTP/1.1 channel) with the context
/// ``ServerTLSContext`` holds when each connection is accepted: as HummingbirdTLS's `TLSChannel` does, except that a
/// reloaded certificate reaches the connections accepted after the reload (connections already open keep theirs).
struct ReloadingTLSChannel<Base: ServerChildChannel & HTTPChannelHandler>: ServerChildChannel, HTTPChannelHandler {
    typealias Value = Base.Value

    var base: Base
    let tls: ServerTLSContext

    init(_ base: Base, tls: ServerTLSContext) {
        self.base = base
        self.tls = tls
    }

    var responder: HTTPChannelHandler.Responder { self.base.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: self.tls.current))
            try channel.pipeline.syncOperations.addHandler(TLSEventsHandler(logger: logger))
        }.flatMap {
            self.base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await self.base.handle(value: value, logger: logger)
    }
}
