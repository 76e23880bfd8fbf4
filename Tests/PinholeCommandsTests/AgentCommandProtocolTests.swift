import ArgumentParser
import Testing

@testable import PinholeCommands

@Suite("agent: the app's protocol")
struct AgentCommandProtocolTests {
    @Test("h2c:// and --app-protocol h2c are accepted; a contradiction is refused")
    func appProtocol() {
        #expect(parseError(AgentCommand.self, ["h2c://localhost:50051"]) == nil)
        #expect(parseError(AgentCommand.self, ["50051", "--app-protocol", "h2c"]) == nil)
        #expect(parseError(AgentCommand.self, ["h2c://localhost:50051", "--app-protocol", "h2c"]) == nil)
        #expect(
            parseError(AgentCommand.self, ["h2c://localhost:50051", "--app-protocol", "http1"])?.contains("contradicts")
                == true)
        #expect(parseError(AgentCommand.self, ["50051", "--app-protocol", "http3"]) != nil)
        #expect(parseError(AgentCommand.self, ["https://localhost:50051"])?.contains("h2c://") == true)
    }
}
