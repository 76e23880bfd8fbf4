import Foundation
import PinholeTestSupport
import Testing

/// A peer that hangs with its TCP connection open (frozen with SIGSTOP: the kernel still
/// acknowledges bytes, nobody answers PINGs) must be noticed by keepalive.
@Suite("Keepalive drops a peer that stops answering", .timeLimit(.minutes(1)))
struct KeepaliveTests {
    @Test("the relay drops a frozen agent, and its host then gets a 503 at once")
    func relayDropsFrozenAgent() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(
            appPort: app.port, relayArguments: ["--keepalive", "1"], agentArguments: ["--keepalive", "60"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let agent = tunnel.agent.processIdentifier
        kill(agent, SIGSTOP)
        defer { kill(agent, SIGCONT) }  // runs before stop(): a stopped process keeps SIGTERM pending

        _ = try await tunnel.relay.waitForOutput { $0.contains("agent disconnected") }
        let (status, output) = try await curl(tunnel.curl("/hello", ["-w", "\n%{http_code}"]))
        #expect(status == 0)
        #expect(output.hasSuffix("\n503"), "\(output)")
        #expect(output.contains("bulk.tunnels.test"), "the 503 names the host: \(output)")
    }

    @Test("the agent notices a frozen relay and reports why it disconnected")
    func agentNoticesFrozenRelay() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(
            appPort: app.port, relayArguments: ["--keepalive", "60"], agentArguments: ["--keepalive", "1"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let relay = tunnel.relay.processIdentifier
        kill(relay, SIGSTOP)
        defer { kill(relay, SIGCONT) }

        let output = try await tunnel.agent.waitForOutput { $0.contains(#""event":"disconnected""#) }
        #expect(output.contains("the relay stopped answering"), "\(output)")
    }
}
