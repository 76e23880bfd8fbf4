import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import PinholeHTTP2
import PinholeTestSupport
import PinholeTunnel

/// A tunnel in memory: the relay's HTTP/2 client and the agent's HTTP/2 server, each in
/// an EmbeddedChannel, with `AgentStreamResponder` turning the agent's streams into
/// exchanges with `app`. `target` is what the relay's public side would use.
final class InMemoryTunnel {
    let relay = EmbeddedChannel()
    let agent = EmbeddedChannel()
    let app = ScriptedTarget()
    let target: TunnelTarget
    let relayConnection: HTTP2Connection
    let agentConnection: HTTP2Connection
    /// What the agent's request log got, in order.
    var records: [ExchangeRecord] { recorded.withLockedValue { $0 } }
    private let recorded = NIOLockedValueBox<[ExchangeRecord]>([])

    init(requestTimeout: TimeAmount? = nil) throws {
        let relayHandler = HTTP2ConnectionHandler(role: .client, eventLoop: relay.eventLoop)
        let recorded = self.recorded
        let agentHandler = HTTP2ConnectionHandler(role: .server, eventLoop: agent.eventLoop) { [app] stream in
            AgentStreamResponder(stream: stream, target: app, requestTimeout: requestTimeout) { record in
                recorded.withLockedValue { $0.append(record) }
            }
        }
        try relay.pipeline.syncOperations.addHandler(relayHandler)
        try agent.pipeline.syncOperations.addHandler(agentHandler)
        relayConnection = relayHandler.connection
        agentConnection = agentHandler.connection
        target = TunnelTarget(connection: relayHandler.connection)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try agent.connect(to: address).wait()
        try relay.connect(to: address).wait()
        try interact()
    }

    /// Runs both loops and moves bytes until nothing moves.
    func interact() throws {
        try EmbeddedWire.interact(relay, agent)
    }

    /// Starts an exchange from the relay's side, as the public side would.
    func start(_ head: ProxyRequestHead, downstream: RecordingDownstream) throws -> any ExchangeUpstream {
        let upstream = try target.startExchange(head, downstream: downstream, on: relay.eventLoop)
        try interact()
        return upstream
    }
}

func request(
    _ method: HTTPMethod = .GET, _ path: String = "/", headers: HTTPHeaders = [:], mayHaveBody: Bool = false,
    upgrade: String? = nil
) -> ProxyRequestHead {
    ProxyRequestHead(
        method: method, path: path, authority: "demo.tunnel.test", scheme: "http", headers: headers,
        mayHaveBody: mayHaveBody, upgrade: upgrade)
}
