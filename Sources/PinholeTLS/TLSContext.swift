internal import COpenSSL

/// A configured OpenSSL `SSL_CTX`, shared by every connection of one role.
///
/// `@unchecked Sendable` is safe because every field is set in `init` and never
/// changed afterwards, and OpenSSL documents that creating `SSL` objects from an
/// `SSL_CTX` that is no longer being configured is thread-safe.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    let isServer: Bool
    /// Set for clients only.
    let trust: TLSTrust?
    let applicationProtocols: [String]
    /// ALPN ids in wire format (length-prefixed); the server's selection callback
    /// hands OpenSSL pointers into this buffer, so it lives as long as the context.
    private let alpnWire: UnsafeMutableRawBufferPointer
    private let alpnWireLength: Int

    public convenience init(client configuration: TLSClientConfiguration) throws(TLSError) {
        try self.init(isServer: false, protocols: configuration.applicationProtocols, trust: configuration.trust)
        try configureClientTrust(configuration.trust)
    }

    public convenience init(server configuration: TLSServerConfiguration) throws(TLSError) {
        try self.init(isServer: true, protocols: configuration.applicationProtocols, trust: nil)
        try configureIdentity(configuration.identity)
    }

    private init(isServer: Bool, protocols: [String], trust: TLSTrust?) throws(TLSError) {
        let wire = try Self.encodeALPN(protocols)
        OpenSSLErrorQueue.clear()
        let method = isServer ? TLS_server_method() : TLS_client_method()
        let pointer = try OpenSSLErrorQueue.check(SSL_CTX_new(method), "creating a TLS context")
        self.pointer = pointer
        self.isServer = isServer
        self.trust = trust
        self.applicationProtocols = protocols
        self.alpnWire = .allocate(byteCount: max(wire.count, 1), alignment: 1)
        self.alpnWireLength = wire.count
        alpnWire.copyBytes(from: wire)

        try OpenSSLErrorQueue.check(
            pinhole_SSL_CTX_set_min_proto_version(pointer, TLS1_2_VERSION), "requiring TLS 1.2 or later")
        // Idle tunnels should cost little memory: let OpenSSL free its 16 KiB record
        // buffers between records instead of holding two per connection forever.
        _ = pinhole_SSL_CTX_set_mode(pointer, Int(SSL_MODE_RELEASE_BUFFERS))
        _ = pinhole_SSL_CTX_set_session_cache_mode(pointer, Int(SSL_SESS_CACHE_OFF))
        SSL_CTX_set_options(pointer, pinhole_SSL_OP_NO_RENEGOTIATION())
        // AES-128-GCM first: as strong as TLS 1.3 requires, and the cheapest per byte
        // on CPUs with AES instructions, which matters for bulk tunnel traffic.
        try OpenSSLErrorQueue.check(
            SSL_CTX_set_ciphersuites(
                pointer, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"),
            "choosing TLS 1.3 cipher suites")
        // TLS 1.2: forward secrecy and AEAD only. No static RSA key exchange (a stolen
        // key would decrypt recorded tunnels) and no CBC with SHA-1.
        try OpenSSLErrorQueue.check(
            SSL_CTX_set_cipher_list(pointer, "ECDHE+AESGCM:ECDHE+CHACHA20"), "choosing TLS 1.2 cipher suites")
        if isServer {
            // Tunnels are long-lived and never resumed; tickets would only cost bytes.
            _ = SSL_CTX_set_num_tickets(pointer, 0)
            if !protocols.isEmpty {
                SSL_CTX_set_alpn_select_cb(
                    pointer, selectApplicationProtocol, Unmanaged.passUnretained(self).toOpaque())
            }
        } else if !protocols.isEmpty {
            // SSL_CTX_set_alpn_protos returns 0 on success, unlike most of OpenSSL.
            let failed = SSL_CTX_set_alpn_protos(
                pointer, alpnWire.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(wire.count))
            guard failed == 0 else {
                throw TLSError.openSSL(operation: "setting ALPN ids", reason: OpenSSLErrorQueue.drain())
            }
        }
    }

    deinit {
        SSL_CTX_free(pointer)
        alpnWire.deallocate()
    }

    private func configureClientTrust(_ trust: TLSTrust) throws(TLSError) {
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        // One callback decides: it compares a pin, or runs OpenSSL's chain and name
        // checks and records which one failed so the error can say so.
        SSL_CTX_set_cert_verify_callback(pointer, verifyPeerCertificate, nil)
        switch trust {
        case .systemDefault:
            try OpenSSLErrorQueue.check(SSL_CTX_set_default_verify_paths(pointer), "loading the system's CA store")
        case .certificateAuthorities(let path):
            _ = try TLSIdentity.readFile(path)  // a clear "does not exist" beats OpenSSL's "system lib"
            OpenSSLErrorQueue.clear()
            guard SSL_CTX_load_verify_locations(pointer, path, nil) == 1 else {
                throw TLSError.fileProblem(
                    path: path, reason: "not a PEM CA bundle (\(OpenSSLErrorQueue.drain()))")
            }
        case .pinned:
            break
        }
    }

    private func configureIdentity(_ identity: TLSIdentity) throws(TLSError) {
        let chain = try X509Certificate.parseChain(pem: identity.certificateChainPEM, origin: "certificate")
        let key = try PrivateKey.parse(pem: identity.privateKeyPEM, origin: "private key")
        OpenSSLErrorQueue.clear()
        try OpenSSLErrorQueue.check(SSL_CTX_use_certificate(pointer, chain[0].pointer), "using the certificate")
        for intermediate in chain.dropFirst() {
            // add0 takes ownership of one reference, so give it one of its own.
            X509_up_ref(intermediate.pointer)
            try OpenSSLErrorQueue.check(
                pinhole_SSL_CTX_add0_chain_cert(pointer, intermediate.pointer), "adding an intermediate certificate")
        }
        try OpenSSLErrorQueue.check(SSL_CTX_use_PrivateKey(pointer, key.pointer), "using the private key")
        try OpenSSLErrorQueue.check(SSL_CTX_check_private_key(pointer), "matching the key to the certificate")
    }

    static func encodeALPN(_ protocols: [String]) throws(TLSError) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError.invalidConfiguration("ALPN id '\(name)' must be 1 to 255 bytes long")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }

    /// The server's choice: its own most preferred id that the client also offered.
    fileprivate func select(from offered: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let ours = UnsafeRawBufferPointer(rebasing: alpnWire[0..<alpnWireLength])
        for candidate in Self.splitALPN(ours) {
            if Self.splitALPN(offered).contains(where: { $0.elementsEqual(candidate) }) {
                return candidate
            }
        }
        return nil
    }

    /// The ids of a wire-format ALPN list; a truncated tail is ignored.
    private static func splitALPN(_ wire: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        var ids: [UnsafeRawBufferPointer] = []
        var offset = 0
        while offset < wire.count {
            let end = offset + 1 + Int(wire[offset])
            guard end <= wire.count else { break }
            ids.append(UnsafeRawBufferPointer(rebasing: wire[(offset + 1)..<end]))
            offset = end
        }
        return ids
    }
}

private func selectApplicationProtocol(
    _ ssl: OpaquePointer?,
    _ selected: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ selectedLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument, let selected, let selectedLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let context = Unmanaged<TLSContext>.fromOpaque(argument).takeUnretainedValue()
    guard let choice = context.select(from: UnsafeRawBufferPointer(start: offered, count: Int(offeredLength))) else {
        // The client asked for protocols we do not speak: refuse rather than guess.
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    selected.pointee = choice.baseAddress!.assumingMemoryBound(to: UInt8.self)
    selectedLength.pointee = UInt8(choice.count)
    return SSL_TLSEXT_ERR_OK
}
