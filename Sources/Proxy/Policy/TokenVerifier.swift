import Foundation
import JWTKit
import RouteTable
import Synchronization

/// Verifies the bearer tokens of `"jwt"` with jwt-kit: the signature by a key of the key set (RS256, ES256, EdDSA;
/// the token's `alg` must be its key's, so `alg: none` and HMAC are refused), `exp` and `nbf` within the leeway, `iss`
/// and `aud` when the table names them; the client is the `clientClaim` (default `sub`).
///
/// jwt-kit hands out a key set's keys asynchronously (its key collection is an actor), and the data plane cannot
/// wait: the keys are turned into jwt-kit's algorithms once, when the table is loaded (the listener opens after
/// `ready()`), and each request is then verified synchronously with them. Until a new key set is ready, the one it
/// replaces goes on verifying. Verified tokens are remembered until they expire (at most `maxCached`): a client
/// sending the same token again costs a lookup, not a signature check.
final class TokenVerifier: Sendable {
    let policy: JWTPolicy
    /// The key set file's bytes, to tell a changed file from the same one on a table change.
    let keySetBytes: [UInt8]
    private let state: State
    private let cache = Mutex<[String: Verified]>([:])
    private let loading: Task<Void, Never>

    /// What the loading task fills in: the keys, and the verifier this one replaces (used until they are ready).
    private final class State: Sendable {
        let keys = Mutex<Keys>(.loading)
        let previous: Mutex<TokenVerifier?>
        init(previous: TokenVerifier?) { self.previous = Mutex(previous) }
    }
    static let maxCached = 10_000

    private enum Keys {
        case loading
        case ready([(kid: String?, algorithm: any JWTAlgorithm)])
        case failed(String)
    }

    private struct Verified {
        var client: String
        var expires: Date?
    }

    /// Why a token is refused (for the 401's message).
    struct Refusal: Error, Equatable {
        var reason: String
    }

    /// Reads and checks a key set file: its keys must be public keys jwt-kit verifies with (RSA, EC, OKP).
    static func readKeySet(_ policy: JWTPolicy) -> Result<(JWKS, [UInt8]), RouteTableError> {
        func problem(_ reason: String) -> Result<(JWKS, [UInt8]), RouteTableError> {
            .failure(RouteTableError(problems: [.init(path: "$.jwt.jwks", reason: reason)]))
        }
        guard let data = FileManager.default.contents(atPath: policy.jwks) else {
            return problem("\"\(policy.jwks)\" cannot be read (no such file, or no permission)")
        }
        let set: JWKS
        do {
            set = try JSONDecoder().decode(JWKS.self, from: data)
        } catch {
            return problem(
                "\"\(policy.jwks)\" is not a JSON Web Key Set of public keys ({\"keys\": [...]}, each of kty RSA, "
                    + "EC or OKP; never a shared secret): \(error)")
        }
        guard !set.keys.isEmpty else {
            return problem("\"\(policy.jwks)\" holds no key")
        }
        for (index, key) in set.keys.enumerated() {
            if set.keys.count > 1, key.keyIdentifier == nil {
                return problem("key \(index) of \"\(policy.jwks)\" has no \"kid\" (a set of several needs one each)")
            }
        }
        return .success((set, Array(data)))
    }

    init(policy: JWTPolicy, keySet: JWKS, bytes: [UInt8], previous: TokenVerifier?) {
        self.policy = policy
        self.keySetBytes = bytes
        let state = State(previous: previous)
        self.state = state
        self.loading = Task {
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwks: keySet)
                var loaded: [(kid: String?, algorithm: any JWTAlgorithm)] = []
                for key in keySet.keys {
                    let kid = key.keyIdentifier
                    loaded.append((kid?.string, try await collection.getKey(for: kid)))
                }
                state.keys.withLock { $0 = .ready(loaded) }
            } catch {
                state.keys.withLock { $0 = .failed("the key set could not be loaded (\(error))") }
            }
            state.previous.withLock { $0 = nil }
        }
    }

    /// Waits until the keys are loaded (or failed to).
    func ready() async { await self.loading.value }

    /// Whether a bearer credential has the shape of a JWT (three base64url parts).
    static func looksLikeToken(_ text: String) -> Bool {
        var dots = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                dots += 1
            } else if !((0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_"))
            {
                return false
            }
        }
        return dots == 2
    }

    /// The client a token names, or why it is refused.
    func verify(_ token: String, now: Date = Date()) -> Result<String, Refusal> {
        guard token.utf8.count <= 16 * 1024 else { return .failure(Refusal(reason: "the token is larger than 16 KiB")) }
        if let verified = self.cache.withLock({ $0[token] }) {
            if let expires = verified.expires, expires.addingTimeInterval(self.leeway) < now {
                return .failure(Refusal(reason: "the token expired at \(Self.format(expires))"))
            }
            return .success(verified.client)
        }
        let keys: [(kid: String?, algorithm: any JWTAlgorithm)]
        switch self.state.keys.withLock({ $0 }) {
        case .ready(let loaded): keys = loaded
        case .failed(let why): return .failure(Refusal(reason: why))
        case .loading:
            if let previous = self.state.previous.withLock({ $0 }) { return previous.verify(token, now: now) }
            return .failure(Refusal(reason: "the token keys are still being loaded"))
        }
        let parsed: (header: JWTHeader, payload: TokenClaims, signature: Data)
        do {
            parsed = try DefaultJWTParser().parse(Array(token.utf8), as: TokenClaims.self)
        } catch {
            return .failure(Refusal(reason: "the token is malformed"))
        }
        let algorithm = parsed.header.alg ?? ""
        let kid = parsed.header.kid
        guard
            let key = keys.first(where: { kid != nil ? $0.kid == kid : keys.count == 1 }),
            key.algorithm.name == algorithm
        else {
            if algorithm.lowercased() == "none" { return .failure(Refusal(reason: "an unsigned token (alg: none)")) }
            return .failure(
                Refusal(
                    reason: "no key of the key set verifies \(algorithm.isEmpty ? "it" : algorithm)"
                        + (kid.map { " with kid \($0)" } ?? "")))
        }
        guard let lastDot = token.utf8.lastIndex(of: UInt8(ascii: ".")) else {
            return .failure(Refusal(reason: "the token is malformed"))
        }
        let signed = Array(token.utf8[..<lastDot])
        do {
            guard try key.algorithm.verify(parsed.signature, signs: signed) else {
                return .failure(Refusal(reason: "the token's signature does not verify"))
            }
        } catch {
            return .failure(Refusal(reason: "the token's signature does not verify"))
        }
        let claims = parsed.payload
        do {
            try claims.exp?.verifyNotExpired(currentDate: now.addingTimeInterval(-self.leeway))
        } catch {
            return .failure(Refusal(reason: "the token expired at \(claims.exp.map { Self.format($0.value) } ?? "?")"))
        }
        do {
            try claims.nbf?.verifyNotBefore(currentDate: now.addingTimeInterval(self.leeway))
        } catch {
            return .failure(
                Refusal(reason: "the token is not valid before \(claims.nbf.map { Self.format($0.value) } ?? "?")"))
        }
        if let issuer = self.policy.issuer, claims.iss?.value != issuer {
            return .failure(Refusal(reason: "the token's issuer is not \(issuer)"))
        }
        if let audience = self.policy.audience {
            do {
                guard let aud = claims.aud else { throw Refusal(reason: "") }
                try aud.verifyIntendedAudience(includes: audience)
            } catch {
                return .failure(Refusal(reason: "the token's audience does not include \(audience)"))
            }
        }
        guard let client = claims.strings[self.policy.clientClaim], ClientRegistry.isClientName(client) else {
            return .failure(
                Refusal(reason: "the token's \(self.policy.clientClaim) claim does not name a client"))
        }
        self.cache.withLock { cache in
            if cache.count >= Self.maxCached {
                cache = cache.filter { $0.value.expires.map { $0 > now } ?? true }
                if cache.count >= Self.maxCached { cache.removeAll() }
            }
            cache[token] = Verified(client: client, expires: claims.exp?.value)
        }
        return .success(client)
    }

    private var leeway: TimeInterval {
        let (seconds, attoseconds) = self.policy.leeway.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

/// The claims the gateway reads: the registered ones it checks, and every string claim (the client's name is one).
struct TokenClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var strings: [String: String] = [:]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.exp = try container.decodeIfPresent(ExpirationClaim.self, forKey: Key(stringValue: "exp"))
        self.nbf = try container.decodeIfPresent(NotBeforeClaim.self, forKey: Key(stringValue: "nbf"))
        self.iss = try container.decodeIfPresent(IssuerClaim.self, forKey: Key(stringValue: "iss"))
        self.aud = try container.decodeIfPresent(AudienceClaim.self, forKey: Key(stringValue: "aud"))
        for key in container.allKeys {
            if let text = try? container.decode(String.self, forKey: key) { self.strings[key.stringValue] = text }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(self.exp, forKey: Key(stringValue: "exp"))
        try container.encodeIfPresent(self.nbf, forKey: Key(stringValue: "nbf"))
        for (key, value) in self.strings { try container.encode(value, forKey: Key(stringValue: key)) }
    }

    /// The checks are the verifier's (synchronous): nothing more here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
