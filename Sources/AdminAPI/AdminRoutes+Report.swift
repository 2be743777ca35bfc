import ControlPlane
import Foundation
import HTTP1
import HTTPTypes
import Hummingbird
import JSON
import NIOCore
import Reports

extension AdminRoutes {
    /// `GET /admin/report[?route=ID|PATTERN][&since=1h][&format=html|json|markdown|junit][&samples=N]`: the diff
    /// report, live. HTML by default (one self-contained page, served with a Content-Security-Policy that forbids every
    /// fetch).
    func report(_ request: Request) async -> Response {
        let parameters = request.uri.queryParameters
        var options = ReportOptions(selector: parameters.get("route").flatMap { $0.isEmpty ? nil : String($0) })
        if let text = parameters.get("since"), !text.isEmpty {
            guard let window = ReportWindow(String(text)) else {
                return Self.error(.badRequest, "invalid_since", "since must be \(ReportWindow.help), not \"\(text)\"")
            }
            options.window = window
        }
        if let text = parameters.get("samples") {
            guard let count = Int(text), (0...20).contains(count) else {
                return Self.error(
                    .badRequest, "invalid_samples", "samples must be a whole number from 0 to 20, not \"\(text)\"")
            }
            options.samplesPerSignature = count
        }
        options.traceURL = self.traceURL
        let format: String
        if let given = parameters.get("format") {
            format = String(given)
        } else {
            // No `format`: the one `Accept` prefers (HTML when it says nothing).
            let types = [
                "text/html": "html", "application/json": "json", "text/markdown": "markdown",
                "application/xml": "junit",
            ]
            guard
                let chosen = MediaNegotiation.choose(
                    ["text/html", "application/json", "text/markdown", "application/xml"],
                    accept: request.headers[.accept])
            else {
                return Self.error(
                    .notAcceptable, "not_acceptable",
                    "the report comes as text/html, application/json, text/markdown or application/xml, and the "
                        + "request's Accept excludes them all")
            }
            format = types[chosen] ?? "html"
        }
        guard ["html", "json", "markdown", "junit"].contains(format) else {
            return Self.error(
                .badRequest, "invalid_format", "format must be html, json, markdown or junit, not \"\(format)\"")
        }
        let report: Report
        do {
            report = try await self.operations.report(
                options, source: "the proxy's admin API (\(self.control.routesPath))")
        } catch {
            return Self.answer(error)
        }
        let (text, type): (String, String) =
            switch format {
            case "json": (report.json.prettyJSONText, "application/json; charset=utf-8")
            case "markdown": (report.markdown, "text/markdown; charset=utf-8")
            case "junit": (report.junit, "application/xml; charset=utf-8")
            default: (report.html, "text/html; charset=utf-8")
            }
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store"]
        if format == "html" { headers[.contentSecurityPolicy] = Report.contentSecurityPolicy }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
