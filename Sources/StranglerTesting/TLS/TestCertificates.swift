import Crypto
import Foundation
import SwiftASN1
public import X509

/// A certificate authority made in memory for a test: a self-signed P-256 root that signs server and client
/// certificates. Nothing is read from or written to disk until ``TestCertificates/write(to:)``.
///
/// ```swift
/// let authority = try TestCertificateAuthority(commonName: "Strangler Test CA")
/// let server = try authority.issueServer()                  // SAN localhost + 127.0.0.1, serverAuth
/// let client = try authority.issueClient()                  // clientAuth
/// // server.chainPEM: the leaf, then the CA (what `--tls-cert` takes)
/// ```
public struct TestCertificateAuthority: Sendable {
    /// The CA's own certificate.
    public let certificate: Certificate
    /// The CA's certificate as PEM: what a client trusts (`--admin-ca`, a TLS configuration's trust roots).
    public let certificatePEM: String
    /// The CA's private key as PEM (PKCS #8).
    public let privateKeyPEM: String
    private let key: Certificate.PrivateKey

    /// Makes a new root: a fresh key, `commonName` as subject and issuer, valid from an hour ago for `validity`.
    public init(commonName: String = "Strangler Test CA", validity: Duration = .seconds(30 * 24 * 3600)) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Strangler tests")
            CommonName(commonName)
        }
        let (notBefore, notAfter) = Self.period(validity)
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        self.certificate = certificate
        self.certificatePEM = try certificate.serializeAsPEM().pemString
        self.privateKeyPEM = key.pemRepresentation
        self.key = Certificate.PrivateKey(key)
    }

    /// A server certificate signed by this CA: subject `commonName`, SAN DNS names and IP addresses (IPv4 or IPv6
    /// text), key usage for a TLS server (digital signature, EKU serverAuth).
    public func issueServer(
        commonName: String = "localhost", dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1"],
        validity: Duration = .seconds(30 * 24 * 3600)
    ) throws -> TestCertificate {
        var names = dnsNames.map { GeneralName.dnsName($0) }
        for address in ipAddresses {
            guard let bytes = Self.addressBytes(address) else { throw TestCertificateError.notAnIPAddress(address) }
            names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        return try self.issue(
            commonName: commonName, usage: [.serverAuth], alternativeNames: names, validity: validity)
    }

    /// A client certificate signed by this CA: subject `commonName`, EKU clientAuth.
    public func issueClient(
        commonName: String = "strangler test client", validity: Duration = .seconds(30 * 24 * 3600)
    ) throws -> TestCertificate {
        try self.issue(commonName: commonName, usage: [.clientAuth], alternativeNames: [], validity: validity)
    }

    private func issue(
        commonName: String, usage: [ExtendedKeyUsage.Usage], alternativeNames: [GeneralName], validity: Duration
    ) throws -> TestCertificate {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Strangler tests")
            CommonName(commonName)
        }
        let (notBefore, notAfter) = Self.period(validity)
        let caKeyIdentifier = try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: self.certificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usage)
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: caKeyIdentifier)
                if !alternativeNames.isEmpty { SubjectAlternativeNames(alternativeNames) }
            },
            issuerPrivateKey: self.key)
        let pem = try certificate.serializeAsPEM().pemString
        return TestCertificate(
            certificate: certificate, certificatePEM: pem, privateKeyPEM: key.pemRepresentation,
            chainPEM: pem + "\n" + self.certificatePEM)
    }

    /// From an hour ago (clocks of a test machine may differ a little) until `validity` from now.
    private static func period(_ validity: Duration) -> (Date, Date) {
        let now = Date()
        return (now.addingTimeInterval(-3600), now.addingTimeInterval(TimeInterval(validity.components.seconds)))
    }

    /// An IPv4 or IPv6 address's bytes in network order; nil when `text` is neither.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// A leaf certificate a ``TestCertificateAuthority`` issued, with its key, as PEM.
public struct TestCertificate: Sendable {
    /// The certificate itself (subject, serial number, extensions).
    public let certificate: Certificate
    /// The leaf alone, PEM.
    public let certificatePEM: String
    /// The leaf's private key, PEM (PKCS #8).
    public let privateKeyPEM: String
    /// The leaf followed by its CA's certificate, PEM: a chain file, as servers are usually given.
    public let chainPEM: String

    /// The serial number's bytes (big-endian), to tell which certificate a peer presented.
    public var serialNumber: [UInt8] { Array(self.certificate.serialNumber.bytes) }

    /// The leaf in DER, to compare with the certificate a TLS peer presented.
    public func derBytes() throws -> [UInt8] {
        try self.certificate.serializeAsPEM().derBytes
    }
}

/// What a TLS test usually needs at once: a CA, a server certificate (`localhost`, 127.0.0.1) and a client certificate
/// it signed, and an unrelated CA, which must not be trusted for either.
///
/// ```swift
/// let certificates = try TestCertificates()
/// let files = try certificates.writeToTemporaryDirectory()
/// defer { files.remove() }
/// // strangler proxy --tls-cert files.serverChain --tls-key files.serverKey
/// // a client trusting files.caCertificate connects; one trusting files.otherCACertificate is refused
/// ```
public struct TestCertificates: Sendable {
    /// The CA that signed ``server`` and ``client``.
    public let authority: TestCertificateAuthority
    /// A server certificate for `localhost` and 127.0.0.1.
    public let server: TestCertificate
    /// A client certificate (clientAuth), for mutual TLS.
    public let client: TestCertificate
    /// A CA that signed nothing here: trusting it alone must fail verification.
    public let otherAuthority: TestCertificateAuthority

    /// Makes both CAs and both leaves (a few milliseconds: P-256 keys).
    public init() throws {
        let authority = try TestCertificateAuthority(commonName: "Strangler Test CA")
        self.authority = authority
        self.server = try authority.issueServer()
        self.client = try authority.issueClient()
        self.otherAuthority = try TestCertificateAuthority(commonName: "Unrelated Test CA")
    }

    /// Writes every PEM into `directory` (created if missing), keys with mode 0600, and returns the paths.
    public func write(to directory: String) throws -> TestCertificateFiles {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = TestCertificateFiles(directory: directory)
        try Self.write(self.authority.certificatePEM, to: files.caCertificate)
        try Self.write(self.server.certificatePEM, to: files.serverCertificate)
        try Self.write(self.server.privateKeyPEM, to: files.serverKey, secret: true)
        try Self.write(self.server.chainPEM, to: files.serverChain)
        try Self.write(self.client.certificatePEM, to: files.clientCertificate)
        try Self.write(self.client.privateKeyPEM, to: files.clientKey, secret: true)
        try Self.write(self.client.chainPEM, to: files.clientChain)
        try Self.write(self.otherAuthority.certificatePEM, to: files.otherCACertificate)
        return files
    }

    /// Writes every PEM into a new directory under the system's temporary directory (``TestCertificateFiles/remove()``
    /// deletes it).
    public func writeToTemporaryDirectory() throws -> TestCertificateFiles {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strangler-tls-\(UUID().uuidString)")
        return try self.write(to: directory.path)
    }

    /// Writes `text` to `path`, replacing the file in one rename (a watcher never sees half a file); `secret`: mode
    /// 0600.
    public static func write(_ text: String, to path: String, secret: Bool = false) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if secret { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
    }
}

/// Where ``TestCertificates/write(to:)`` put each PEM.
public struct TestCertificateFiles: Sendable {
    /// The directory holding them all.
    public let directory: String

    /// Names the files in `directory` (writes nothing).
    public init(directory: String) {
        self.directory = directory
    }

    private func path(_ name: String) -> String {
        URL(fileURLWithPath: self.directory).appendingPathComponent(name).path
    }

    /// The CA's certificate.
    public var caCertificate: String { self.path("ca.pem") }
    /// The server's leaf alone.
    public var serverCertificate: String { self.path("server.pem") }
    /// The server's key.
    public var serverKey: String { self.path("server-key.pem") }
    /// The server's leaf then the CA.
    public var serverChain: String { self.path("server-chain.pem") }
    /// The client's leaf alone.
    public var clientCertificate: String { self.path("client.pem") }
    /// The client's key.
    public var clientKey: String { self.path("client-key.pem") }
    /// The client's leaf then the CA.
    public var clientChain: String { self.path("client-chain.pem") }
    /// The unrelated CA's certificate.
    public var otherCACertificate: String { self.path("other-ca.pem") }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// A request for a test certificate that cannot be made.
public struct TestCertificateError: Error, CustomStringConvertible {
    /// What was wrong.
    public let description: String

    static func notAnIPAddress(_ text: String) -> Self {
        Self(description: "\(text) is not an IPv4 or IPv6 address")
    }
}
