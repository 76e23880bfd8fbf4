import ArgumentParser
import Testing

@testable import PinholeCommands

@Suite("agent: the embedded relay's limits")
struct EmbeddedLimitOptionsTests {
    @Test("the relay's limit flags work for the embedded relay, and are refused with --relay")
    func flags() {
        #expect(
            parseError(
                AgentCommand.self,
                [
                    "3000", "--max-in-flight-per-address", "64", "--in-flight-wait", "2", "--stall-timeout", "0",
                    "--max-connections", "512", "--max-connections-per-address", "128",
                ]) == nil)
        #expect(
            parseError(AgentCommand.self, ["3000", "--max-connections", "0"])?.contains(
                "--max-connections must be at least 1") == true)
        #expect(
            parseError(AgentCommand.self, ["3000", "--stall-timeout=-1"])?.contains("--stall-timeout must be 0") == true
        )
        let withRelay = parseError(
            AgentCommand.self,
            [
                "3000", "--relay", "relay.example.com:4443", "--token", String(repeating: "a1", count: 16),
                "--stall-timeout", "5",
            ])
        #expect(withRelay?.contains("--stall-timeout is for the embedded relay") == true, "\(withRelay ?? "nil")")
    }
}
