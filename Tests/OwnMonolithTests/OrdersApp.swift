import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A small application that is not the demo CRM: an orders API, as a monolith and as its extracted service. Each
/// keeps its own records; a write on one side is copied to the other (standing in for the application's own sync
/// and reverse sync). The service differs on purpose where a test asks: a clock that runs ahead (`updatedAt`), gzip
/// answers, another page format, a drifted record.
final class OrdersApp: Sendable {
    struct Order: Sendable, Equatable {
        var id: Int
        var item: String
        var total: Int
        var updatedAt: String
    }

    enum Paging: Sendable {
        /// `[…]` with `Link: </orders?after=N>; rel="next"`.
        case linkHeader
        /// `{"data": […], "nextCursor": "N"}`.
        case cursorField
    }

    let name: String
    let orders = NIOLockedValueBox<[Int: Order]>([:])
    /// Where a write is copied (the other side), if anywhere.
    let peer = NIOLockedValueBox<OrdersApp?>(nil)
    let paging: Paging
    /// Added to every `updatedAt` this side answers (a clock skew: noise, not a bug).
    let clockSkew = NIOLockedValueBox(false)
    /// Answers gzip-encoded when the client accepts it.
    let gzip: Bool
    let seenPaths = NIOLockedValueBox<[String]>([])

    init(name: String, paging: Paging, gzip: Bool = false) {
        self.name = name
        self.paging = paging
        self.gzip = gzip
        self.orders.withLockedValue {
            for id in 1...5 {
                $0[id] = Order(id: id, item: "item \(id)", total: id * 100, updatedAt: "2026-12-01T10:00:00Z")
            }
        }
    }

    func json(_ order: Order) -> String {
        let stamp =
            self.clockSkew.withLockedValue { $0 }
            ? order.updatedAt.replacingOccurrences(of: "10:00", with: "10:01") : order.updatedAt
        return #"{"id":\#(order.id),"item":"\#(order.item)","total":\#(order.total),"updatedAt":"\#(stamp)"}"#
    }

    func answer(
        _ text: String, status: HTTPResponse.Status = .ok, request: Request, extra: HTTPFields = [:]
    ) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        var body = ByteBuffer(string: text)
        if self.gzip, request.headers[.acceptEncoding]?.contains("gzip") == true,
            let compressed = try? body.compress(with: .gzip())
        {
            body = compressed
            headers[.contentEncoding] = "gzip"
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(Seen(app: self))
        router.get("/orders") { request, _ in
            let after = request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0
            let cursor = request.uri.queryParameters.get("cursor").flatMap { Int($0) } ?? after
            let limit = min(2, request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 2)
            let all = self.orders.withLockedValue { $0.values.sorted { $0.id < $1.id } }
            let page = Array(all.filter { $0.id > cursor }.prefix(limit))
            let more = all.last.map { last in page.last.map { $0.id < last.id } ?? false } ?? false
            let items = "[" + page.map(self.json).joined(separator: ",") + "]"
            switch self.paging {
            case .linkHeader:
                var extra: HTTPFields = [:]
                if more, let last = page.last {
                    extra[HTTPField.Name("Link")!] = "</orders?after=\(last.id)&limit=\(limit)>; rel=\"next\""
                }
                return self.answer(items, request: request, extra: extra)
            case .cursorField:
                let next = more ? page.last.map { "\"\($0.id)\"" } ?? "null" : "null"
                return self.answer(#"{"data":\#(items),"nextCursor":\#(next)}"#, request: request)
            }
        }
        router.get("/orders/{id}") { request, context in
            let id = context.parameters.get("id").flatMap { Int($0) } ?? 0
            guard let order = self.orders.withLockedValue({ $0[id] }) else {
                return self.answer(#"{"error":"no such order"}"#, status: .notFound, request: request)
            }
            return self.answer(self.json(order), request: request)
        }
        router.post("/orders") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let fields =
                (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            guard let id = fields["id"] as? Int, let item = fields["item"] as? String,
                let total = fields["total"] as? Int
            else {
                return self.answer(
                    #"{"error":"id, item and total are required"}"#, status: .badRequest, request: request)
            }
            let dryRun = request.headers[HTTPField.Name("Strangler-Dry-Run")!] == "1"
            // The client names the order (as with client-chosen ids): both sides answer alike, dry run or not.
            let order = Order(id: id, item: item, total: total, updatedAt: "2026-12-01T10:00:00Z")
            if !dryRun { self.orders.withLockedValue { $0[id] = order } }
            if !dryRun { self.peer.withLockedValue { $0 }?.orders.withLockedValue { $0[order.id] = order } }
            return self.answer(self.json(order), status: .created, request: request)
        }
        return router
    }

    struct Seen: RouterMiddleware {
        let app: OrdersApp
        func handle(
            _ request: Request, context: BasicRequestContext,
            next: (Request, BasicRequestContext) async throws -> Response
        ) async throws -> Response {
            self.app.seenPaths.withLockedValue { $0.append(request.uri.path) }
            return try await next(request, context)
        }
    }

    /// The app on a free port; the port arrives once it listens.
    func service(logger: Logger) -> (some Service, Task<Int, Never>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: self.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let port = Task {
            for await port in stream { return port }
            return 0
        }
        return (app, port)
    }
}
