import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

@Suite("Token guessing: a budget per address that parallel connections cannot multiply", .timeLimit(.minutes(2)))
struct TokenGuessingTests {
    @Test("60 wrong-token hellos at once over TLS from one address: at most 10 are checked, the rest told to slow down")
    func parallelGuesses() async throws {
        // Sixty TLS handshakes from one Python take a while on a loaded machine: the
        // first must not time out while the last are made.
        let relay = try await TestRelay.start { $0.handshakeTimeout = .seconds(60) }
        defer { Task { await relay.stop() } }
        let run = try ChildProcess("python3", [testScript("token_guess.py"), String(relay.addresses.agentPort), "60"])
        let (status, output) = await run.waitForExit()
        #expect(status == 0, "\(output)")
        struct Result: Decodable {
            let counts: [String: Int]
            let slow_down: String
        }
        let result = try JSONDecoder().decode(Result.self, from: Data(output.utf8))
        let checked = result.counts["bad_token", default: 0]
        #expect(checked >= 1 && checked <= 10, "\(result.counts)")
        #expect(checked + result.counts["slow_down", default: 0] == 60, "every hello is answered: \(result.counts)")
        #expect(result.slow_down.contains("127.0.0.1") && result.slow_down.contains("try again in"))
    }

    @Test("an agent told to slow down waits and retries instead of stopping")
    func agentRetriesWhenThrottled() async throws {
        let app = try await LocalApp.start()
        // One check per 5 s: the agent's first hello surely meets an empty budget.
        let relay = try await TestRelay.start { $0.tokenChecksPer5Seconds = 1 }
        defer {
            Task {
                await relay.stop(); await app.stop()
            }
        }
        // Use up this address's budget with wrong tokens.
        let run = try ChildProcess("python3", [testScript("token_guess.py"), String(relay.addresses.agentPort), "3"])
        _ = await run.waitForExit()
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        let info = try await agent.tunnel()
        #expect(info.name == "demo")
        let throttled = agent.recorded.contains {
            if case .reconnecting(_, _, let reason) = $0 { return reason.contains("too many token checks") }
            return false
        }
        #expect(throttled, "the first hello should have met the empty budget: \(agent.recorded)")
        await agent.stop()
    }
}
