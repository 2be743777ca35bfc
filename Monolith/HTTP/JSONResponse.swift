import HTTPTypes
import Hummingbird
import NIOCore

/// Builds JSON answers from bytes written by ``JSONWriter``.
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, bytes: [UInt8], headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers.append(contentsOf: extra)
        headers[.contentLength] = String(bytes.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func make(
        status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], _ write: (inout JSONWriter) -> Void
    ) -> Response {
        var writer = JSONWriter()
        write(&writer)
        return self.make(status: status, bytes: writer.bytes, headers: headers)
    }
}
