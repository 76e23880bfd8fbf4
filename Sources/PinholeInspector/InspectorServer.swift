import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The inspector's HTTP server: the page, the JSON API and the live feed, on loopback
/// by default.
public final class InspectorServer: Sendable {
    public let channel: any Channel
    /// The address it listens on, as `host:port` (brackets for IPv6).
    public let address: String
    /// The port asked for, when it was taken and a later one was used instead.
    public let portTaken: Int?

    /// The open connections, told to finish when the server stops.
    private let connections: Connections

    public var url: String { "http://\(address)" }
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel, address: String, portTaken: Int?, connections: Connections) {
        self.channel = channel
        self.address = address
        self.portTaken = portTaken
        self.connections = connections
    }

    /// How many ports after a taken one are tried.
    public static let portsToTry = 10

    /// Listens on `host:port`, or the next free port of the `portsToTry` after it. Throws
    /// `InspectorServerError.noFreePort` when none is free.
    public static func start(
        inspector: Inspector, host: String = "127.0.0.1", port: Int = 4040,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> InspectorServer {
        let candidates = port == 0 ? [0] : Array(port..<min(port + portsToTry, 65536))
        var lastError: (any Error)?
        let connections = Connections()
        for candidate in candidates {
            do {
                let channel = try await bind(
                    inspector: inspector, host: host, port: candidate, group: group, connections: connections)
                let bound = channel.localAddress?.port ?? candidate
                let address = host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)"
                return InspectorServer(
                    channel: channel, address: address, portTaken: candidate == port ? nil : port,
                    connections: connections)
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                lastError = error
                continue
            }
        }
        throw InspectorServerError.noFreePort(
            host: host, first: port, last: candidates.last ?? port, reason: "\(lastError.map { "\($0)" } ?? "")")
    }

    private static func bind(
        inspector: Inspector, host: String, port: Int, group: any EventLoopGroup, connections: Connections
    ) async throws -> any Channel {
        let access = InspectorAccess(boundHost: host)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        InspectorHTTPHandler(api: InspectorAPI(inspector: inspector), access: access))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// Stops listening, and tells each connection to finish: idle ones and live feeds
    /// close now, answers still owed (a replay at a breakpoint) go out first.
    public func stop() async {
        try? await channel.close()
        for connection in connections.all() {
            connection.pipeline.fireUserInboundEventTriggered(InspectorHTTPHandler.Stop())
        }
    }

    /// The server's open connections.
    private final class Connections: Sendable {
        private let open = NIOLockedValueBox([ObjectIdentifier: any Channel]())

        func add(_ channel: any Channel) {
            let key = ObjectIdentifier(channel)
            open.withLockedValue { $0[key] = channel }
            channel.closeFuture.whenComplete { [open] _ in _ = open.withLockedValue { $0.removeValue(forKey: key) } }
        }

        func all() -> [any Channel] { open.withLockedValue { Array($0.values) } }
    }
}

public enum InspectorServerError: Error, Sendable, CustomStringConvertible {
    case noFreePort(host: String, first: Int, last: Int, reason: String)

    public var description: String {
        switch self {
        case .noFreePort(let host, let first, let last, _):
            return "no free port for the inspector on \(host) (tried \(first)-\(last))"
        }
    }
}
