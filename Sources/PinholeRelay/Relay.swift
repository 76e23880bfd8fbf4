import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeCore
import PinholeTLS
import PinholeTunnel

/// The relay: a public HTTP side, a TLS side for agents, and the registry between them.
///
/// `start()` binds the listeners and returns the real ports (tests bind port 0);
/// `run()` then waits until `shutdown()` or cancellation.
public final class Relay: Sendable {
    public struct Addresses: Sendable {
        public let publicPort: Int
        public let agentPort: Int
    }

    public let configuration: RelayConfiguration
    /// The host tunnels on dedicated ports are reached at.
    public let advertisedHost: String
    private let group: any EventLoopGroup
    private let logger: Logger
    private let registry: TunnelRegistry
    /// Shared by every public listener: the caps count across them.
    private let publicLimits: PublicLimits
    private let publicConnections: ConnectionLimits
    private let agentConnectionLimits: ConnectionLimits
    private let listeners = NIOLockedValueBox<[any Channel]>([])
    /// Agent connections, closed on shutdown so agents notice at once and reconnect elsewhere.
    private let agentConnections = ChannelSet()
    private let portListeners = NIOLockedValueBox<[Int: EventLoopFuture<Void>]>([:])
    /// The public side's TLS, made by `start()` from `configuration.publicTLS`.
    private let publicTLS = NIOLockedValueBox<TLSContext?>(nil)

    public init(configuration: RelayConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.registry = TunnelRegistry(
            domain: configuration.domain, tunnelPorts: configuration.tunnelPorts,
            limits: TunnelRegistry.Limits(
                maxTunnels: configuration.maxTunnels, maxTunnelsPerToken: configuration.maxTunnelsPerToken,
                maxNamesPerToken: configuration.maxNamesPerToken, reservation: configuration.reservation,
                forgetAfter: configuration.forgetAfter),
            file: configuration.registryPath.map { RegistryFile(path: $0, logger: logger) })
        self.publicLimits = PublicLimits(
            inFlight: InFlightLimits(caps: configuration.inFlightCaps), stallTimeout: configuration.stallTimeout)
        self.publicConnections = ConnectionLimits(
            caps: configuration.publicConnectionCaps, totalFlag: "--max-connections",
            perAddressFlag: "--max-connections-per-address")
        self.agentConnectionLimits = ConnectionLimits(
            caps: configuration.agentConnectionCaps, totalFlag: "--max-agent-connections",
            perAddressFlag: "--max-agent-connections-per-address")
        if let publicHost = configuration.publicHost {
            advertisedHost = publicHost
        } else if !LocalAddresses.isWildcard(configuration.bindHost) {
            advertisedHost = configuration.bindHost
        } else {
            advertisedHost = LocalAddresses.reachable().first ?? "127.0.0.1"
        }
    }

    /// The number of agents connected right now.
    public var connectedTunnels: Int { registry.connectedCount }

    public func start() async throws(RelayError) -> Addresses {
        try configuration.validate()
        let authenticator = TokenAuthenticator(tokens: configuration.tokens)
        try restoreRegistry(owners: authenticator.owners)
        let tls: TLSContext
        do {
            tls = try TLSContext(
                server: TLSServerConfiguration(
                    identity: configuration.identity, applicationProtocols: [TunnelProtocol.applicationProtocol]))
        } catch {
            throw .certificate(error.description)
        }
        let publicTLS: TLSContext?
        do {
            publicTLS = try configuration.publicTLS.map { identity throws(TLSError) in
                try TLSContext(server: TLSServerConfiguration(identity: identity, applicationProtocols: PublicTLS.alpn))
            }
        } catch {
            throw .certificate("--public-tls: \(error.description)")
        }
        self.publicTLS.withLockedValue { $0 = publicTLS }
        let publicChannel = try await bind("public HTTP", flag: "--public-port", port: configuration.publicPort) {
            try await self.bindPublic(port: self.configuration.publicPort, childGroup: nil)
        }
        let services = RelayServices(
            configuration: configuration, registry: registry,
            authenticator: authenticator,
            tokenChecks: TokenCheckBudget(policy: .init(checksPer5Seconds: configuration.tokenChecksPer5Seconds)),
            logger: logger,
            ensurePortListener: { [self] port, loop in ensurePortListener(port, childLoop: loop) },
            advertisedHost: advertisedHost,
            publicPort: publicChannel.localAddress?.port ?? configuration.publicPort)
        let agentChannel = try await bind("agents", flag: "--agent-port", port: configuration.agentPort) {
            try await ServerBootstrap(group: self.group)
                .serverChannelOption(ChannelOptions.backlog, value: 1024)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(
                    ChannelOptions.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 512 * 1024)
                )
                // Small reads while a tunnel idles (its read buffer is kept per connection),
                // growing to large ones under bulk transfer.
                .childChannelOption(
                    ChannelOptions.recvAllocator,
                    value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 256 * 1024)
                )
                .childChannelInitializer { [agentConnections, agentConnectionLimits, logger] channel in
                    do {
                        try agentConnectionLimits.count(channel)
                    } catch {
                        logger.debug("agent connection refused", metadata: ["limit": "\(error)"])
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    agentConnections.insert(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            TLSHandler(context: tls), RelayHandshakeHandler(services: services),
                        ])
                    }
                }
                .bind(host: self.configuration.bindHost, port: self.configuration.agentPort).get()
        }
        // Ports kept across a restart answer at once: until the tunnel's agent is back, a
        // request gets the 503 naming it, not a refused connection.
        // (A port another program holds now is skipped, as on first use.)
        let held = registry.heldPorts.map { ensurePortListener($0, childLoop: group.next()) }
        for binding in held { _ = try? await binding.get() }
        let addresses = Addresses(
            publicPort: publicChannel.localAddress?.port ?? 0, agentPort: agentChannel.localAddress?.port ?? 0)
        logger.info(
            "relay listening",
            metadata: [
                "public": "\(configuration.bindHost):\(addresses.publicPort)",
                "agents": "\(configuration.bindHost):\(addresses.agentPort)",
            ])
        return addresses
    }

    /// Waits until the relay's listeners close (after `shutdown()`), shutting down on cancellation.
    public func run() async {
        let closed = listeners.withLockedValue { $0.map(\.closeFuture) }
        await withTaskCancellationHandler {
            for future in closed { try? await future.get() }
        } onCancel: {
            Task { await self.shutdown() }
        }
    }

    public func shutdown() async {
        let channels = listeners.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
        agentConnections.closeAll()
        do {
            try registry.writeNow()
        } catch {
            logger.warning("registry not saved", metadata: ["error": "\(error)"])
        }
    }

    /// Takes back who owns which name, alias and port from the registry file, and writes
    /// it at once: a folder the relay cannot write to stops the start, not a later hello.
    private func restoreRegistry(owners: Set<TokenDigest>) throws(RelayError) {
        guard let file = registry.file else { return }
        let restored = try registry.restore(file.load(), owners: owners)
        try registry.writeNow()
        logger.info(
            "registry restored",
            metadata: [
                "path": "\(file.path)", "names": "\(restored.names)", "forgotten-unused": "\(restored.unused)",
                "forgotten-token-gone": "\(restored.ownerGone)", "ports-dropped": "\(restored.portsDropped)",
            ])
    }

    /// A public listener: HTTP/1.1 and HTTP/2 on one port, behind TLS with `--public-tls`.
    private func bindPublic(port: Int, childGroup: (any EventLoopGroup)?) async throws -> any Channel {
        let router = RelayRouter(registry: registry)
        let scheme = configuration.publicScheme
        return try await PublicServer.bind(
            host: configuration.bindHost, port: port, group: group, childGroup: childGroup, router: router,
            requestTimeout: configuration.requestTimeout, idleTimeout: configuration.idleTimeout, limits: publicLimits,
            connections: publicConnections, logger: logger, scheme: scheme,
            pipeline: PublicHTTP2.setup(
                requestTimeout: configuration.requestTimeout, idleTimeout: configuration.idleTimeout,
                limits: publicLimits, scheme: scheme, logger: logger,
                first: PublicTLS.first(publicTLS.withLockedValue { $0 })))
    }

    private func bind(
        _ what: String, flag: String, port: Int, _ body: @Sendable () async throws -> any Channel
    ) async throws(RelayError) -> any Channel {
        do {
            let channel = try await body()
            listeners.withLockedValue { $0.append(channel) }
            return channel
        } catch {
            throw .bindFailed(
                what: what, host: configuration.bindHost, port: port, flag: flag,
                reason: ConnectionErrorText.describe(error))
        }
    }

    /// A tunnel's dedicated public port, bound on first use and kept for the relay's
    /// lifetime. Its connections are served on `childLoop`, the loop of the agent
    /// connection that asked for it, so their requests need not hop between threads
    /// (a hop costs a wakeup each way and about a quarter more CPU per request). After
    /// a reconnect lands on another loop the port keeps working, with hops.
    private func ensurePortListener(_ port: Int, childLoop: any EventLoop) -> EventLoopFuture<Void> {
        let loop = group.next()
        return portListeners.withLockedValue { futures in
            if let existing = futures[port] { return existing }
            let binding = loop.makeFutureWithTask {
                _ = try await self.bind("a tunnel", flag: "--tunnel-ports", port: port) {
                    try await self.bindPublic(port: port, childGroup: childLoop)
                }
            }
            futures[port] = binding
            binding.whenFailure { [portListeners, registry] _ in
                // Skip this port for a while (another program has it), and let a later
                // registration try it again after that.
                _ = portListeners.withLockedValue { $0.removeValue(forKey: port) }
                registry.portUnavailable(port)
            }
            return binding
        }
    }
}

/// Open channels of one kind, so they can all be closed together.
final class ChannelSet: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func insert(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { [channels] _ in
            _ = channels.withLockedValue { $0.removeValue(forKey: key) }
        }
    }

    func closeAll() {
        let open = channels.withLockedValue { $0.values }
        for channel in open { channel.close(promise: nil) }
    }
}
