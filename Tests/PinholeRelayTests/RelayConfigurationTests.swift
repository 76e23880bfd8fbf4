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

    @Test("registry limits set after init are checked when the relay starts, with the flags named")
    func registryLimits() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay"))
        var configuration = try RelayConfiguration(
            domain: "t.test", tokens: ["long-enough-token-1"], identity: identity)
        configuration.maxTunnelsPerToken = 200
        #expect {
            try configuration.validate()
        } throws: { "\($0)".contains("--max-names-per-token must be at least --max-tunnels-per-token") }
        configuration.maxNamesPerToken = 200
        configuration.forgetAfter = .zero
        #expect(throws: RelayError.self) { try configuration.validate() }
        configuration.forgetAfter = nil
        try configuration.validate()
        #expect(RelayConfiguration.describe(RelayConfiguration.defaultForgetAfter) == "30 days")
        #expect(RelayConfiguration.describe(.minutes(10)) == "10 min")
    }
}
