import Foundation
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeTestSupport
import Testing

/// A peer that hangs with its TCP connection open (frozen with SIGSTOP: the kernel still
/// acknowledges bytes, nobody answers PINGs) must be noticed, by keepalive once the tunnel
/// is up and by the handshake timeout before.
@Suite("Peers that stop answering are dropped", .timeLimit(.minutes(1)))
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

    @Test("a relay that accepts and never answers is retried after the handshake timeout")
    func silentRelayIsRetried() async throws {
        let silent = try await SilentListener.start()
        defer { silent.channel.close(promise: nil) }
        let relay = try await TestRelay.start()  // for an identity to pin; never dialled
        defer { Task { await relay.stop() } }
        let agent = TestAgent.start(
            relay: relay, target: .default, agentPort: silent.port, handshakeTimeout: .milliseconds(300))
        defer { Task { await agent.stop() } }
        let events = try await agent.events { events in
            events.contains { event in
                guard case .reconnecting(_, _, let reason) = event else { return false }
                return reason.contains("did not complete the handshake")
            }
        }
        #expect(!events.contains { if case .tunnelReady = $0 { true } else { false } }, "\(events)")
    }

    @Test("stopping an agent that waits for a silent relay's handshake does not wait for the timeout")
    func stopDuringHandshake() async throws {
        let silent = try await SilentListener.start()
        defer { silent.channel.close(promise: nil) }
        let relay = try await TestRelay.start()
        defer { Task { await relay.stop() } }
        // Longer than the suite's time limit: only cancellation can end this wait in time.
        let agent = TestAgent.start(
            relay: relay, target: .default, agentPort: silent.port, handshakeTimeout: .seconds(120))
        try await silent.accepted.futureResult.get()
        await agent.stop()
        #expect(!agent.recorded.contains { if case .tunnelReady = $0 { true } else { false } })
    }
}

/// A TCP listener that accepts connections and never reads or writes a byte.
private struct SilentListener {
    let channel: any Channel
    /// Completed when the first connection is accepted.
    let accepted: EventLoopPromise<Void>
    var port: Int { channel.localAddress!.port! }

    static func start() async throws -> SilentListener {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = group.next().makePromise(of: Void.self)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { child in
                accepted.succeed(())
                return child.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentListener(channel: channel, accepted: accepted)
    }
}
