import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Builds an accepted public connection's pipeline, given the handler that serves
/// HTTP/1.1 on it and the router its other protocols must use (the listener's, or one
/// that refuses every request). Other protocols (TLS, HTTP/2) live in modules this one
/// must not import, so the relay and the agent pass this in; without it, connections
/// speak HTTP/1.1 only. Runs on the connection's event loop.
public typealias PublicPipelineSetup =
    @Sendable (_ channel: any Channel, _ http1: PublicRequestHandler, _ router: any PublicRouter) throws -> Void

/// Binds public listeners: the relay's public port(s) and the agent's embedded relay
/// use the same pipeline.
public enum PublicServer {
    /// `childGroup` picks each accepted connection's event loop (default: `group`);
    /// `logger` hears, at debug level, why connections end on errors; `scheme` is
    /// `https` when `pipeline` puts TLS first; `watch` and `onComplete`, of each
    /// request, are for the request log. `connections` counts the connections open
    /// (shared by the listeners it caps) and closes those over a cap at once; a client
    /// outside `allow` gets 403 for every request (counted and logged as the others).
    public static func bind(
        host: String, port: Int, group: any EventLoopGroup, childGroup: (any EventLoopGroup)? = nil,
        router: any PublicRouter,
        requestTimeout: TimeAmount? = nil, idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout,
        limits: PublicLimits = PublicLimits(), connections: ConnectionLimits? = nil, allow: ClientAllowList? = nil,
        logger: Logger? = nil, scheme: String = "http", pipeline: PublicPipelineSetup? = nil,
        watch: RequestWatch? = nil, onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group, childGroup: childGroup ?? group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    do {
                        try connections?.count(channel)
                    } catch {
                        logger?.debug("public connection refused", metadata: ["limit": "\(error)"])
                        throw error
                    }
                    try PublicSocketOptions.apply(to: channel)
                    let router: any PublicRouter =
                        if let allow, !allow.allows(channel.remoteAddress) {
                            NotAllowedRouter(client: channel.remoteAddress?.ipAddress ?? "unknown")
                        } else {
                            router
                        }
                    // PublicRequestHandler reads and writes HTTP/1.1 itself (outgoing headers
                    // come from the target or nghttp2, which already validated them).
                    let http1 = PublicRequestHandler(
                        router: router, requestTimeout: requestTimeout, idleTimeout: idleTimeout, limits: limits,
                        logger: logger, scheme: scheme, watch: watch, onComplete: onComplete)
                    if let pipeline {
                        try pipeline(channel, http1, router)
                    } else {
                        try channel.pipeline.syncOperations.addHandler(http1)
                    }
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// A router that sends everything to one target: the embedded relay's.
public struct SingleTargetRouter: PublicRouter {
    public let target: any ExchangeTarget

    public init(target: any ExchangeTarget) {
        self.target = target
    }

    public func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
        target
    }
}

/// The router of a connection from a client outside `--allow`: every request it
/// sends is answered 403 naming the flag, and shows in the request log.
struct NotAllowedRouter: PublicRouter {
    let client: String

    func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
        throw .clientNotAllowed(client: client)
    }
}

/// The options of each public connection. Set here, as the connection is accepted,
/// rather than as the bootstrap's child options: a listener keeps its child options
/// (each boxed with its setter) for its whole life, and the relay keeps one listener
/// per dedicated tunnel port; seven options cost every idle tunnel 1.8 KB.
enum PublicSocketOptions {
    // TCP keepalive: a client that vanishes without a FIN (a laptop closed mid-upload,
    // a pod on a node that died) would otherwise hold its request, and its tunnel
    // stream, for good: nothing else times a request body, and by default nothing
    // times the answer. Probes start after a minute of silence and drop the
    // connection about a minute later; live clients never notice.
    static let idleSeconds: SocketOptionValue = 60
    static let intervalSeconds: SocketOptionValue = 10
    static let probes: SocketOptionValue = 6

    static func apply(to channel: any Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
        try options.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
        try options.setOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
            // TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT from <netinet/tcp.h>, which NIO
            // does not name. Elsewhere the system's (slower) timing applies.
            func tcp(_ name: CInt) -> ChannelOptions.Types.SocketOption {
                ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name))
            }
            try options.setOption(tcp(4), value: idleSeconds)
            try options.setOption(tcp(5), value: intervalSeconds)
            try options.setOption(tcp(6), value: probes)
        #endif
    }
}
