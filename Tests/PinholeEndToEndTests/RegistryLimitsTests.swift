import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import PinholeTunnel
import Testing

/// Quotas and alias rules through a real relay and agents.
@Suite("Registry limits: tunnels per token, aliases per hello, aliases that belong to a token", .timeLimit(.minutes(2)))
struct RegistryLimitsTests {
    static let otherToken = "other-token-0123456789"

    @Test("a token over --max-tunnels-per-token waits, saying so once, and gets its tunnel when one stops")
    func tokenQuotaIsWaitedOut() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start { $0.maxTunnelsPerToken = 1 }
        let target = TargetAddress(host: "127.0.0.1", port: app.port)
        let first = TestAgent.start(relay: relay, target: target, name: "first")
        defer {
            Task {
                await first.stop(); await relay.stop(); await app.stop()
            }
        }
        _ = try await first.tunnel()
        let other = TestAgent.start(relay: relay, target: target, name: "elsewhere", token: Self.otherToken)
        _ = try await other.tunnel()

        let second = TestAgent.start(relay: relay, target: target, name: "second")
        defer { Task { await second.stop() } }
        let waiting = try await second.events { events in events.contains { Self.isNoRoom($0) } }
        let line = try #require(waiting.compactMap(Self.noRoomReason).first)
        #expect(line.contains("this token already has 1 tunnel on the relay (--max-tunnels-per-token)"), "\(line)")
        #expect(line.contains("waiting for room"))

        await first.stop()
        let tunnel = try await second.tunnel()
        #expect(tunnel.name == "second")
        #expect(second.recorded.filter(Self.isNoRoom).count == 1, "said once, however many tries it took")
        let (_, output) = try await curl(relay.curl("second", "/hello"))
        #expect(output == "Hello, world!")
        await other.stop()
    }

    @Test("a hello with more aliases than --max-aliases is refused, naming the flag")
    func aliasCap() async throws {
        let relay = try await TestRelay.start { $0.maxAliases = 2 }
        defer { Task { await relay.stop() } }
        let agent = TestAgent.start(relay: relay, target: .default, name: "many", aliases: ["a", "b", "c"])
        guard case .refused(.invalidRequest, let message) = await agent.outcome() as? AgentError else {
            Issue.record("three aliases were not refused")
            return
        }
        #expect(message.contains("asks for 3 aliases") && message.contains("at most 2 per tunnel (--max-aliases)"))
    }

    @Test("another token's alias is name_taken; an ambiguous one names the alias held, never its tunnel")
    func aliasesOfAnotherToken() async throws {
        let relay = try await TestRelay.start()
        let owner = TestAgent.start(relay: relay, target: .default, name: "payments", aliases: ["checkout.shop"])
        defer {
            Task {
                await owner.stop(); await relay.stop()
            }
        }
        _ = try await owner.tunnel()
        let squatter = TestAgent.start(
            relay: relay, target: .default, name: "squatter", token: Self.otherToken, aliases: ["checkout.shop"])
        guard case .refused(.nameTaken, let taken) = await squatter.outcome() as? AgentError else {
            Issue.record("another token took the alias")
            return
        }
        #expect(taken.contains("'checkout.shop' is routed to another token's tunnel"), "\(taken)")
        let ambiguous = TestAgent.start(
            relay: relay, target: .default, name: "billing", token: Self.otherToken, aliases: ["checkout.billing"])
        guard case .refused(.aliasTaken, let message) = await ambiguous.outcome() as? AgentError else {
            Issue.record("an ambiguous alias was accepted")
            return
        }
        #expect(message.contains("'checkout.billing' cannot be told apart from 'checkout.shop'"), "\(message)")
        #expect(message.contains("Host 'checkout'") && !message.contains("payments"), "\(message)")
    }

    private static func noRoomReason(_ event: AgentEvent) -> String? {
        guard case .reconnecting(_, _, let reason) = event, reason.contains("no room") else { return nil }
        return reason
    }

    private static func isNoRoom(_ event: AgentEvent) -> Bool { noRoomReason(event) != nil }
}
