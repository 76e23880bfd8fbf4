import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection from a chosen loopback address, keeping what it receives: for
/// tests that hold connections open, or need to see one closed before it said anything.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<[UInt8]>

    static func open(to port: Int, from source: String = "127.0.0.1") async throws -> RawConnection {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    /// Sends `text`, then waits for the peer to close and returns all it sent.
    func exchange(_ text: String) async throws -> String {
        try await channel.writeAndFlush(ByteBuffer(string: text))
        return await closed()
    }

    /// Waits for the connection to close (either side) and returns what arrived.
    func closed() async -> String {
        try? await channel.closeFuture.get()
        return String(decoding: received.withLockedValue { $0 }, as: UTF8.self)
    }

    func close() async {
        try? await channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<[UInt8]>

        init(received: NIOLockedValueBox<[UInt8]>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            received.withLockedValue { $0.append(contentsOf: bytes.readableBytesView) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A reset is how a refused connection may end; closing is all that matters.
            context.close(promise: nil)
        }
    }
}
