import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import PinholeCore
import PinholeTLS
import PinholeTunnel
import Testing

@testable import PinholeRelay

/// The same token reconnecting for the same name, over EmbeddedChannels, with the
/// dedicated port's listener held back until the test lets it finish.
@Suite("Relay: a takeover replaces the old agent only once the new connection is attached")
struct TakeoverTests {
    static let token = "a-token-long-enough-for-tests"
    let registry = TunnelRegistry(domain: nil, tunnelPorts: 5000...5001, maxTunnels: 10, reservation: .minutes(10))
    /// Listeners the test has not let finish yet; an empty list binds at once.
    let heldListeners = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
    let holdListeners = NIOLockedValueBox(false)
    let services: RelayServices

    init() throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay.test"))
        let configuration = try RelayConfiguration(
            publicHost: "203.0.113.7", tunnelPorts: 5000...5001, tokens: [Self.token], identity: identity)
        let (held, hold) = (heldListeners, holdListeners)
        services = RelayServices(
            configuration: configuration, registry: registry,
            authenticator: TokenAuthenticator(tokens: configuration.tokens),
            tokenChecks: TokenCheckBudget(policy: .init(checksPer5Seconds: 10)),
            logger: Logger(label: "test"),
            ensurePortListener: { _, loop in
                guard hold.withLockedValue({ $0 }) else { return loop.makeSucceededVoidFuture() }
                let promise = loop.makePromise(of: Void.self)
                held.withLockedValue { $0.append(promise) }
                return promise.futureResult
            }, advertisedHost: "203.0.113.7", publicPort: 8080)
    }

    /// A connection that has sent its hello for `name`.
    private func connect(_ name: String) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RelayHandshakeHandler(services: services))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(
            try HandshakeFraming.encode(AgentHello(token: Self.token, name: name), allocator: channel.allocator))
        channel.embeddedEventLoop.run()
        return channel
    }

    /// Everything the relay wrote on `channel` so far, as text (the handshake answer's
    /// JSON, and HTTP/2 frames whose GOAWAY debug data is text too).
    private func written(_ channel: EmbeddedChannel) throws -> String {
        channel.embeddedEventLoop.run()
        var sent = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&part) }
        return String(decoding: sent.readableBytesView, as: UTF8.self)
    }

    @Test("the serving agent keeps the tunnel while a newer connection waits, and when that one dies on the way")
    func oldAgentServesUntilTheNewOneIsAttached() throws {
        let first = try connect("dev")
        #expect(try written(first).contains("\"port\":5000"))
        #expect(try registry.target(forPort: 5000, host: "x") != nil)

        holdListeners.withLockedValue { $0 = true }
        let doomed = try connect("dev")
        #expect(try written(doomed).isEmpty, "not answered while its port is not listening")
        #expect(try registry.target(forPort: 5000, host: "x") != nil, "the first agent still serves")
        #expect(try !written(first).contains(TunnelProtocol.replacedGoAwayData), "and was told nothing")

        try doomed.close().wait()
        doomed.embeddedEventLoop.run()
        for promise in heldListeners.withLockedValue({ $0 }) { promise.succeed() }
        first.embeddedEventLoop.run()
        let firstSaw = try written(first)
        #expect(first.isActive && !firstSaw.contains(TunnelProtocol.replacedGoAwayData))
        #expect(try registry.target(forPort: 5000, host: "x") != nil, "still the first agent's tunnel")

        holdListeners.withLockedValue { $0 = false }
        let newer = try connect("dev")
        #expect(try written(newer).contains("\"port\":5000"), "the newer one gets the tunnel, same port")
        #expect(try written(first).contains(TunnelProtocol.replacedGoAwayData), "and only now is the first replaced")
        _ = try? newer.close().wait()
    }
}
