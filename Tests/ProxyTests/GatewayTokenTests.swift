import Crypto
import CryptoExtras
import Foundation
import Gateway
import JWTKit
import NIOConcurrencyHelpers
import ProxyTestSupport
import RouteTable
import Testing

@testable import Proxy

/// Bearer tokens verified with jwt-kit in front of test upstreams: RS256, ES256 and EdDSA tokens name their client by
/// `sub`; expired, not yet valid, wrong audience or issuer, a wrong key, `alg: none` and an HMAC token made with a
/// public key are refused with 401.
@Suite("Gateway: JSON Web Tokens")
struct GatewayTokenTests {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var iss: IssuerClaim
        var aud: AudienceClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// Keys made for the run: the signing side (a key collection) and the key set file the proxy reads.
    struct Keys {
        let signing: JWTKeyCollection
        let other: JWTKeyCollection
        let jwks: String

        static func make() async throws -> Keys {
            let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let ecdsa = ES256PrivateKey()
            let eddsa = try EdDSA.PrivateKey()
            let signing = JWTKeyCollection()
            await signing.add(rsa: rsa, digestAlgorithm: .sha256, kid: "r1")
            await signing.add(ecdsa: ecdsa, kid: "e1")
            await signing.add(eddsa: eddsa, kid: "d1")
            // Another ES256 key under the same kid: its tokens must not verify.
            let other = JWTKeyCollection()
            await other.add(ecdsa: ES256PrivateKey(), kid: "e1")
            func base64URL(_ data: Data) -> String {
                data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            }
            let (modulus, exponent) = try rsa.publicKey.getKeyPrimitives()
            let point = ecdsa.publicKey.parameters!
            let set = """
                { "keys": [
                  { "kty": "RSA", "kid": "r1", "alg": "RS256", "n": "\(base64URL(modulus))", "e": "\(base64URL(exponent))" },
                  { "kty": "EC", "kid": "e1", "alg": "ES256", "crv": "P-256", "x": "\(point.x)", "y": "\(point.y)" },
                  { "kty": "OKP", "kid": "d1", "alg": "EdDSA", "crv": "Ed25519",
                    "x": "\(base64URL(eddsa.publicKey.rawRepresentation))" } ] }
                """
            return Keys(signing: signing, other: other, jwks: set)
        }
    }

    static func claims(
        sub: String = "web", aud: String = "orders-api", iss: String = "https://id.example",
        expiresIn: TimeInterval = 300,
        notBefore: TimeInterval? = nil
    ) -> Claims {
        Claims(
            sub: SubjectClaim(value: sub), iss: IssuerClaim(value: iss), aud: AudienceClaim(value: [aud]),
            exp: ExpirationClaim(value: Date().addingTimeInterval(expiresIn)),
            nbf: notBefore.map { NotBeforeClaim(value: Date().addingTimeInterval($0)) })
    }

    static func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    @Test func tokensAreVerifiedWithTheKeySetAndRefusedWhenAnyCheckFails() async throws {
        let keys = try await Keys.make()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-jwt-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let jwksPath = directory.appendingPathComponent("jwks.json").path
        try keys.jwks.write(toFile: jwksPath, atomically: true, encoding: .utf8)

        try await ProxyHarness.run(routes: { monolith, _ in
            """
            { "monolith": "http://127.0.0.1:\(monolith)",
              "jwt": { "issuer": "https://id.example", "audience": "orders-api", "jwks": "\(jwksPath)" },
              "routes": [ { "id": "orders.get", "method": "GET", "path": "/orders/{id}", "stage": "transform",
                            "allow": ["web"] } ] }
            """
        }) { harness in
            // Signed once the proxy runs: in a loaded parallel run the harness can take seconds to start, and a token
            // 10 s past its expiry must still be within the 30 s leeway when it is presented.
            var good: [String] = []
            for kid in ["r1", "e1", "d1"] {
                good.append(try await keys.signing.sign(Self.claims(), kid: JWKIdentifier(string: kid)))
            }
            let withinLeeway = try await keys.signing.sign(Self.claims(expiresIn: -10), kid: "e1")
            let refused: [(token: String, why: String)] = [
                (try await keys.signing.sign(Self.claims(expiresIn: -120), kid: "e1"), "expired"),
                (try await keys.signing.sign(Self.claims(notBefore: 120), kid: "e1"), "not valid before"),
                (
                    try await keys.signing.sign(Self.claims(aud: "billing"), kid: "e1"),
                    "audience does not include orders-api"
                ),
                (try await keys.signing.sign(Self.claims(iss: "https://evil.example"), kid: "r1"), "issuer is not"),
                (try await keys.other.sign(Self.claims(), kid: "e1"), "signature does not verify"),
                (
                    try await keys.signing.sign(Self.claims(sub: "not a name"), kid: "d1"),
                    "sub claim does not name a client"
                ),
                (
                    Self.base64URL(#"{"alg":"none","typ":"JWT"}"#) + "." + Self.base64URL(#"{"sub":"web"}"#) + ".",
                    "unsigned token (alg: none)"
                ),
                (try await Self.hmacToken(secret: keys.jwks), "no key of the key set verifies HS256"),
            ]

            for token in good + [withinLeeway] {
                let answer = try await RawHTTP.get(
                    "/orders/1", port: harness.proxyPort, headers: ["Authorization: Bearer \(token)"])
                #expect(answer.status == 200, "\(answer.body)")
            }
            let seen = harness.monolith.seenRequests.withLockedValue { $0 }
            #expect(seen.map { $0.headers["strangler-client"] } == ["web", "web", "web", "web"])
            // Verified once, then remembered: the same token again is still answered, and still as web.
            #expect(
                try await RawHTTP.get(
                    "/orders/2", port: harness.proxyPort, headers: ["Authorization: Bearer \(good[0])"]
                )
                .status == 200)
            for (token, why) in refused {
                let answer = try await RawHTTP.get(
                    "/orders/1", port: harness.proxyPort, headers: ["Authorization: Bearer \(token)"])
                #expect(answer.status == 401, "\(why)")
                #expect((json(answer.body)["detail"] as? String)?.contains(why) == true, "\(why): \(answer.body)")
            }
            #expect(harness.monolith.seenRequests.withLockedValue { $0 }.count == 5, "nothing refused went through")
        }
    }

    /// An HS256 token whose secret is public (the key set's text): the algorithm-confusion attack.
    static func hmacToken(secret: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "e1")
        return try await keys.sign(Self.claims(), kid: "e1")
    }

    @Test func aKeySetThatCannotBeReadRefusesTheTableByItsPlace() throws {
        let table = try RouteTable.parse(
            #"{ "monolith": "http://127.0.0.1:1", "jwt": { "jwks": "/nonexistent/jwks.json" }, "routes": [] }"#)
        #expect(throws: RouteTableError.self) { try RouteTableStore.prepare(table, text: "") }
        do {
            _ = try RouteTableStore.prepare(table, text: "")
        } catch {
            #expect(error.problems.first?.path == "$.jwt.jwks")
            #expect(error.problems.first?.reason.contains("cannot be read") == true)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try #"{ "keys": [ { "kty": "oct", "k": "c2VjcmV0" } ] }"#.write(toFile: file, atomically: true, encoding: .utf8)
        let secret = try RouteTable.parse(
            #"{ "monolith": "http://127.0.0.1:1", "jwt": { "jwks": "\#(file)" }, "routes": [] }"#)
        do {
            _ = try RouteTableStore.prepare(secret, text: "")
            Issue.record("a shared secret must be refused")
        } catch {
            #expect(error.problems.first?.reason.contains("never a shared secret") == true, "\(error)")
        }
    }
}
