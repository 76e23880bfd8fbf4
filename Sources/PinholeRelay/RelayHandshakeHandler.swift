import Logging
import NIOCore
import PinholeCore
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel

/// What the relay's per-connection handlers share.
struct RelayServices: Sendable {
    let configuration: RelayConfiguration
    let registry: TunnelRegistry
    let authenticator: TokenAuthenticator
    let tokenChecks: TokenCheckBudget
    let logger: Logger
    /// Makes sure a dedicated public port is listening (serving its connections on the
    /// given loop) before the agent is told about it.
    let ensurePortListener: @Sendable (Int, any EventLoop) -> EventLoopFuture<Void>
    /// The host to hand out in dedicated-port authorities.
    let advertisedHost: String
    /// The shared public port as bound (the configuration may say 0).
    let publicPort: Int
    /// How many dedicated ports one hello may try before it is refused: a few, so a
    /// range that other programs hold costs one hello a few binds, not one each.
    var portAttempts: Int { min(configuration.tunnelPorts?.count ?? 1, 8) }
}

/// Runs the relay's side of the handshake on a new agent connection: waits for the
/// agent's hello, checks the token (within its address's budget), registers the
/// tunnel, answers, and then turns the connection into an HTTP/2 client that opens one
/// stream per public request.
final class RelayHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case waitingForHello, checking, done
    }

    private let services: RelayServices
    private var state = State.waitingForHello
    private var buffer = ByteBuffer()
    private var timeout: Scheduled<Void>?

    init(services: RelayServices) {
        self.services = services
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let seconds = services.configuration.handshakeTimeout.nanoseconds / 1_000_000_000
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: services.configuration.handshakeTimeout) {
            guard self.state != .done else { return }
            self.services.logger.info(
                "agent handshake timed out",
                metadata: ["peer": "\(context.remoteAddress?.ipAddress ?? "?")", "after": "\(seconds)s"])
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard state == .waitingForHello else { return }
        buffer.writeBuffer(&bytes)
        do {
            guard let hello = try HandshakeFraming.decode(AgentHello.self, from: &buffer) else { return }
            state = .checking
            check(hello, context: context)
        } catch {
            refuse(.invalidRequest, "\(error)", context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        services.logger.debug("agent connection failed", metadata: ["peer": "\(peer(context))", "error": "\(error)"])
        context.close(promise: nil)
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.remoteAddress?.ipAddress ?? "unknown"
    }

    private func check(_ hello: AgentHello, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        guard hello.version == TunnelProtocol.version else {
            refuse(
                .unsupportedVersion,
                "this relay speaks handshake version \(TunnelProtocol.version), the agent \(hello.version); update both",
                context: context)
            return
        }
        let group = AddressGroup(context.remoteAddress)
        if case .wait(let wait) = services.tokenChecks.reserve(for: group) {
            let seconds = max(1, (wait.nanoseconds + 999_999_999) / 1_000_000_000)
            refuse(
                .slowDown,
                "too many token checks from \(group) (at most \(services.configuration.tokenChecksPer5Seconds) in 5 s);"
                    + " try again in \(seconds) s",
                context: context)
            return
        }
        guard let owner = services.authenticator.owner(of: hello.token) else {
            services.logger.warning("agent presented a bad token", metadata: ["peer": "\(peer(context))"])
            refuse(.badToken, "the relay does not accept this token", context: context)
            return
        }
        services.tokenChecks.refund(for: group)
        if let problem = DNS1123.labelViolation(hello.name) {
            refuse(.invalidRequest, "the tunnel name '\(hello.name)' is not usable: \(problem)", context: context)
            return
        }
        guard hello.aliases.count <= services.configuration.maxAliases else {
            refuse(
                .invalidRequest,
                "the hello asks for \(hello.aliases.count) aliases; this relay takes at most "
                    + "\(services.configuration.maxAliases) per tunnel (--max-aliases)",
                context: context)
            return
        }
        var aliases: [ServiceAlias] = []
        for text in hello.aliases {
            do {
                aliases.append(try ServiceAlias(description: text))
            } catch {
                refuse(.invalidRequest, "alias '\(text)': \(error)", context: context)
                return
            }
        }
        if let share = hello.service {
            // The shared service is routed here too, whether or not the hello listed it.
            guard let alias = try? ServiceAlias(service: share.service, namespace: share.namespace) else {
                refuse(.invalidRequest, "shared service '\(share.serviceKey)' is not a valid name", context: context)
                return
            }
            if !aliases.contains(alias) { aliases.append(alias) }
        }
        register(hello, aliases: aliases, owner: owner, context: context, avoiding: [])
    }

    /// Registers the tunnel and, for a dedicated port, makes sure it listens, and that the
    /// registry file has it, before the agent hears it was accepted. A port another
    /// program holds is avoided (the registry then offers another), up to
    /// `portAttempts` ports; then this hello alone is refused, saying why.
    private func register(
        _ hello: AgentHello, aliases: [ServiceAlias], owner: TokenDigest, context: ChannelHandlerContext,
        avoiding: Set<Int>
    ) {
        guard context.channel.isActive else { return }
        let registry = services.registry
        let registration = registry.register(
            name: hello.name, aliases: aliases, owner: owner, share: hello.service, avoiding: avoiding)
        guard case .accepted(let entry, let generation) = registration else {
            if case .refused(let reason, let message) = registration { refuse(reason, message, context: context) }
            return
        }
        // From now on this connection's close (refused or not, attached or not) ends its
        // registration; a stale generation's close changes nothing.
        context.channel.closeFuture.whenComplete { [name = entry.name] _ in
            registry.detach(name: name, generation: generation)
        }
        let listening =
            entry.port.map { services.ensurePortListener($0, context.eventLoop) }
            ?? context.eventLoop.makeSucceededVoidFuture()
        listening.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                registry.flushed(on: context.eventLoop).assumeIsolated().whenComplete { _ in
                    self.accept(entry, generation: generation, hello: hello, context: context)
                }
            case .failure(let error):
                let port = entry.port ?? 0
                let tried = avoiding.union([port])
                guard tried.count < self.services.portAttempts else {
                    let others = tried.count - 1
                    self.refuse(
                        .noFreePort,
                        "the relay cannot listen on port \(port) (\(ConnectionErrorText.describe(error)))"
                            + (others == 0 ? "" : ", nor on \(others) other \(others == 1 ? "port" : "ports") it tried")
                            + "; try again later, or ask the relay's operator to free ports in --tunnel-ports",
                        context: context)
                    return
                }
                self.services.logger.info(
                    "tunnel port unavailable, trying another",
                    metadata: ["port": "\(port)", "error": "\(ConnectionErrorText.describe(error))"])
                self.register(hello, aliases: aliases, owner: owner, context: context, avoiding: tried)
            }
        }
    }

    private func accept(
        _ entry: TunnelRegistry.Entry, generation: UInt64, hello: AgentHello, context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { return }
        let tunnel = assignedTunnel(entry)
        let http2 = HTTP2ConnectionHandler(
            role: .client, eventLoop: context.eventLoop, configuration: services.configuration.http2)
        let channel = context.channel
        let connection = NIOLoopBound(http2.connection, eventLoop: context.eventLoop)
        var link = TunnelLink(target: TunnelTarget(connection: http2.connection)) {
            channel.eventLoop.execute {
                connection.value.goAwayAndClose(debugData: TunnelProtocol.replacedGoAwayData)
            }
        }
        link.tunnel = tunnel
        let registry = services.registry
        let logger = services.logger
        let name = entry.name
        // Claim the name before the agent hears it was accepted: a newer connection of the
        // same agent may have registered since (this runs after a port bind and a file
        // write), and an agent told "accepted" but never attached would stay connected,
        // answer PINGs, and never get a request. The connection this one replaces is
        // told only now, once this one carries the tunnel.
        switch registry.attach(name: name, generation: generation, link: link) {
        case .superseded:
            refuse(.nameTaken, "a newer connection with this name and token took the tunnel over", context: context)
            return
        case .attached(let replaced):
            replaced?.replace()
        }
        channel.closeFuture.whenComplete { _ in
            logger.info("agent disconnected", metadata: ["tunnel": "\(name)"])
        }
        do {
            try send(.accepted(tunnel), context: context)
            try context.pipeline.syncOperations.addHandler(http2, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        state = .done
        timeout?.cancel()
        // The channel, not this handler's context: the handler leaves the pipeline below,
        // and a removed context's close goes nowhere (the dead tunnel stayed registered).
        let keepalive = TunnelKeepalive(
            connection: http2.connection, interval: services.configuration.keepaliveInterval
        ) {
            [name = entry.name] reason in
            logger.info("agent connection is dead, closing it", metadata: ["tunnel": "\(name)", "reason": "\(reason)"])
            channel.close(promise: nil)
        }
        keepalive.start(until: channel)
        logger.info(
            "tunnel up",
            metadata: [
                "tunnel": "\(name)", "url": "\(tunnel.url)",
                "agent": "\(UntrustedText.escaped(hello.software, limit: 100))",
            ])
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func assignedTunnel(_ entry: TunnelRegistry.Entry) -> RelayAnswer.Tunnel {
        let configuration = services.configuration
        let scheme = configuration.publicScheme
        if let domain = configuration.domain {
            return RelayAnswer.Tunnel(
                name: entry.name, host: "\(entry.name).\(domain)", port: services.publicPort, scheme: scheme)
        }
        return RelayAnswer.Tunnel(
            name: entry.name, host: services.advertisedHost, port: entry.port ?? services.publicPort, scheme: scheme)
    }

    private func send(_ answer: RelayAnswer, context: ChannelHandlerContext) throws {
        let frame = try HandshakeFraming.encode(answer, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func refuse(_ reason: RefusalReason, _ message: String, context: ChannelHandlerContext) {
        state = .done
        timeout?.cancel()
        services.logger.info("agent refused", metadata: ["peer": "\(peer(context))", "reason": "\(reason.rawValue)"])
        guard
            let frame = try? HandshakeFraming.encode(
                RelayAnswer.refused(reason, message), allocator: context.channel.allocator)
        else {
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension RelayHandshakeHandler: Sendable {}
