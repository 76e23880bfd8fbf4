import Foundation
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeTLS
import PinholeTestSupport
import Testing

@Suite("Agent connections: tokens, pins, names, reconnects", .timeLimit(.minutes(3)))
struct ConnectionTests {
    @Test("a bad token stops the agent with one plain sentence")
    func badToken() async throws {
        let relay = try await TestRelay.start()
        defer { Task { await relay.stop() } }
        let agent = TestAgent.start(relay: relay, target: .default, token: "wrong-token")
        let error = await agent.outcome()
        guard case .refused(.badToken, let message) = error as? AgentError else {
            Issue.record("expected a bad-token refusal, got \(String(describing: error))")
            return
        }
        #expect(message == "the relay does not accept this token")
        #expect(
            String(describing: error as Any).contains(
                "the relay refused the tunnel: the relay does not accept this token"))
    }

    @Test("a wrong pin stops the agent, showing both fingerprints")
    func wrongPin() async throws {
        let relay = try await TestRelay.start()
        defer { Task { await relay.stop() } }
        let other = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "someone else"))
        let agent = TestAgent.start(relay: relay, target: .default, trust: .pinned(other.fingerprint))
        let error = await agent.outcome()
        let message = "\(error.map { "\($0)" } ?? "no error")"
        guard case .untrustedRelay = error as? AgentError else {
            Issue.record("expected an untrusted relay, got \(message)")
            return
        }
        #expect(message.contains(other.fingerprint.description))
        #expect(message.contains(relay.identity.fingerprint.description))
        #expect(!agent.recorded.contains { if case .reconnecting = $0 { true } else { false } }, "no retry loop")
    }

    @Test("another token asking for a held name is refused; the same token takes it back")
    func heldName() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        defer {
            Task {
                await relay.stop(); await app.stop()
            }
        }
        let target = TargetAddress(host: "127.0.0.1", port: app.port)
        let first = TestAgent.start(relay: relay, target: target, name: "shared")
        _ = try await first.tunnel()

        let intruder = TestAgent.start(relay: relay, target: target, name: "shared", token: "other-token-0123456789")
        guard case .refused(.nameTaken, let message) = await intruder.outcome() as? AgentError else {
            Issue.record("the second token was not refused")
            return
        }
        #expect(message.contains("'shared'") && message.contains("another token"))

        // Same token, same name: a restarted agent gets its name back at once.
        await first.stop()
        let restarted = TestAgent.start(relay: relay, target: target, name: "shared")
        let info = try await restarted.tunnel()
        #expect(info.name == "shared")
        let (_, output) = try await curl(relay.curl("shared", "/hello"))
        #expect(output == "Hello, world!")
        await restarted.stop()
    }

    @Test("a second live agent with the same name and token takes the tunnel; the first stops, saying why")
    func replacedAgentStops() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        defer {
            Task {
                await relay.stop(); await app.stop()
            }
        }
        let target = TargetAddress(host: "127.0.0.1", port: app.port)
        let first = TestAgent.start(relay: relay, target: target, name: "shared")
        _ = try await first.tunnel()
        let second = TestAgent.start(relay: relay, target: target, name: "shared")
        _ = try await second.tunnel()
        // Before, the first reconnected and took the name back, and the two alternated for ever.
        guard case .replaced(let name) = await first.outcome() as? AgentError else {
            Issue.record("the replaced agent did not stop with .replaced")
            return
        }
        #expect(name == "shared")
        #expect("\(AgentError.replaced(name: name))".contains("another agent connected to the relay as 'shared'"))
        let (_, output) = try await curl(relay.curl("shared", "/hello"))
        #expect(output == "Hello, world!")
        #expect(!second.recorded.contains { if case .disconnected = $0 { true } else { false } })
        await second.stop()
    }

    @Test("after a relay restart the agent reconnects and serves again under the same name")
    func relayRestart() async throws {
        let app = try await LocalApp.start()
        let first = try await TestRelay.start()
        let agent = TestAgent.start(
            relay: first, target: TargetAddress(host: "127.0.0.1", port: app.port), name: "steady")
        defer {
            Task {
                await agent.stop(); await app.stop()
            }
        }
        let before = try await agent.tunnel()

        await first.stop()
        // A new relay on the same ports and certificate takes over; it knows nothing of the old tunnels.
        let relay = try await TestRelay.start(
            identity: first.identity, publicPort: first.addresses.publicPort, agentPort: first.addresses.agentPort)
        defer { Task { await relay.stop() } }
        let after = try await agent.tunnel(number: 2)
        #expect(after.authority == before.authority)
        let (_, output) = try await curl(relay.curl("steady", "/hello"))
        #expect(output == "Hello, world!")
        #expect(agent.recorded.contains { if case .reconnecting = $0 { true } else { false } })
    }

    @Test("requests in flight when the tunnel drops get a 502 instead of hanging")
    func inFlightAtDrop() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        defer {
            Task {
                await relay.stop(); await app.stop()
            }
        }
        _ = try await agent.tunnel()
        let request = try ChildProcess("curl", relay.curl("demo", "/slow?ms=60000", ["-w", "\\n%{http_code}"]))
        // Wait until the request is at the app, then take the agent away.
        while relay.relay.connectedTunnels == 1, app.requestsSeen == 0 {
            try Task.checkCancellation()  // the suite's time limit ends a request that never arrives
            await Task.yield()
        }
        await agent.stop()
        let (_, output) = await request.waitForExit()
        #expect(output.hasSuffix("502"), "\(output)")
        #expect(output.contains("went down during the request"))
    }
}
