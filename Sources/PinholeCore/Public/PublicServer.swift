import NIOCore
import NIOHTTP1
import NIOPosix

/// Binds public HTTP/1.1 listeners: the relay's public port(s) and the agent's
/// embedded relay use the same pipeline.
public enum PublicServer {
    /// `childGroup` picks each accepted connection's event loop (default: `group`).
    public static func bind(
        host: String, port: Int, group: any EventLoopGroup, childGroup: (any EventLoopGroup)? = nil,
        router: any PublicRouter,
        requestTimeout: TimeAmount? = nil, onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group, childGroup: childGroup ?? group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // PublicRequestHandler reads and writes HTTP/1.1 itself (outgoing headers
                    // come from the target or nghttp2, which already validated them).
                    try channel.pipeline.syncOperations.addHandler(
                        PublicRequestHandler(router: router, requestTimeout: requestTimeout, onComplete: onComplete))
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
