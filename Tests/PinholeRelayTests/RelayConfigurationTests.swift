import PinholeTLS
import Testing

@testable import PinholeRelay

@Suite("Relay configuration: tokens long enough not to be guessed")
struct RelayConfigurationTests {
    @Test("a token shorter than 16 characters is refused, saying which and how long")
    func minimumTokenLength() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay"))
        #expect {
            try RelayConfiguration(domain: "t.test", tokens: ["long-enough-token-1", "short"], identity: identity)
        } throws: { error in
            "\(error)".contains("token 2 has 5 characters") && "\(error)".contains("at least 16")
        }
        _ = try RelayConfiguration(domain: "t.test", tokens: [RelayTokens.generate()], identity: identity)
    }
}
