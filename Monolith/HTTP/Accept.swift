public import Hummingbird

/// Answers 406 to a request whose `Accept` excludes JSON, the only representation the monolith has, before its
/// handler runs (a write is never made for a client that cannot read the answer). Weights are honoured:
/// `application/json;q=0` excludes JSON even with `*/*`, as the most specific range decides (RFC 9110 §12.5.1).
/// No `Accept`, an empty one, or one with nothing readable in it accepts anything.
struct AcceptMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let accept = request.headers[.accept], !Self.acceptsJSON(accept) {
            throw APIError(
                status: .notAcceptable, code: "not_acceptable",
                message: "this server answers application/json only, and the request's Accept (\(accept.prefix(200))) "
                    + "excludes it")
        }
        return try await next(request, context)
    }

    /// Whether `accept` gives `application/json` a weight above 0.
    static func acceptsJSON(_ accept: String) -> Bool {
        var best: (specificity: Int, quality: Double)?
        var readable = false
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingSpaces() }
            guard let media = parts.first?.lowercased(), !media.isEmpty else { continue }
            let names = media.split(separator: "/", omittingEmptySubsequences: false)
            guard names.count == 2, !names[0].isEmpty, !names[1].isEmpty else { continue }
            var quality = 1.0
            var valid = true
            var hasParameters = false
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
                if pair.first?.lowercased() == "q" {
                    guard pair.count == 2, let weight = Double(pair[1]), (0...1).contains(weight) else {
                        valid = false
                        break
                    }
                    quality = weight
                    break
                }
                hasParameters = true
            }
            guard valid else { continue }
            readable = true
            let specificity: Int
            switch (names[0], names[1]) {
            case ("*", "*"): specificity = 0
            case ("application", "*"): specificity = 1
            case ("application", "json"): specificity = hasParameters ? 3 : 2
            default: continue
            }
            if best == nil || specificity > best!.specificity { best = (specificity, quality) }
        }
        guard readable else { return true }
        return (best?.quality ?? 0) > 0
    }
}
