import Logging
import NIOCore
import NIOPosix
import PinholeCore
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel

/// The agent: forwards public requests to the target, through an embedded relay or a
/// relay on a VM. `run()` returns only when cancelled, or throws `AgentError` for a
/// problem that retrying cannot fix (bad token, untrusted relay, port in use).
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let events: @Sendable (AgentEvent) -> Void
    /// The app, through a wrapper that can answer every request in flight when the agent stops.
    private let target: StoppableTarget

    /// `wrapTarget` lets the caller see every exchange on its way to the target (the
    /// inspector wraps it); both the embedded relay and the tunnel use what it returns.
    public init(
        configuration: AgentConfiguration, group: any EventLoopGroup, logger: Logger,
        wrapTarget: (any ExchangeTarget) -> any ExchangeTarget = { $0 },
        events: @escaping @Sendable (AgentEvent) -> Void
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.events = events
        let app: any ExchangeTarget
        switch configuration.target.appProtocol {
        case .http1: app = HTTP1AppTarget(client: TargetClient(address: configuration.target))
        case .h2c: app = H2CAppTarget(address: configuration.target)
        }
        let marked =
            configuration.marksResponses
            ? ResponseMarkingTarget(app, fields: [(AgentConfiguration.tunnelHeaderName, configuration.tunnelName)])
            : app
        // The inspector's capture sees what the caller gets (the tunnel's mark included);
        // a stop answers what is still in flight, captured or not.
        self.target = StoppableTarget(wrapTarget(marked))
    }

    /// Answers every request still in flight with a 503 "pinhole: the agent stopped" and
    /// refuses new ones; returns how many there were. Call it before cancelling `run()`.
    public func abandonRequests() async -> Int {
        await target.stop()
    }

    public func run() async throws {
        switch configuration.mode {
        case .embedded(let bindHost, let publicPort, let publicHost):
            try await runEmbedded(bindHost: bindHost, publicPort: publicPort, publicHost: publicHost)
        case .relay(let endpoint):
            try await runConnected(to: endpoint)
        }
    }

    // MARK: Embedded relay

    private func runEmbedded(bindHost: String, publicPort: Int, publicHost: String?) async throws {
        let events = self.events
        let reports = configuration.reportsRequests
        let onComplete: (@Sendable (ExchangeRecord) -> Void)? = reports ? { @Sendable in events(.request($0)) } : nil
        // One watch for both protocols of the public port: HTTP/2 calls held at a
        // breakpoint are announced as HTTP/1.1 requests are.
        let watch = reports ? makeWatch(on: group.next()) : nil
        let router = SingleTargetRouter(target: target)
        let scheme = configuration.publicTLS == nil ? "http" : "https"
        let beforeHTTP: (@Sendable (any Channel) throws -> Void)?
        if let identity = configuration.publicTLS {
            let tls: TLSContext
            do {
                tls = try TLSContext(
                    server: TLSServerConfiguration(identity: identity, applicationProtocols: ["h2", "http/1.1"]))
            } catch {
                throw AgentError.bindFailed(host: bindHost, port: publicPort, reason: error.description)
            }
            beforeHTTP = { channel in try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tls)) }
        } else {
            beforeHTTP = nil
        }
        // Shared by both protocols, so a client's requests count together however they came.
        let limits = PublicLimits(
            inFlight: InFlightLimits(caps: configuration.inFlightCaps), stallTimeout: configuration.stallTimeout)
        let connections = ConnectionLimits(
            caps: configuration.publicConnectionCaps, totalFlag: "--max-connections",
            perAddressFlag: "--max-connections-per-address")
        let channel: any Channel
        do {
            channel = try await PublicServer.bind(
                host: bindHost, port: publicPort, group: group, router: router,
                requestTimeout: configuration.requestTimeout, idleTimeout: configuration.idleTimeout,
                limits: limits, connections: connections, allow: configuration.allow, logger: logger, scheme: scheme,
                pipeline: PublicHTTP2.setup(
                    requestTimeout: configuration.requestTimeout,
                    idleTimeout: configuration.idleTimeout, limits: limits, scheme: scheme, logger: logger,
                    first: beforeHTTP, watch: watch, onComplete: onComplete),
                watch: watch, onComplete: onComplete)
        } catch {
            throw AgentError.bindFailed(host: bindHost, port: publicPort, reason: ConnectionErrorText.describe(error))
        }
        let port = channel.localAddress?.port ?? publicPort
        var hosts: [String]
        if let publicHost {
            hosts = [publicHost]
        } else if !LocalAddresses.isWildcard(bindHost) {
            hosts = [bindHost]
        } else {
            hosts = LocalAddresses.reachable()
            if hosts.isEmpty { hosts = ["127.0.0.1"] }
        }
        let tunnels = hosts.map { RelayAnswer.Tunnel(name: "embedded", host: $0, port: port, scheme: scheme) }
        let first = tunnels[0]
        events(
            .tunnelReady(
                TunnelInfo(
                    name: nil, url: first.url, authority: first.authority, host: first.host, port: port,
                    alternatives: tunnels.dropFirst().map(\.url), relay: "embedded")))
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Reports requests that wait for the app (see `AgentEvent.waiting`).
    private func makeWatch(on loop: any EventLoop) -> RequestWatch {
        let events = self.events
        return RequestWatch(threshold: configuration.waitingThreshold, on: loop) { events(.waiting($0)) }
    }

    // MARK: Relay on a VM

    private func runConnected(to endpoint: AgentConfiguration.RelayEndpoint) async throws {
        let tls: TLSContext
        do {
            tls = try TLSContext(
                client: TLSClientConfiguration(
                    trust: endpoint.trust, applicationProtocols: [TunnelProtocol.applicationProtocol]))
        } catch {
            throw AgentError.untrustedRelay(UntrustedText.escaped(error.description))
        }
        events(.connecting(relay: endpoint.description))
        var attempt = 0
        // Whether the relay said it is full on the last try: the next full is not said again.
        var waitingForRoom = false
        while !Task.isCancelled {
            let reason: String
            var full = false
            do {
                let channel = try await connect(to: endpoint, tls: tls)
                attempt = 0
                waitingForRoom = false
                let ending = await waitUntilClosed(channel)
                // Stopped (Ctrl-C): closing the connection was our doing, not a loss.
                if Task.isCancelled { return }
                switch ending {
                case .replaced:
                    throw AgentError.replaced(name: endpoint.name)
                case .lost(let why):
                    reason = why
                }
                events(.disconnected(reason: reason))
            } catch let error as AgentError {
                throw error
            } catch let error as RelayFull {
                reason = error.description
                full = true
            } catch let error as TLSError where Self.isFinal(error) {
                throw AgentError.untrustedRelay(UntrustedText.escaped(error.description))
            } catch {
                if Task.isCancelled { return }
                reason = RelayTrouble.describe(error, relay: endpoint)
            }
            attempt += 1
            let delay = Backoff.delay(attempt: attempt, cap: configuration.reconnectCap)
            if !(full && waitingForRoom) {
                events(.reconnecting(attempt: attempt, delay: delay, reason: reason))
            }
            waitingForRoom = full
            do {
                try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
            } catch {
                return  // cancelled
            }
        }
    }

    /// Dials, runs TLS and the handshake, and reports the tunnel. Returns the channel,
    /// which then serves the relay's requests until it closes.
    private func connect(to endpoint: AgentConfiguration.RelayEndpoint, tls: TLSContext) async throws -> any Channel {
        let loop = group.next()
        let answered = loop.makePromise(of: RelayAnswer.Tunnel.self)
        let hello = {
            var hello = AgentHello(token: endpoint.token, name: endpoint.name, aliases: endpoint.aliases)
            hello.service = endpoint.service
            return hello
        }()
        let (target, configuration, events, logger) = (self.target, self.configuration, self.events, self.logger)
        let watch = configuration.reportsRequests ? makeWatch(on: loop) : nil
        let connecting = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 512 * 1024))
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handshake = AgentHandshakeHandler(hello: hello, answered: answered, logger: logger) {
                        context in
                        Self.makeHTTP2Handler(
                            context: context, target: target, configuration: configuration, watch: watch,
                            events: events)
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: tls, serverName: endpoint.host), handshake,
                    ])
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
        connecting.whenFailure { answered.fail($0) }
        // A future's get() does not watch for cancellation, and a relay whose host drops
        // the SYN keeps a connect pending until the timeout: a Ctrl-C must not wait that
        // long. On cancellation this wait fails at once, and a late connection is closed.
        let connected = loop.makePromise(of: (any Channel).self)
        connecting.cascade(to: connected)
        let channel: any Channel
        do {
            channel = try await withTaskCancellationHandler {
                try await connected.futureResult.get()
            } onCancel: {
                connected.fail(CancellationError())
                connecting.whenSuccess { $0.close(promise: nil) }
            }
        } catch {
            // No one waits for the answer now; a promise dropped unanswered is a leak
            // (and a crash in debug builds), however the channel ends.
            answered.fail(error)
            throw error
        }
        let limit = configuration.handshakeTimeout
        let timer = channel.eventLoop.scheduleTask(in: limit) {
            let seconds = Double(limit.nanoseconds) / 1e9
            answered.fail(RelayTrouble.Silent(seconds: seconds.formatted()))
        }
        let tunnel: RelayAnswer.Tunnel
        do {
            // Failing the promise (which NIO ignores once it is complete) is what makes
            // this wait end on cancellation: a future's get() does not watch for it.
            tunnel = try await withTaskCancellationHandler {
                try await answered.futureResult.get()
            } onCancel: {
                answered.fail(CancellationError())
            }
            timer.cancel()
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            throw error
        }
        events(
            .tunnelReady(
                TunnelInfo(
                    name: tunnel.name, url: tunnel.url, authority: tunnel.authority, host: tunnel.host,
                    port: tunnel.port,
                    relay: endpoint.description)))
        return channel
    }

    private static func makeHTTP2Handler(
        context: ChannelHandlerContext, target: any ExchangeTarget, configuration: AgentConfiguration,
        watch: RequestWatch?, events: @escaping @Sendable (AgentEvent) -> Void
    ) -> HTTP2ConnectionHandler {
        let onComplete: (@Sendable (ExchangeRecord) -> Void)? =
            configuration.reportsRequests ? { @Sendable record in events(.request(record)) } : nil
        let target = ControlRoutingTarget(app: target) { events(.serviceMembers($0)) }
        let handler = HTTP2ConnectionHandler(
            role: .server, eventLoop: context.eventLoop, configuration: configuration.http2
        ) { stream in
            AgentStreamResponder(
                stream: stream, target: target, requestTimeout: configuration.requestTimeout, watch: watch,
                onComplete: onComplete)
        }
        // Through the channel: `context` is the handshake handler's, which leaves the
        // pipeline once the HTTP/2 handler is in, and a removed context reaches nothing.
        let channel = context.channel
        let keepalive = TunnelKeepalive(connection: handler.connection, interval: configuration.keepaliveInterval) {
            reason in
            channel.pipeline.fireErrorCaught(ConnectionLost(reason: "the relay stopped answering (\(reason))"))
            channel.close(promise: nil)
        }
        keepalive.start(until: context.channel)
        return handler
    }

    /// Waits for the connection to end and says why, for the reconnect log line.
    private func waitUntilClosed(_ channel: any Channel) async -> Disconnection {
        let reason = channel.eventLoop.makePromise(of: Disconnection.self)
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(DisconnectReasonRecorder(reason: reason))
            }.get()
        } catch {
            // The pipeline is gone: the connection closed before the recorder was in, and
            // nothing would ever complete `reason`.
            return .lost("the relay closed the connection")
        }
        return await withTaskCancellationHandler {
            (try? await reason.futureResult.get()) ?? .lost("connection closed")
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Certificate and protocol-version problems do not fix themselves.
    static func isFinal(_ error: TLSError) -> Bool {
        switch error {
        case .pinMismatch, .nameMismatch, .untrustedIssuer, .certificateExpired, .certificateNotYetValid,
            .certificateRejected, .applicationProtocolMismatch, .invalidConfiguration, .fileProblem:
            return true
        case .handshakeFailed, .protocolViolation, .truncated, .openSSL:
            return false
        }
    }
}

/// How a tunnel connection ended.
private enum Disconnection: Sendable {
    /// It broke or closed; the agent reconnects.
    case lost(String)
    /// The relay gave the tunnel to another connection with the same name and token.
    case replaced
}

/// Records the first error (or plain closure) on the tunnel connection, and whether
/// the relay said it was replaced.
private final class DisconnectReasonRecorder: ChannelInboundHandler {
    typealias InboundIn = Never
    private let reason: EventLoopPromise<Disconnection>
    private var firstError: String?
    private var replaced = false

    init(reason: EventLoopPromise<Disconnection>) {
        self.reason = reason
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !context.channel.isActive { reason.succeed(.lost("connection closed")) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .goAwayReceived(_, _, let debugData) = event as? HTTP2ConnectionEvent,
            debugData == TunnelProtocol.replacedGoAwayData
        {
            replaced = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if firstError == nil { firstError = ConnectionErrorText.describe(error) }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reason.succeed(replaced ? .replaced : .lost(firstError ?? "the relay closed the connection"))
        context.fireChannelInactive()
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to the cap, each drawn
/// from the upper half of its range so many agents do not retry in step.
enum Backoff {
    static func delay(attempt: Int, cap: TimeAmount) -> TimeAmount {
        let base = min(TimeAmount.milliseconds(500) * (1 << min(attempt - 1, 16)), cap)
        let half = base.nanoseconds / 2
        return .nanoseconds(half + Int64.random(in: 0...max(half, 1)))
    }
}
