import Foundation
import PinholeTLS
import PinholeTestSupport
import Testing

@Suite("Certificate tooling")
struct CertificateTests {
    @Test("a generated certificate carries the requested names and loads back from disk")
    func generateWriteLoad() throws {
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(
                commonName: "relay", dnsNames: ["tunnel.example.test", "*.tunnel.example.test"],
                ipAddresses: ["198.51.100.4"]))
        #expect(identity.subjectAlternativeNames == ["tunnel.example.test", "*.tunnel.example.test", "198.51.100.4"])
        let directory = try makeTemporaryDirectory("certs")
        try identity.write(certificatePath: directory + "/relay.crt", keyPath: directory + "/relay.key")

        let keyMode =
            try FileManager.default.attributesOfItem(atPath: directory + "/relay.key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let loaded = try TLSIdentity.load(certificatePath: directory + "/relay.crt", keyPath: directory + "/relay.key")
        #expect(loaded.fingerprint == identity.fingerprint)
    }

    @Test("the fingerprint matches `openssl x509 -fingerprint -sha256`")
    func fingerprintMatchesOpenSSL() async throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay"))
        let path = try TestCertificates.writeBundle(identity)
        let (status, output) = await try ChildProcess(
            "openssl", ["x509", "-in", path, "-noout", "-fingerprint", "-sha256"]
        ).waitForExit()
        #expect(status == 0, "\(output)")
        // "sha256 Fingerprint=AB:CD:..." is accepted by the parser as well.
        let theirs = try #require(output.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try CertificateFingerprint(parsing: "sha256:" + theirs) == identity.fingerprint)
        #expect(identity.fingerprint.description.hasPrefix("sha256:"))
        #expect(identity.fingerprint.description.count == 7 + 64)
    }

    @Test("malformed pins are refused with a message saying what a pin looks like")
    func malformedPins() {
        for text in [
            "", "abc", "sha256:xyz", "sha1:" + String(repeating: "a", count: 64),
            "sha256:" + String(repeating: "a", count: 62),
        ] {
            #expect(throws: TLSError.self) { try CertificateFingerprint(parsing: text) }
        }
        #expect(throws: TLSError.self) {
            try CertificateFingerprint(parsing: "sha256:zz" + String(repeating: "a", count: 62))
        }
    }

    @Test("missing and malformed files give errors that name the file")
    func badFiles() throws {
        #expect {
            try TLSIdentity.load(certificatePath: "/nonexistent/relay.crt", keyPath: "/nonexistent/relay.key")
        } throws: { error in
            "\(error)".contains("/nonexistent/relay.crt") && "\(error)".contains("does not exist")
        }
        #expect(throws: TLSError.self) {
            try TLSIdentity(certificateChainPEM: "not a certificate", privateKeyPEM: "nor a key")
        }
        let one = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "one"))
        let two = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "two"))
        #expect {
            try TLSIdentity(certificateChainPEM: one.certificateChainPEM, privateKeyPEM: two.privateKeyPEM)
        } throws: { error in
            "\(error)".contains("does not belong")
        }
    }

    @Test("invalid names for a certificate are refused")
    func invalidNames() {
        #expect(throws: TLSError.self) {
            try CertificateGenerator.selfSigned(CertificateRequest(commonName: "x", dnsNames: ["bad name,IP:1.2.3.4"]))
        }
        #expect(throws: TLSError.self) {
            try CertificateGenerator.selfSigned(CertificateRequest(commonName: "x", ipAddresses: ["300.1.1.1"]))
        }
    }
}
