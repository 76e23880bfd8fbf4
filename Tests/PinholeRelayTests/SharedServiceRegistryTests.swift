import Logging
import NIOCore
import NIOEmbedded
import PinholeCore
import PinholeTLS
import PinholeTunnel
import Testing

@testable import PinholeRelay

/// Several agents declaring one service, each over its own EmbeddedChannel, into one registry.
@Suite("Relay: developers sharing a service")
struct SharedServiceRegistryTests {
    static let token = "a-token-long-enough-for-tests"
    static let otherToken = "another-token-long-enough-for-tests"
    let registry = TunnelRegistry(domain: "tunnels.test", tunnelPorts: nil, maxTunnels: 10, reservation: .minutes(10))
    let services: RelayServices

    init() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay.test"))
        let configuration = try RelayConfiguration(
            domain: "tunnels.test", tokens: [Self.token, Self.otherToken], identity: identity)
        services = RelayServices(
            configuration: configuration, registry: registry,
            authenticator: TokenAuthenticator(tokens: configuration.tokens),
            tokenChecks: TokenCheckBudget(policy: .init(checksPer5Seconds: 10)),
            logger: Logger(label: "test"),
            ensurePortListener: { _, loop in loop.makeSucceededVoidFuture() }, advertisedHost: "203.0.113.7",
            publicPort: 8080)
    }

    private func share(_ user: String, service: String = "checkout", mode: String = "mirror") -> ServiceShare {
        ServiceShare(
            service: service, namespace: "shop", mode: mode,
            match: HeaderCondition(name: "x-user", kind: .exact, value: user))
    }

    /// Connects an agent named `name` with `share`; returns its channel and the relay's answer.
    private func connect(
        _ name: String, _ share: ServiceShare?, aliases: [String] = [], token: String = Self.token
    ) throws -> (
        EmbeddedChannel, RelayAnswer
    ) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RelayHandshakeHandler(services: services))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var hello = AgentHello(token: token, name: name, aliases: aliases)
        hello.service = share
        try channel.writeInbound(try HandshakeFraming.encode(hello, allocator: channel.allocator))
        channel.embeddedEventLoop.run()
        var sent = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&part) }
        return (channel, try #require(try HandshakeFraming.decode(RelayAnswer.self, from: &sent)))
    }

    @Test("developers with different matches share the alias; a request goes to the one it matches")
    func differentMatchesShare() throws {
        let (alice, first) = try connect("alice", share("alice"))
        let (bob, second) = try connect("bob", share("bob"))
        #expect(first.refusal == nil && second.refusal == nil)
        let target = try #require(try registry.target(forHost: "checkout-shadow:3000"))
        let shared = try #require(target as? SharedServiceTarget)
        #expect(shared.members.map(\.match.value) == ["alice", "bob"], "ordered by tunnel name")
        _ = try? alice.close().wait()
        _ = try? bob.close().wait()
    }

    @Test("the same match is refused while its developer is connected, naming the tunnel; free once it left")
    func sameMatchIsRefused() throws {
        let (alice, _) = try connect("alice", share("alice"))
        let (_, refused) = try connect("carol", share("alice", mode: "route"))
        #expect(refused.refusal?.reason == .matchTaken)
        let message = try #require(refused.refusal?.message)
        #expect(message.contains("x-user=alice") && message.contains("'alice'"), "\(message)")

        try alice.close().wait()
        alice.embeddedEventLoop.run()
        let (carol, again) = try connect("carol", share("alice", mode: "route"))
        #expect(again.refusal == nil, "alice left, so her match is free")
        // Alone now: the alias goes straight to carol's tunnel.
        #expect(try registry.target(forHost: "checkout.shop") is TunnelTarget)
        _ = try? carol.close().wait()
    }

    @Test("an alias held by a tunnel that does not share it is still refused")
    func unsharedAliasIsRefused() throws {
        let (legacy, _) = try connect("legacy", nil, aliases: ["checkout.shop"])
        let (_, refused) = try connect("alice", share("alice"))
        #expect(refused.refusal?.reason == .aliasTaken)
        _ = try? legacy.close().wait()
    }

    @Test("another token cannot join a shared service, whatever its match, so it cannot take a developer's requests")
    func otherTokenCannotShare() throws {
        let (alice, _) = try connect("alice", share("alice"))
        let (_, refused) = try connect("mallory", share("alice-or-anyone"), token: Self.otherToken)
        #expect(refused.refusal?.reason == .nameTaken)
        let message = try #require(refused.refusal?.message)
        #expect(message.contains("the same token") && !message.contains("alice"), "\(message)")
        #expect(try registry.target(forHost: "checkout.shop") is TunnelTarget, "still alice's alone")
        _ = try? alice.close().wait()
    }

    @Test("another service, or the same service in another namespace, is not shared")
    func otherServicesAreSeparate() throws {
        let (alice, first) = try connect("alice", share("alice"))
        let (bob, second) = try connect("bob", share("alice", service: "payments"))
        #expect(first.refusal == nil && second.refusal == nil, "the same match on another service is fine")
        #expect(try registry.target(forHost: "checkout") is TunnelTarget)
        #expect(try registry.target(forHost: "payments") is TunnelTarget)
        _ = try? alice.close().wait()
        _ = try? bob.close().wait()
    }
}
