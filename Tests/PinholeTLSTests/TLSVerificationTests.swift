import Foundation
import PinholeTLS
import Testing

@Suite("TLS certificate verification in memory")
struct TLSVerificationTests {
    /// Runs a handshake against `identity` and returns the client's error, if any.
    private func clientError(trust: TLSTrust, identity: TLSIdentity, serverName: String) throws -> TLSError? {
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(trust), server: try TestCertificates.serverContext(identity),
            serverName: serverName)
        try pair.connect()
        if pair.clientRecorder.tlsErrors.isEmpty {
            #expect(pair.clientRecorder.handshakeCompleted)
        } else {
            #expect(!pair.clientRecorder.handshakeCompleted)
            #expect(!pair.client.isActive)
        }
        return pair.clientRecorder.tlsErrors.first
    }

    @Test("a pinned certificate is accepted without CA or name checks")
    func pinMatch() throws {
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "vm", ipAddresses: ["10.0.0.7"]))
        #expect(
            try clientError(trust: .pinned(identity.fingerprint), identity: identity, serverName: "203.0.113.9") == nil)
    }

    @Test("a pinned certificate past its validity is still trusted, with a warning event before the handshake's end")
    func expiredPin() throws {
        let authority = try TestCertificates.authority()
        let expired = try TestCertificates.leaf(signedBy: authority, expired: true)
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(expired.fingerprint)),
            server: try TestCertificates.serverContext(expired), serverName: "relay.pinhole.test")
        try pair.connect()
        #expect(pair.clientRecorder.tlsErrors.isEmpty && pair.clientRecorder.handshakeCompleted)
        guard case .pinnedCertificateExpired(let notAfter) = pair.clientRecorder.events.first else {
            Issue.record("no warning: \(pair.clientRecorder.events)")
            return
        }
        #expect(notAfter == expired.notAfter)

        let fresh = try TestCertificates.leaf(signedBy: authority)
        let current = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(fresh.fingerprint)),
            server: try TestCertificates.serverContext(fresh), serverName: "relay.pinhole.test")
        try current.connect()
        #expect(current.clientRecorder.events.count == 1, "no warning for a current certificate")
    }

    @Test("a different certificate than the pinned one is refused, naming both fingerprints")
    func pinMismatch() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "vm"))
        let other = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "vm"))
        let error = try clientError(trust: .pinned(other.fingerprint), identity: identity, serverName: "vm")
        #expect(error == .pinMismatch(expected: other.fingerprint, presented: identity.fingerprint))
        let message = "\(try #require(error))"
        #expect(message.contains(other.fingerprint.description) && message.contains(identity.fingerprint.description))
    }

    @Test("DNS subjectAltName: match and mismatch")
    func dnsNames() throws {
        let authority = try TestCertificates.authority()
        let bundle = try TestCertificates.writeBundle(authority)
        let leaf = try TestCertificates.leaf(
            dnsNames: ["relay.pinhole.test", "*.tunnels.pinhole.test"], ipAddresses: [], signedBy: authority)
        #expect(
            try clientError(
                trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "relay.pinhole.test") == nil)
        #expect(
            try clientError(
                trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "web.tunnels.pinhole.test")
                == nil)
        let error = try clientError(
            trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "evil.example.test")
        #expect(
            error
                == .nameMismatch(
                    expected: "evil.example.test", presented: ["relay.pinhole.test", "*.tunnels.pinhole.test"]))
        #expect("\(try #require(error))".contains("not for evil.example.test"))
    }

    @Test("IP subjectAltName: match and mismatch")
    func ipAddresses() throws {
        let authority = try TestCertificates.authority()
        let bundle = try TestCertificates.writeBundle(authority)
        let leaf = try TestCertificates.leaf(dnsNames: [], ipAddresses: ["192.0.2.10", "::1"], signedBy: authority)
        #expect(
            try clientError(trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "192.0.2.10")
                == nil)
        #expect(
            try clientError(trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "[::1]") == nil)
        let error = try clientError(
            trust: .certificateAuthorities(path: bundle), identity: leaf, serverName: "192.0.2.99")
        #expect(error == .nameMismatch(expected: "192.0.2.99", presented: ["192.0.2.10", "::1"]))
    }

    @Test("an expired certificate is refused as expired")
    func expired() throws {
        let authority = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(signedBy: authority, expired: true)
        let error = try clientError(
            trust: .certificateAuthorities(path: TestCertificates.writeBundle(authority)), identity: leaf,
            serverName: "relay.pinhole.test")
        guard case .certificateExpired(let subject, let notAfter) = try #require(error) else {
            Issue.record("expected an expiry error, got \(String(describing: error))")
            return
        }
        #expect(subject.contains("relay.pinhole.test"))
        #expect(!notAfter.isEmpty)
    }

    @Test("a certificate from an unknown CA is refused as untrusted")
    func untrusted() throws {
        let trusted = try TestCertificates.authority("Trusted CA")
        let stranger = try TestCertificates.authority("Stranger CA")
        let leaf = try TestCertificates.leaf(signedBy: stranger)
        let error = try clientError(
            trust: .certificateAuthorities(path: TestCertificates.writeBundle(trusted)), identity: leaf,
            serverName: "relay.pinhole.test")
        guard case .untrustedIssuer(_, let issuer, _) = try #require(error) else {
            Issue.record("expected an untrusted issuer, got \(String(describing: error))")
            return
        }
        #expect(issuer.contains("Stranger CA"))
    }

    @Test("a self-signed certificate is untrusted by the system store, as it should be")
    func selfSignedAgainstSystemStore() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "vm", dnsNames: ["vm"]))
        let error = try clientError(trust: .systemDefault, identity: identity, serverName: "vm")
        guard case .untrustedIssuer = try #require(error) else {
            Issue.record("expected an untrusted issuer, got \(String(describing: error))")
            return
        }
    }

    @Test("a relay's self-signed certificate can be its own CA bundle")
    func selfSignedAsBundle() throws {
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "vm", dnsNames: ["vm.example.test"]))
        let bundle = try TestCertificates.writeBundle(identity)
        #expect(
            try clientError(
                trust: .certificateAuthorities(path: bundle), identity: identity, serverName: "vm.example.test") == nil)
    }
}
