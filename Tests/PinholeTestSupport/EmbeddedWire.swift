import NIOCore
import NIOEmbedded

/// Two EmbeddedChannels wired back to back: what one writes, the other reads.
public enum EmbeddedWire {
    /// Runs both event loops and moves bytes both ways until nothing moves.
    public static func interact(_ first: EmbeddedChannel, _ second: EmbeddedChannel) throws {
        var moved = true
        while moved {
            first.embeddedEventLoop.run()
            second.embeddedEventLoop.run()
            moved = try deliver(from: first, to: second)
            moved = try deliver(from: second, to: first) || moved
        }
    }

    private static func deliver(from source: EmbeddedChannel, to destination: EmbeddedChannel) throws -> Bool {
        var moved = false
        while let bytes = try source.readOutbound(as: ByteBuffer.self) {
            moved = true
            if destination.isActive { try destination.writeInbound(bytes) }
        }
        return moved
    }
}
