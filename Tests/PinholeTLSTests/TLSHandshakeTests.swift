import Foundation
import NIOCore
import NIOEmbedded
import PinholeTLS
import Testing

@Suite("TLS handshake in memory")
struct TLSHandshakeTests {
    @Test("both roles complete the handshake and exchange data")
    func handshakeAndData() throws {
        let authority = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(signedBy: authority)
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(
                .certificateAuthorities(path: TestCertificates.writeBundle(authority))),
            server: try TestCertificates.serverContext(leaf),
            serverName: "relay.pinhole.test")
        try pair.connect()

        #expect(pair.clientRecorder.handshakeCompleted)
        #expect(pair.serverRecorder.handshakeCompleted)
        try pair.send("hello from the agent", from: pair.client)
        try pair.send("hello from the relay", from: pair.server)
        #expect(pair.serverRecorder.received == "hello from the agent")
        #expect(pair.clientRecorder.received == "hello from the relay")
        #expect(pair.clientRecorder.errors.isEmpty && pair.serverRecorder.errors.isEmpty)
    }

    @Test("writes made before the handshake ends are delivered after it")
    func writesBeforeHandshake() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint)),
            server: try TestCertificates.serverContext(identity), serverName: "relay")
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try pair.server.connect(to: address).wait()
        try pair.client.connect(to: address).wait()
        pair.client.write(ByteBuffer(string: "early "), promise: nil)
        pair.client.writeAndFlush(ByteBuffer(string: "bytes"), promise: nil)
        try pair.interact()
        #expect(pair.serverRecorder.received == "early bytes")
    }

    @Test("ALPN: the server's preferred common id is chosen")
    func alpnAgreement() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint), protocols: ["h2", "pinhole/1"]),
            server: try TestCertificates.serverContext(identity, protocols: ["pinhole/1", "h2"]),
            serverName: "relay")
        try pair.connect()
        #expect(pair.clientRecorder.negotiatedProtocol == "pinhole/1")
        #expect(pair.serverRecorder.negotiatedProtocol == "pinhole/1")
    }

    @Test("ALPN: no common id fails both sides with a clear error")
    func alpnMismatch() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint), protocols: ["pinhole/2"]),
            server: try TestCertificates.serverContext(identity, protocols: ["pinhole/1"]),
            serverName: "relay")
        try pair.connect()
        #expect(!pair.clientRecorder.handshakeCompleted)
        let error = try #require(pair.clientRecorder.tlsErrors.first)
        #expect(error == .applicationProtocolMismatch(offered: ["pinhole/2"], selected: nil))
        #expect("\(error)".contains("none of the offered application protocols (pinhole/2)"))
        #expect(!pair.serverRecorder.tlsErrors.isEmpty)
        #expect(!pair.client.isActive && !pair.server.isActive)
    }

    @Test("garbage instead of a handshake is an error and a close, not a crash")
    func garbageDuringHandshake() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay"))
        let server = try EmbeddedChannelHarness(TestCertificates.serverContext(identity))
        try server.channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: relay\r\n\r\n"))
        let error = try #require(server.recorder.tlsErrors.first)
        guard case .handshakeFailed(let reason) = error else {
            Issue.record("expected a handshake failure, got \(error)")
            return
        }
        // OpenSSL recognises a plain HTTP request and says so.
        #expect(reason.contains("http request"), "\(reason)")
        #expect(!server.channel.isActive)
    }

    @Test("records split across many reads, and several records in one read, decrypt in order")
    func recordsAcrossReads() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint)),
            server: try TestCertificates.serverContext(identity), serverName: "relay")
        try pair.connect()
        // 100 KB of numbered lines: seven records, so record boundaries fall inside reads.
        let text = (0..<10_000).map { String(format: "%09d\n", $0) }.joined()
        pair.client.writeAndFlush(ByteBuffer(string: text), promise: nil)
        var ciphertext = ByteBuffer()
        while var part = try pair.client.readOutbound(as: ByteBuffer.self) { ciphertext.writeBuffer(&part) }
        // Reads of uneven sizes: a few bytes (less than a record header), a record and a
        // half, and the rest at once.
        for size in [1, 3, 7, 4_000, 24_577, 2] where ciphertext.readableBytes > 0 {
            try pair.server.writeInbound(ciphertext.readSlice(length: min(size, ciphertext.readableBytes))!)
        }
        try pair.server.writeInbound(ciphertext)
        #expect(pair.serverRecorder.received == text)
        #expect(pair.serverRecorder.errors.isEmpty)
    }

    @Test("garbage after the handshake is a protocol violation")
    func garbageAfterHandshake() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint)),
            server: try TestCertificates.serverContext(identity), serverName: "relay")
        try pair.connect()
        var noise = ByteBuffer()
        noise.writeBytes([0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xAB, count: 32))
        try pair.server.writeInbound(noise)
        let error = try #require(pair.serverRecorder.tlsErrors.first)
        guard case .protocolViolation = error else {
            Issue.record("expected a protocol violation, got \(error)")
            return
        }
        #expect(!pair.server.isActive)
    }
}

/// One server-side TLS handler in an active `EmbeddedChannel`, fed by hand.
struct EmbeddedChannelHarness {
    let channel = NIOEmbedded.EmbeddedChannel()
    let recorder = TLSRecorder()

    init(_ context: TLSContext) throws {
        try channel.pipeline.syncOperations.addHandlers([TLSHandler(context: context), recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }
}
