import NIOCore
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

@Suite("Service aliases for mirrored and routed mesh traffic", .timeLimit(.minutes(2)))
struct AliasRoutingTests {
    @Test("Host: S, S:3000, S-shadow:3000 and namespace forms reach the tunnel that registered S")
    func aliasForms() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), name: "dev-checkout",
            aliases: ["checkout.shop"])
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        _ = try await agent.tunnel()

        let hosts = [
            "checkout", "checkout:3000", "checkout-shadow:3000", "checkout.shop",
            "checkout.shop.svc.cluster.local:3000",
            "checkout.shop.svc.cluster.local-shadow:3000",
        ]
        for host in hosts {
            let (_, output) = try await curl([
                "-sS", "-H", "Host: \(host)", "http://127.0.0.1:\(relay.addresses.publicPort)/hello",
            ])
            #expect(output == "Hello, world!", "Host: \(host) → \(output)")
        }
        let (_, other) = try await curl([
            "-sS", "-w", "%{http_code}", "-o", "/dev/null", "-H", "Host: checkout.billing",
            "http://127.0.0.1:\(relay.addresses.publicPort)/",
        ])
        #expect(other == "404", "another namespace's checkout is not this tunnel")
    }

    @Test("a second tunnel asking for the same alias is refused")
    func aliasConflict() async throws {
        let relay = try await TestRelay.start()
        let first = TestAgent.start(relay: relay, target: .default, name: "first", aliases: ["checkout.shop"])
        defer {
            Task {
                await first.stop(); await relay.stop()
            }
        }
        _ = try await first.tunnel()
        let second = TestAgent.start(relay: relay, target: .default, name: "second", aliases: ["checkout.shop"])
        guard case .refused(.aliasTaken, let message) = await second.outcome() as? AgentError else {
            Issue.record("the second alias was not refused")
            return
        }
        #expect(message.contains("checkout.shop") && message.contains("'first'"))
    }

    @Test("without a domain, a tunnel gets a dedicated port and requests on it route by port")
    func dedicatedPort() async throws {
        let app = try await LocalApp.start()
        let port = try await ServerBootstrapProbe.bind()
        let relay = try await TestRelay.start(tunnelPorts: port...port)
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), name: "ported")
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let info = try await agent.tunnel()
        #expect(info.port == port && info.authority == "127.0.0.1:\(port)")
        let (_, output) = try await curl(["-sS", "http://127.0.0.1:\(port)/hello"])
        #expect(output == "Hello, world!")
    }
}
