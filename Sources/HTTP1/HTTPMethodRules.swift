/// Which request methods are safe and idempotent (RFC 9110 §9.2.1, §9.2.2), the one place the toolkit says it.
///
/// ```swift
/// HTTPMethodRules.isSafe("GET")          // true: shadowed as is, retried on a fresh connection
/// HTTPMethodRules.isSafe("POST")         // false: a write (shadowed only as a dry run)
/// HTTPMethodRules.isIdempotent("PUT")    // true
/// ```
///
/// The toolkit treats `GET`, `HEAD` and `OPTIONS` as safe (`TRACE` is never forwarded to anything that answers it),
/// and every other method as a write.
public enum HTTPMethodRules {
    /// Whether a request with `method` asks for no change on the server (`GET`, `HEAD`, `OPTIONS`). Methods are
    /// case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    @inlinable
    public static func isSafe(_ method: some StringProtocol) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS"
    }

    /// Whether a request with `method` may be sent twice with the effect of once: the safe methods, `PUT` and
    /// `DELETE`.
    @inlinable
    public static func isIdempotent(_ method: some StringProtocol) -> Bool {
        Self.isSafe(method) || method == "PUT" || method == "DELETE"
    }

    /// Whether a request with `method` changes something: any method that is not safe.
    @inlinable
    public static func isWrite(_ method: some StringProtocol) -> Bool { !Self.isSafe(method) }
}
