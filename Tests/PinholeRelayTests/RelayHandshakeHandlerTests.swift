import Logging
import NIOCore
import NIOEmbedded
import PinholeCore
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel
import Testing

@testable import PinholeRelay

/// The relay's side of the handshake in an EmbeddedChannel: it reads a hello, checks
/// it, and answers; on acceptance the connection becomes the tunnel's HTTP/2 client.
@Suite("Relay handshake handler")
struct RelayHandshakeHandlerTests {
    static let token = "a-token-long-enough-for-tests"
    let channel = EmbeddedChannel()
    let registry = TunnelRegistry(domain: "tunnels.test", tunnelPorts: nil, maxTunnels: 10, reservation: .minutes(10))

    init() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay.test"))
        let configuration = try RelayConfiguration(domain: "tunnels.test", tokens: [Self.token], identity: identity)
        let services = RelayServices(
            configuration: configuration, registry: registry,
            authenticator: TokenAuthenticator(tokens: configuration.tokens),
            tokenChecks: TokenCheckBudget(policy: .init(checksPer5Seconds: 10)),
            logger: Logger(label: "test"),
            ensurePortListener: { _, loop in loop.makeSucceededVoidFuture() }, advertisedHost: "203.0.113.7",
            publicPort: 8080)
        try channel.pipeline.syncOperations.addHandler(RelayHandshakeHandler(services: services))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Sends `hello` and returns the relay's answer.
    private func exchange(_ hello: AgentHello) throws -> RelayAnswer {
        try channel.writeInbound(try HandshakeFraming.encode(hello, allocator: channel.allocator))
        channel.embeddedEventLoop.run()
        var sent = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&part) }
        return try #require(try HandshakeFraming.decode(RelayAnswer.self, from: &sent))
    }

    @Test("a good hello is accepted with its tunnel, and the connection becomes HTTP/2")
    func accepted() throws {
        let answer = try exchange(AgentHello(token: Self.token, name: "dev"))
        #expect(answer.refusal == nil)
        #expect(answer.tunnel?.url == "http://dev.tunnels.test:8080")
        #expect(throws: Never.self) {
            _ = try channel.pipeline.syncOperations.handler(type: HTTP2ConnectionHandler.self)
        }
        #expect(throws: (any Error).self) {
            _ = try channel.pipeline.syncOperations.handler(type: RelayHandshakeHandler.self)
        }
        #expect(try registry.target(forHost: "dev.tunnels.test:8080") != nil, "the tunnel is routed")
    }

    @Test("a wrong token is refused as bad_token, without saying more")
    func badToken() throws {
        let answer = try exchange(AgentHello(token: "not-the-right-token-at-all", name: "dev"))
        #expect(answer.refusal?.reason == .badToken)
        #expect(answer.tunnel == nil)
        #expect(try registry.target(forHost: "dev.tunnels.test:8080") == nil)
    }

    @Test("another handshake version is refused, naming both")
    func otherVersion() throws {
        var hello = AgentHello(token: Self.token, name: "dev")
        hello.version = TunnelProtocol.version + 1
        let answer = try exchange(hello)
        #expect(answer.refusal?.reason == .unsupportedVersion)
        #expect(answer.refusal?.message.contains("version \(TunnelProtocol.version)") == true)
    }

    @Test("a name that is not a DNS label is refused with the rule it breaks")
    func badName() throws {
        let answer = try exchange(AgentHello(token: Self.token, name: "Dev_Box"))
        #expect(answer.refusal?.reason == .invalidRequest)
        #expect(answer.refusal?.message.contains("'Dev_Box'") == true)
    }

    @Test("bytes that are not a hello are refused as an invalid request")
    func garbage() throws {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(5))
        bytes.writeString("hello")
        try channel.writeInbound(bytes)
        channel.embeddedEventLoop.run()
        var sent = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let answer = try #require(try HandshakeFraming.decode(RelayAnswer.self, from: &sent))
        #expect(answer.refusal?.reason == .invalidRequest)
    }

    @Test("an agent that says nothing is dropped after the handshake timeout")
    func silentAgent() throws {
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(!channel.isActive)
    }
}
