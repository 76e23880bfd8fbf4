import ArgumentParser
import Testing

@testable import PinholeCommands

@Suite("agent: the app's protocol")
struct AgentCommandProtocolTests {
    private func error(_ arguments: [String]) -> String? {
        do {
            _ = try AgentCommand.parseAsRoot(arguments)
            return nil
        } catch {
            return AgentCommand.message(for: error)
        }
    }

    @Test("h2c:// and --app-protocol h2c are accepted; a contradiction is refused")
    func appProtocol() {
        #expect(error(["h2c://localhost:50051"]) == nil)
        #expect(error(["50051", "--app-protocol", "h2c"]) == nil)
        #expect(error(["h2c://localhost:50051", "--app-protocol", "h2c"]) == nil)
        #expect(error(["h2c://localhost:50051", "--app-protocol", "http1"])?.contains("contradicts") == true)
        #expect(error(["50051", "--app-protocol", "http3"]) != nil)
        #expect(error(["https://localhost:50051"])?.contains("h2c://") == true)
    }
}
