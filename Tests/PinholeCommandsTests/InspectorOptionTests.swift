import ArgumentParser
import Testing

@testable import PinholeCommands

@Suite("agent --inspect")
struct InspectorOptionTests {
    @Test("--inspect takes HOST:PORT, [IPv6]:PORT, PORT or off")
    func parsing() throws {
        #expect(try InspectorOption.parse("127.0.0.1:4040") == InspectorOption(host: "127.0.0.1", port: 4040))
        #expect(try InspectorOption.parse("[::1]:5050") == InspectorOption(host: "::1", port: 5050))
        #expect(try InspectorOption.parse("4041") == InspectorOption(host: "127.0.0.1", port: 4041))
        #expect(try InspectorOption.parse("off") == nil)
        for bad in ["", "localhost", ":4040", "127.0.0.1:0", "127.0.0.1:70000", "on"] {
            #expect(throws: ValidationError.self, "\(bad)") { try InspectorOption.parse(bad) }
        }
        #expect(throws: Never.self) { try AgentCommand.parse(["--inspect", "off"]).validate() }
        #expect(throws: (any Error).self) { try AgentCommand.parse(["--inspect", "nowhere"]).validate() }
    }

    @Test("an inspector that cannot listen leaves the agent running without it, and says so")
    func neverFatal() async {
        // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding it fails.
        let started = await InspectorOption.start(InspectorOption(host: "192.0.2.1", port: 4040)) { _ in }
        #expect(started.inspector == nil && started.server == nil)
        #expect(started.note?.contains("runs without it") == true, "\(started.note ?? "no note")")
        let off = await InspectorOption.start(nil) { _ in }
        #expect(off.inspector == nil && off.note == nil)
    }
}
