import Foundation
import PinholeTLS

/// Certificates made fresh for each test by our own generator.
enum TestCertificates {
    static func authority(_ name: String = "Pinhole Test CA") throws -> TLSIdentity {
        try CertificateGenerator.selfSigned(CertificateRequest(commonName: name, isCertificateAuthority: true))
    }

    static func leaf(
        dnsNames: [String] = ["relay.pinhole.test"], ipAddresses: [String] = ["127.0.0.1"],
        signedBy authority: TLSIdentity, expired: Bool = false
    ) throws -> TLSIdentity {
        var request = CertificateRequest(
            commonName: dnsNames.first ?? "relay", dnsNames: dnsNames, ipAddresses: ipAddresses)
        if expired {
            request.notBefore = Date().addingTimeInterval(-7200)
            request.notAfter = Date().addingTimeInterval(-3600)
        }
        return try CertificateGenerator.issue(request, signedBy: authority)
    }

    /// Writes the authority's certificate where a client's `certificateAuthorities` trust can read it.
    static func writeBundle(_ authority: TLSIdentity) throws -> String {
        let path = NSTemporaryDirectory() + "pinhole-ca-\(UUID().uuidString).pem"
        try authority.certificateChainPEM.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func serverContext(_ identity: TLSIdentity, protocols: [String] = ["pinhole/1"]) throws -> TLSContext {
        try TLSContext(server: TLSServerConfiguration(identity: identity, applicationProtocols: protocols))
    }

    static func clientContext(_ trust: TLSTrust, protocols: [String] = ["pinhole/1"]) throws -> TLSContext {
        try TLSContext(client: TLSClientConfiguration(trust: trust, applicationProtocols: protocols))
    }
}
