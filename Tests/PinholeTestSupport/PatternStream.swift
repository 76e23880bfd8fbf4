import NIOCore

/// A deterministic byte stream for transfer tests: 64 KiB chunks of the same
/// noise, each stamped with its index, so a lost, repeated or reordered chunk
/// changes the receiver's checksum.
public struct PatternStream {
    public static let chunkSize = 64 * 1024
    private static let noise: [UInt8] = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<chunkSize).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }()

    public let totalBytes: Int
    public private(set) var producedBytes = 0

    public init(totalBytes: Int) {
        self.totalBytes = totalBytes
    }

    public var isFinished: Bool { producedBytes >= totalBytes }

    /// The next chunk, or nil at the end.
    public mutating func next(allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard !isFinished else { return nil }
        let length = min(Self.chunkSize, totalBytes - producedBytes)
        var buffer = allocator.buffer(capacity: length)
        buffer.writeBytes(Self.noise[0..<length])
        if length >= 8 { buffer.setInteger(UInt64(producedBytes / Self.chunkSize), at: buffer.readerIndex) }
        producedBytes += length
        return buffer
    }
}
