import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection from a chosen loopback address, keeping what it receives: for
/// tests that hold connections open, or need to see one closed before it said anything.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<Received>

    /// What arrived so far, and who waits for a marker in it.
    struct Received {
        var bytes: [UInt8] = []
        var waiter: (marker: String, promise: EventLoopPromise<Void>)?

        mutating func takeWaiterIfMet() -> EventLoopPromise<Void>? {
            guard let waiter, String(decoding: bytes, as: UTF8.self).contains(waiter.marker) else { return nil }
            self.waiter = nil
            return waiter.promise
        }
    }

    static func open(to port: Int, from source: String = "127.0.0.1") async throws -> RawConnection {
        let received = NIOLockedValueBox(Received())
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

    private init(channel: any Channel, received: NIOLockedValueBox<Received>) {
        self.channel = channel
        self.received = received
    }

    /// Sends `text`, then waits for the peer to close and returns all it sent.
    func exchange(_ text: String) async throws -> String {
        try await channel.writeAndFlush(ByteBuffer(string: text))
        return await closed()
    }

    /// Sends `text`, then waits until what arrived contains `marker` (the connection stays
    /// open); fails if it closes first.
    func send(_ text: String, awaiting marker: String) async throws {
        let arrived = expect(marker)
        try await channel.writeAndFlush(ByteBuffer(string: text))
        try await arrived.get()
    }

    /// Waits until what arrived contains `marker`; fails if the connection closes first.
    func wait(for marker: String) async throws {
        try await expect(marker).get()
    }

    private func expect(_ marker: String) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let met = received.withLockedValue { received in
            received.waiter = (marker, promise)
            return received.takeWaiterIfMet()
        }
        met?.succeed()
        channel.closeFuture.whenComplete { _ in promise.fail(ChannelError.ioOnClosedChannel) }
        return promise.futureResult
    }

    /// Waits for the connection to close (either side) and returns what arrived.
    func closed() async -> String {
        try? await channel.closeFuture.get()
        return String(decoding: received.withLockedValue { $0.bytes }, as: UTF8.self)
    }

    func close() async {
        try? await channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<Received>

        init(received: NIOLockedValueBox<Received>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            let met = received.withLockedValue { received in
                received.bytes.append(contentsOf: bytes.readableBytesView)
                return received.takeWaiterIfMet()
            }
            met?.succeed()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A reset is how a refused connection may end; closing is all that matters.
            context.close(promise: nil)
        }
    }
}
