internal import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one OpenSSL `X509*`. Internal: nothing outside PinholeTLS sees OpenSSL types.
final class X509Certificate {
    let pointer: OpaquePointer

    /// Takes ownership of a reference the caller holds.
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Adds a reference to a certificate OpenSSL owns (for example the one under verification).
    init(borrowing pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }

    /// Parses every certificate in a PEM text, leaf first.
    static func parseChain(pem: String, origin: String) throws(TLSError) -> [X509Certificate] {
        var chain: [X509Certificate] = []
        let bio = try MemoryBIO(contents: pem, origin: origin)
        OpenSSLErrorQueue.clear()
        while let certificate = PEM_read_bio_X509(bio.pointer, nil, nil, nil) {
            chain.append(X509Certificate(taking: certificate))
        }
        // Reaching the end of the text leaves a "no start line" error behind; anything
        // else means a certificate block was damaged.
        let endError = ERR_peek_last_error()
        if chain.isEmpty || (endError != 0 && ERR_GET_REASON(endError) != PEM_R_NO_START_LINE) {
            let reason = OpenSSLErrorQueue.drain(fallback: "no PEM certificate found")
            throw TLSError.fileProblem(path: origin, reason: "not a PEM certificate chain (\(reason))")
        }
        OpenSSLErrorQueue.clear()
        return chain
    }

    /// The DER encoding's SHA-256, the form `--pin` takes.
    func fingerprint() -> CertificateFingerprint {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = X509_digest(pointer, EVP_sha256(), &digest, &length)
        // X509_digest only fails on allocation failure; a fingerprint of zeros could
        // never match a pin, so it fails closed.
        precondition(result == 1 && length == 32, "X509_digest failed: \(OpenSSLErrorQueue.drain())")
        return try! CertificateFingerprint(digest: Array(digest.prefix(32)))
    }

    var subject: String { Self.oneLine(X509_get_subject_name(pointer)) }
    var issuer: String { Self.oneLine(X509_get_issuer_name(pointer)) }
    var notBefore: String { Self.timeText(X509_get0_notBefore(pointer)) }
    var notAfter: String { Self.timeText(X509_get0_notAfter(pointer)) }
    /// Whether the certificate's validity ended before now.
    var hasExpired: Bool { X509_cmp_current_time(X509_get0_notAfter(pointer)) < 0 }

    /// DNS names and IP addresses from subjectAltName, in certificate order.
    var subjectAlternativeNames: [String] {
        guard let raw = X509_get_ext_d2i(pointer, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        var result: [String] = []
        for index in 0..<pinhole_sk_GENERAL_NAME_num(names) {
            guard let name = pinhole_sk_GENERAL_NAME_value(names, index) else { continue }
            if let dns = pinhole_GENERAL_NAME_dns(name) {
                result.append(String(decoding: Self.bytes(of: dns), as: UTF8.self))
            } else if let ip = pinhole_GENERAL_NAME_ip(name) {
                result.append(Self.ipText(Self.bytes(of: ip)))
            }
        }
        return result
    }

    private static func bytes(of string: UnsafePointer<ASN1_STRING>) -> [UInt8] {
        guard let data = ASN1_STRING_get0_data(string) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string))))
    }

    private static func ipText(_ bytes: [UInt8]) -> String {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return "IP(\(bytes.count) bytes)"
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return "IP(unprintable)" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name else { return "(no name)" }
        return MemoryBIO.capture { bio in
            X509_NAME_print_ex(bio, name, 0, pinhole_XN_FLAG_ONELINE())
        } ?? "(unprintable name)"
    }

    private static func timeText(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time else { return "(no date)" }
        return MemoryBIO.capture { bio in ASN1_TIME_print(bio, time) } ?? "(unprintable date)"
    }
}

/// Owns one `EVP_PKEY*`.
final class PrivateKey {
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    static func parse(pem: String, origin: String) throws(TLSError) -> PrivateKey {
        let bio = try MemoryBIO(contents: pem, origin: origin)
        OpenSSLErrorQueue.clear()
        guard let key = PEM_read_bio_PrivateKey(bio.pointer, nil, nil, nil) else {
            let reason = OpenSSLErrorQueue.drain()
            throw TLSError.fileProblem(path: origin, reason: "not an unencrypted PEM private key (\(reason))")
        }
        return PrivateKey(taking: key)
    }

    /// The key as unencrypted PKCS#8 PEM.
    func pem() throws(TLSError) -> String {
        let bio = MemoryBIO()
        OpenSSLErrorQueue.clear()
        try OpenSSLErrorQueue.check(
            PEM_write_bio_PrivateKey(bio.pointer, pointer, nil, nil, 0, nil, nil), "writing the private key as PEM")
        return bio.contents()
    }
}

extension X509Certificate {
    func pem() throws(TLSError) -> String {
        let bio = MemoryBIO()
        OpenSSLErrorQueue.clear()
        try OpenSSLErrorQueue.check(PEM_write_bio_X509(bio.pointer, pointer), "writing the certificate as PEM")
        return bio.contents()
    }
}

/// A growable in-memory OpenSSL BIO, used to move PEM text and printed names in and out.
final class MemoryBIO {
    let pointer: OpaquePointer

    init() {
        // BIO_new only fails when malloc does.
        pointer = BIO_new(BIO_s_mem())!
    }

    convenience init(contents: String, origin: String) throws(TLSError) {
        self.init()
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { BIO_write(pointer, $0.baseAddress, Int32($0.count)) }
        guard written == bytes.count || bytes.isEmpty else {
            throw TLSError.fileProblem(path: origin, reason: "could not be buffered for parsing")
        }
    }

    deinit {
        BIO_free(pointer)
    }

    func contents() -> String {
        var data: UnsafeMutablePointer<CChar>?
        let length = pinhole_BIO_get_mem_data(pointer, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// Runs a printing function against a fresh BIO and returns what it printed.
    static func capture(_ print: (OpaquePointer) -> Int32) -> String? {
        let bio = MemoryBIO()
        guard print(bio.pointer) > 0 else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        return bio.contents()
    }
}

extension X509Certificate {
    func matches(_ key: PrivateKey) -> Bool {
        let matches = X509_check_private_key(pointer, key.pointer) == 1
        OpenSSLErrorQueue.clear()
        return matches
    }
}
