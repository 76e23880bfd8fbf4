import Foundation
import PinholeRelay
import Testing

@Suite("Relay tokens: given, from a file, from the environment, or kept beside the certificate")
struct RelayTokensTests {
    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "pinhole-tokens-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("given tokens, file lines and PINHOLE_TOKENS add up, and the banner never shows one")
    func givenTokens() throws {
        let directory = try temporaryDirectory()
        let file = directory + "/tokens"
        try "  from-file-1 \n\nfrom-file-2\n".write(toFile: file, atomically: true, encoding: .utf8)
        let resolved = try RelayTokens.resolve(
            given: ["argv-token"], file: file, environment: "env-1, env-2", directory: directory)
        #expect(resolved.tokens == ["argv-token", "from-file-1", "from-file-2", "env-1", "env-2"])
        #expect(resolved.banner == "<your token>")
        #expect(!FileManager.default.fileExists(atPath: directory + "/relay.token"), "nothing generated")
    }

    @Test("an unreadable token file is an error that names it")
    func unreadableFile() throws {
        #expect(throws: RelayError.self) {
            try RelayTokens.resolve(given: [], file: "/nonexistent/tokens", environment: nil, directory: ".")
        }
    }

    @Test("without tokens, one is made once (mode 0600), shown once, and read back after")
    func generatedOnce() throws {
        let directory = try temporaryDirectory()
        let first = try RelayTokens.resolve(given: [], file: nil, environment: nil, directory: directory)
        #expect(first.tokens.count == 1 && first.tokens[0].count == 32)
        #expect(first.banner == first.tokens[0], "shown on the start that made it")
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/relay.token")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let second = try RelayTokens.resolve(given: [], file: nil, environment: nil, directory: directory)
        #expect(second.tokens == first.tokens)
        #expect(!second.banner.contains(first.tokens[0]), "never shown again")
    }
}
