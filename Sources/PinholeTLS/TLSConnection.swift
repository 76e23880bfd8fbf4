internal import COpenSSL
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One OpenSSL `SSL*` and its ciphertext buffers. It never touches a channel: the
/// handler feeds it ciphertext and collects what it produces, and every OpenSSL
/// result comes back as a Swift enum.
final class TLSConnection {
    /// `SSL_set_app_data` is index 0 of the `SSL`'s ex_data.
    static let applicationDataIndex: Int32 = 0

    enum Step {
        case complete
        case wantsInput
        case failed(TLSError)
    }

    enum ReadResult {
        case wantsInput
        /// The peer sent `close_notify`: no more data will come.
        case closeNotify
        case failed(TLSError)
    }

    let buffers: CiphertextBuffers
    private let context: TLSContext  // keeps the SSL_CTX alive as long as the SSL
    private let ssl: OpaquePointer
    private let verification: PeerVerification?
    private(set) var handshakeComplete = false

    /// `serverName` is required for clients: it is sent as SNI (when it is a DNS
    /// name) and checked against the certificate unless the server is pinned.
    init(context: TLSContext, serverName: String?, allocator: ByteBufferAllocator) throws(TLSError) {
        self.context = context
        self.buffers = CiphertextBuffers(allocator: allocator)
        OpenSSLErrorQueue.clear()
        self.ssl = try OpenSSLErrorQueue.check(SSL_new(context.pointer), "creating a TLS connection")
        guard let bio = makeCiphertextBIO(buffers) else {
            SSL_free(ssl)
            throw TLSError.openSSL(operation: "creating the ciphertext BIO", reason: OpenSSLErrorQueue.drain())
        }
        SSL_set_bio(ssl, bio, bio)

        if context.isServer {
            self.verification = nil
            SSL_set_accept_state(ssl)
            return
        }
        guard let serverName, let trust = context.trust else {
            SSL_free(ssl)
            throw TLSError.invalidConfiguration("a TLS client needs the server's name to verify it")
        }
        let verification = PeerVerification(trust: trust, expectedName: serverName)
        self.verification = verification
        SSL_set_connect_state(ssl)
        SSL_set_ex_data(ssl, Self.applicationDataIndex, Unmanaged.passUnretained(verification).toOpaque())
        do {
            try configureServerName(serverName, checkName: !Self.isPinned(trust))
        } catch {
            SSL_free(ssl)
            throw error
        }
    }

    deinit {
        SSL_free(ssl)  // frees the BIO as well
    }

    private static func isPinned(_ trust: TLSTrust) -> Bool {
        if case .pinned = trust { return true }
        return false
    }

    private func configureServerName(_ name: String, checkName: Bool) throws(TLSError) {
        let bare = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        if Self.opensslReadsAsIPAddress(bare) {
            // RFC 6066 forbids IP literals in SNI, so only the certificate check uses it.
            if checkName {
                try OpenSSLErrorQueue.check(
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), bare), "checking for IP address \(bare)")
            }
            return
        }
        try OpenSSLErrorQueue.check(pinhole_SSL_set_tlsext_host_name(ssl, bare), "setting SNI to \(bare)")
        if checkName {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            try OpenSSLErrorQueue.check(SSL_set1_host(ssl, bare), "checking for host name \(bare)")
        }
    }

    /// Whether OpenSSL reads `text` as an IP address (what it will check or encode as
    /// one). Hosts are told apart from addresses outside this module with PinholeCore's
    /// `IPAddressLiteral`; this module, below Core, asks the library that consumes the value.
    static func opensslReadsAsIPAddress(_ text: String) -> Bool {
        guard let octets = a2i_IPADDRESS(text) else {
            ERR_clear_error()  // the failed parse left its reason on the queue
            return false
        }
        ASN1_OCTET_STRING_free(octets)
        return true
    }

    /// The ALPN id both sides agreed on, if any.
    var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    func handshake() -> Step {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            handshakeComplete = true
            return .complete
        }
        return step(forFailure: result)
    }

    /// Decrypts into the writable space of `plaintext` until it is full, the input
    /// runs out, or the peer closes. Returns nil when it stopped only because `plaintext` filled up.
    func read(into plaintext: inout ByteBuffer) -> ReadResult? {
        while plaintext.writableBytes > 0 {
            OpenSSLErrorQueue.clear()
            var count = 0
            let result = plaintext.withUnsafeMutableWritableBytes { space in
                SSL_read_ex(ssl, space.baseAddress, space.count, &count)
            }
            if result == 1 {
                plaintext.moveWriterIndex(forwardBy: count)
                continue
            }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ: return .wantsInput
            case SSL_ERROR_ZERO_RETURN: return .closeNotify
            default:
                if case .failed(let error) = step(forFailure: result) { return .failed(error) }
                return .wantsInput
            }
        }
        return nil
    }

    /// Encrypts all of `plaintext` into `buffers.outbound`.
    func write(_ plaintext: ByteBuffer) -> Step {
        var remaining = plaintext
        while remaining.readableBytes > 0 {
            OpenSSLErrorQueue.clear()
            var written = 0
            let result = remaining.withUnsafeReadableBytes { bytes in
                SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written)
            }
            guard result == 1 else { return step(forFailure: result) }
            remaining.moveReaderIndex(forwardBy: written)
        }
        return .complete
    }

    /// Queues our `close_notify`. Does not wait for the peer's.
    func shutdown() -> Step {
        OpenSSLErrorQueue.clear()
        let result = SSL_shutdown(ssl)
        if result >= 0 { return .complete }
        return step(forFailure: result)
    }

    /// Frees OpenSSL's record buffers when they hold nothing, so an idle connection
    /// costs a few KiB instead of two 16 KiB buffers. SSL_MODE_RELEASE_BUFFERS does
    /// this after most records but not all (some paths keep the read buffer).
    func releaseIdleBuffers() {
        guard handshakeComplete else { return }
        _ = SSL_free_buffers(ssl)  // returns 0 when data is pending; then they are in use
    }

    private func step(forFailure result: Int32) -> Step {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ:
            return .wantsInput
        case SSL_ERROR_ZERO_RETURN:
            return .failed(.protocolViolation(reason: "the peer closed the TLS session during the handshake"))
        default:
            return .failed(error(for: code))
        }
    }

    /// See `PeerVerification.expiredPinNotAfter`.
    var expiredPinNotAfter: String? { verification?.expiredPinNotAfter }

    private func error(for code: Int32) -> TLSError {
        if let failure = verification?.failure {
            OpenSSLErrorQueue.clear()
            return failure
        }
        let reasons = OpenSSLErrorQueue.drainReasons()
        let text = OpenSSLErrorQueue.text(of: reasons, fallback: "OpenSSL error \(code)")
        let alpnRefused = reasons.contains {
            $0.reason == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL || $0.reason == SSL_R_NO_APPLICATION_PROTOCOL
        }
        if alpnRefused {
            return .applicationProtocolMismatch(offered: context.applicationProtocols, selected: nil)
        }
        return handshakeComplete ? .protocolViolation(reason: text) : .handshakeFailed(reason: text)
    }
}
