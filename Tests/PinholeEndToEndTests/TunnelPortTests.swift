import Foundation
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// A relay of a port per tunnel, with a port of its range held by another program.
@Suite("Port-per-tunnel relays: busy ports, held ports, and what the refusals say", .timeLimit(.minutes(2)))
struct TunnelPortTests {
    /// Two adjacent loopback ports, the first held by a listener of ours (another program).
    private func rangeWithBusyFirstPort() async throws -> (ClosedRange<Int>, any Channel) {
        for _ in 0..<20 {
            let port = try await ServerBootstrapProbe.bind()
            guard port < 65535,
                let holder = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: port).get()
            else { continue }
            guard
                let next = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: port + 1).get()
            else {
                try? await holder.close()
                continue
            }
            try await next.close()
            return (port...(port + 1), holder)
        }
        throw TestFailure("found no two adjacent free ports")
    }

    @Test("a busy port is skipped; the 503 names host and port; a full range says why, with the reservation")
    func busyPortSkipped() async throws {
        let (range, holder) = try await rangeWithBusyFirstPort()
        defer { holder.close(promise: nil) }
        let app = try await LocalApp.start()
        defer { Task { await app.stop() } }
        let relay = try await TestRelay.start(tunnelPorts: range)
        defer { Task { await relay.stop() } }
        let target = TargetAddress(host: "127.0.0.1", port: app.port)

        let agent = TestAgent.start(relay: relay, target: target, name: "first")
        let tunnel = try await agent.tunnel()
        #expect(tunnel.port == range.upperBound, "the busy port \(range.lowerBound) was skipped")
        let hello = try await curl(["-sS", "http://127.0.0.1:\(tunnel.port)/hello"])
        #expect(hello.output == "Hello, world!")

        await agent.stop()
        // The relay learns of the disconnect from the closed connection; wait for it.
        while relay.relay.connectedTunnels > 0 {
            try Task.checkCancellation()
            await Task.yield()
        }
        let unavailable = try await curl(["-sS", "-w", "\n%{http_code}", "http://127.0.0.1:\(tunnel.port)/hello"])
        #expect(
            unavailable.output
                == "pinhole: the agent for 127.0.0.1:\(tunnel.port) is not connected; start it (or wait for it to "
                + "reconnect)\n\n503")

        let second = TestAgent.start(relay: relay, target: target, name: "second")
        let refusal = (await second.outcome()).map { "\($0)" }
        #expect(
            refusal
                == "the relay refused the tunnel: every port in \(range.lowerBound)-\(range.upperBound) is in use: "
                + "1 held for this token's tunnel whose agent disconnected (its other names may have such a port "
                + "10 min after it left), 1 by other programs; widen --tunnel-ports, or wait for a held port to be "
                + "freed")
    }

    @Test("a port another program holds refuses that one hello, saying why; once it is free, the next agent gets it")
    func bindFailureRefusesOneHello() async throws {
        let port = try await ServerBootstrapProbe.bind()
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: port).get()
        let app = try await LocalApp.start()
        defer { Task { await app.stop() } }
        let relay = try await TestRelay.start(tunnelPorts: port...port)
        defer { Task { await relay.stop() } }
        let target = TargetAddress(host: "127.0.0.1", port: app.port)

        let refused = TestAgent.start(relay: relay, target: target, name: "first")
        guard case .refused(.noFreePort, let message) = await refused.outcome() as? AgentError else {
            Issue.record("the hello was not refused for its port")
            return
        }
        #expect(message.hasPrefix("the relay cannot listen on port \(port) ("), "\(message)")
        #expect(message.contains("--tunnel-ports"))

        try await holder.close()
        let agent = TestAgent.start(relay: relay, target: target, name: "second")
        defer { Task { await agent.stop() } }
        #expect(try await agent.tunnel().port == port, "the relay kept serving, and tried the port again")
        let (_, hello) = try await curl(["-sS", "http://127.0.0.1:\(port)/hello"])
        #expect(hello == "Hello, world!")
    }
}
