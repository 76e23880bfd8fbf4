internal import COpenSSL
import Foundation

/// What a generated certificate should say.
public struct CertificateRequest: Sendable {
    public var commonName: String
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var notBefore: Date
    public var notAfter: Date
    /// A CA signs other certificates; a leaf serves TLS.
    public var isCertificateAuthority: Bool

    /// A leaf valid from an hour ago (tolerating clock skew) for `validFor` seconds.
    public init(
        commonName: String,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        validFor: TimeInterval = 10 * 365 * 24 * 3600,
        isCertificateAuthority: Bool = false
    ) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.notBefore = Date().addingTimeInterval(-3600)
        self.notAfter = Date().addingTimeInterval(validFor)
        self.isCertificateAuthority = isCertificateAuthority
    }
}

/// Makes ECDSA P-256 certificates through libcrypto, with no `openssl` command.
public enum CertificateGenerator {
    /// A certificate signed by its own key, such as the one a relay makes on first start.
    public static func selfSigned(_ request: CertificateRequest) throws(TLSError) -> TLSIdentity {
        try generate(request, issuer: nil)
    }

    /// A certificate signed by `issuer`, which must be a CA made by `selfSigned`.
    public static func issue(
        _ request: CertificateRequest, signedBy issuer: TLSIdentity
    ) throws(TLSError)
        -> TLSIdentity
    {
        try generate(request, issuer: issuer)
    }

    private static func generate(
        _ request: CertificateRequest, issuer: TLSIdentity?
    ) throws(TLSError)
        -> TLSIdentity
    {
        try validate(request)
        OpenSSLErrorQueue.clear()
        let key = PrivateKey(taking: try OpenSSLErrorQueue.check(pinhole_EVP_EC_gen_P256(), "generating a P-256 key"))
        let certificate = X509Certificate(taking: try OpenSSLErrorQueue.check(X509_new(), "allocating a certificate"))
        let x509 = certificate.pointer
        try OpenSSLErrorQueue.check(X509_set_version(x509, 2), "setting the certificate version")
        try setRandomSerial(x509)
        _ = try OpenSSLErrorQueue.check(
            ASN1_TIME_set(X509_getm_notBefore(x509), time_t(request.notBefore.timeIntervalSince1970)),
            "setting notBefore")
        _ = try OpenSSLErrorQueue.check(
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(request.notAfter.timeIntervalSince1970)),
            "setting notAfter")
        try OpenSSLErrorQueue.check(X509_set_pubkey(x509, key.pointer), "setting the public key")
        try OpenSSLErrorQueue.check(
            X509_NAME_add_entry_by_txt(X509_get_subject_name(x509), "CN", MBSTRING_ASC, request.commonName, -1, -1, 0),
            "setting the common name")

        let issuerCertificate: X509Certificate
        let signingKey: PrivateKey
        if let issuer {
            issuerCertificate = try X509Certificate.parseChain(pem: issuer.certificateChainPEM, origin: "issuer")[0]
            signingKey = try PrivateKey.parse(pem: issuer.privateKeyPEM, origin: "issuer key")
        } else {
            issuerCertificate = certificate
            signingKey = key
        }
        try OpenSSLErrorQueue.check(
            X509_set_issuer_name(x509, X509_get_subject_name(issuerCertificate.pointer)), "setting the issuer")
        try addExtensions(request, to: certificate, issuer: issuerCertificate, selfSigned: issuer == nil)
        guard X509_sign(x509, signingKey.pointer, EVP_sha256()) > 0 else {
            throw TLSError.openSSL(operation: "signing the certificate", reason: OpenSSLErrorQueue.drain())
        }
        var chain = try certificate.pem()
        if let issuer { chain += issuer.certificateChainPEM }
        return try TLSIdentity(
            certificateChainPEM: chain, privateKeyPEM: try key.pem(), origin: "generated certificate")
    }

    private static func validate(_ request: CertificateRequest) throws(TLSError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.*")
        for name in request.dnsNames where name.isEmpty || !name.allSatisfy(allowed.contains) {
            throw TLSError.invalidConfiguration("'\(name)' is not a DNS name a certificate can carry")
        }
        for address in request.ipAddresses where !TLSConnection.opensslReadsAsIPAddress(address) {
            throw TLSError.invalidConfiguration("'\(address)' is not an IP address")
        }
        guard request.notBefore < request.notAfter else {
            throw TLSError.invalidConfiguration("a certificate's notBefore must come before its notAfter")
        }
    }

    private static func setRandomSerial(_ x509: OpaquePointer) throws(TLSError) {
        var bytes = [UInt8](repeating: 0, count: 16)
        try OpenSSLErrorQueue.check(RAND_bytes(&bytes, Int32(bytes.count)), "drawing a random serial number")
        bytes[0] &= 0x7f  // serial numbers must be positive
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else {
            throw TLSError.openSSL(operation: "encoding the serial number", reason: OpenSSLErrorQueue.drain())
        }
        defer { BN_free(number) }
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(x509)) != nil else {
            throw TLSError.openSSL(operation: "setting the serial number", reason: OpenSSLErrorQueue.drain())
        }
    }

    private static func addExtensions(
        _ request: CertificateRequest, to certificate: X509Certificate, issuer: X509Certificate, selfSigned: Bool
    ) throws(TLSError) {
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, request.isCertificateAuthority ? "critical,CA:TRUE" : "critical,CA:FALSE"),
            (
                NID_key_usage,
                request.isCertificateAuthority ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"
            ),
            (NID_subject_key_identifier, "hash"),
        ]
        if !request.isCertificateAuthority { extensions.append((NID_ext_key_usage, "serverAuth")) }
        if !selfSigned { extensions.append((NID_authority_key_identifier, "keyid:always")) }
        let names = request.dnsNames.map { "DNS:\($0)" } + request.ipAddresses.map { "IP:\($0)" }
        if !names.isEmpty { extensions.append((NID_subject_alt_name, names.joined(separator: ","))) }

        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer.pointer, certificate.pointer, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                throw TLSError.openSSL(operation: "building extension \(value)", reason: OpenSSLErrorQueue.drain())
            }
            defer { X509_EXTENSION_free(ext) }
            try OpenSSLErrorQueue.check(X509_add_ext(certificate.pointer, ext, -1), "adding extension \(value)")
        }
    }
}

extension TLSIdentity {
    /// Writes the chain (mode 0644) and the key (mode 0600, never readable by others).
    public func write(certificatePath: String, keyPath: String) throws(TLSError) {
        try Self.writeFile(keyPath, contents: privateKeyPEM, mode: 0o600)
        try Self.writeFile(certificatePath, contents: certificateChainPEM, mode: 0o644)
    }

    private static func writeFile(_ path: String, contents: String, mode: mode_t) throws(TLSError) {
        // open(2) with the mode, then fchmod: the file is never readable by others,
        // not even for a moment, and an existing file gets the mode too.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw TLSError.fileProblem(path: path, reason: "cannot be written (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        guard fchmod(descriptor, mode) == 0 else {
            throw TLSError.fileProblem(path: path, reason: "cannot set its mode (\(String(cString: strerror(errno))))")
        }
        let bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw TLSError.fileProblem(path: path, reason: "write failed (\(String(cString: strerror(errno))))")
            }
            offset += written
        }
    }
}
