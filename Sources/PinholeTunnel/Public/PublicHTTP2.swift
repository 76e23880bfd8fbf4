import Logging
import NIOCore
import PinholeCore
import PinholeHTTP2

/// The public side's HTTP/2: HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same
/// port, told apart by the connection preface, and behind TLS the same (a client that
/// chose `h2` by ALPN sends the preface). Each HTTP/2 stream becomes an exchange routed
/// by `:authority`, as a request is by Host.
public enum PublicHTTP2 {
    /// What each public HTTP/2 connection advertises. Fewer streams than the tunnel's:
    /// each may hold a window of request body at the relay. Responses go out once per
    /// event-loop tick (`messagesPerWrite` unbounded): a client's answers of one tick in
    /// one write, not a write for every few.
    public static var configuration: HTTP2Configuration {
        var configuration = HTTP2Configuration()
        configuration.maxConcurrentStreams = 256
        configuration.messagesPerWrite = .max
        return configuration
    }

    /// A pipeline setup for `PublicServer.bind` serving both protocols, routing with the
    /// router the listener gives each connection. `first` adds handlers that go before
    /// the protocol choice (TLS). An HTTP/2 connection that carries no stream for
    /// `idleTimeout` (see `PublicHTTP2IdleCheck`) is closed. Each stream takes its place
    /// from `limits` (shared with the HTTP/1.1 side, so a client's requests count together
    /// whatever protocol they came by) and is held to its `stallTimeout` (see
    /// `FairShareStateMachine`).
    public static func setup(
        requestTimeout: TimeAmount?,
        idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout, limits: PublicLimits = PublicLimits(),
        scheme: String = "http", logger: Logger?,
        configuration: HTTP2Configuration = PublicHTTP2.configuration,
        first: (@Sendable (any Channel) throws -> Void)? = nil, watch: RequestWatch? = nil,
        onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) -> PublicPipelineSetup {
        { channel, http1, router in
            try first?(channel)
            let sniffer = PublicProtocolHandler(http1: http1) { context in
                let clientAddress = context.channel.remoteAddress?.ipAddress
                let localPort = context.channel.localAddress?.port ?? 0
                let limited: any PublicRouter =
                    limits.inFlight == nil && limits.stallTimeout == nil
                    ? router
                    : FairShareRouter(
                        inner: router, limits: limits, client: AddressGroup(context.channel.remoteAddress))
                let route = StreamRoute.publicSide(
                    router: limited, clientAddress: clientAddress, scheme: scheme, localPort: localPort)
                let idleness = PublicHTTP2IdleWatch()
                let handler = HTTP2ConnectionHandler(
                    role: .server, eventLoop: context.eventLoop, configuration: configuration
                ) { stream in
                    idleness.streamOpened()
                    return AgentStreamResponder(
                        stream: stream, route: route, requestTimeout: requestTimeout, watch: watch,
                        onComplete: onComplete)
                }
                if let idleTimeout {
                    idleness.start(connection: handler.connection, channel: context.channel, interval: idleTimeout)
                }
                return [handler, PublicHTTP2ErrorHandler(logger: logger)]
            }
            try channel.pipeline.syncOperations.addHandler(sniffer)
        }
    }
}
