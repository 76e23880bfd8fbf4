import Foundation

/// How a client decides whether to trust the server's certificate. There is no
/// "trust anything" case on purpose: a self-signed server is trusted by pinning it.
public enum TLSTrust: Sendable, Equatable {
    /// The system's CA store, with the certificate's names checked against the server name.
    case systemDefault
    /// The CAs in a PEM bundle file, with the names checked as above.
    case certificateAuthorities(path: String)
    /// Exactly the certificate with this fingerprint. Replaces the CA and name checks.
    case pinned(CertificateFingerprint)
}

public struct TLSClientConfiguration: Sendable {
    public var trust: TLSTrust
    /// ALPN ids to offer, most preferred first. When non-empty the server must pick one of them.
    public var applicationProtocols: [String]

    public init(trust: TLSTrust = .systemDefault, applicationProtocols: [String] = []) {
        self.trust = trust
        self.applicationProtocols = applicationProtocols
    }
}

public struct TLSServerConfiguration: Sendable {
    public var identity: TLSIdentity
    /// ALPN ids this server speaks, most preferred first. A client that offers ALPN
    /// but none of these is refused with `no_application_protocol`.
    public var applicationProtocols: [String]

    public init(identity: TLSIdentity, applicationProtocols: [String] = []) {
        self.identity = identity
        self.applicationProtocols = applicationProtocols
    }
}

/// A certificate chain (leaf first) and its private key, as PEM text, checked to parse.
public struct TLSIdentity: Sendable {
    public let certificateChainPEM: String
    public let privateKeyPEM: String
    /// The leaf certificate's fingerprint, the value a client pins.
    public let fingerprint: CertificateFingerprint
    /// The leaf's DNS and IP subjectAltNames.
    public let subjectAlternativeNames: [String]
    /// The leaf's expiry, as OpenSSL prints it.
    public let notAfter: String

    public init(certificateChainPEM: String, privateKeyPEM: String, origin: String = "certificate") throws(TLSError) {
        let chain = try X509Certificate.parseChain(pem: certificateChainPEM, origin: origin)
        let key = try PrivateKey.parse(pem: privateKeyPEM, origin: origin + " key")
        guard chain[0].matches(key) else {
            throw TLSError.fileProblem(path: origin, reason: "the private key does not belong to the certificate")
        }
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.fingerprint = chain[0].fingerprint()
        self.subjectAlternativeNames = chain[0].subjectAlternativeNames
        self.notAfter = chain[0].notAfter
    }

    /// Loads a PEM chain file and a PEM key file.
    public static func load(certificatePath: String, keyPath: String) throws(TLSError) -> TLSIdentity {
        let chain = try readFile(certificatePath)
        let key = try readFile(keyPath)
        return try TLSIdentity(certificateChainPEM: chain, privateKeyPEM: key, origin: certificatePath)
    }

    static func readFile(_ path: String) throws(TLSError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw TLSError.fileProblem(path: path, reason: reason)
        }
    }
}
