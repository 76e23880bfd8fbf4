internal import COpenSSL
import NIOCore

/// The two ciphertext queues between a `TLSConnection` and the network.
///
/// OpenSSL reads received records straight out of the buffers the channel read, and
/// appends the records it produces to `outbound`, through the custom BIO below.
/// Compared with a pair of memory BIOs this saves one copy in each direction.
final class CiphertextBuffers {
    /// Received from the peer, not yet consumed by OpenSSL, oldest first. Reads are
    /// queued rather than appended to one buffer: most reads end inside a record, and
    /// appending would copy every read (and first the channel's pooled read buffer).
    private var inbound = CircularBuffer<ByteBuffer>(initialCapacity: 2)
    /// Bytes in `inbound`.
    private(set) var inboundBytes = 0
    /// Produced by OpenSSL, not yet handed to the channel.
    var outbound: ByteBuffer

    init(allocator: ByteBufferAllocator) {
        self.outbound = allocator.buffer(capacity: 0)
    }

    func receive(_ buffer: inout ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        inboundBytes += buffer.readableBytes
        inbound.append(buffer)
    }

    /// Copies up to `destination.count` received bytes into `destination`, from the
    /// oldest read only: OpenSSL asks again for the rest of a record.
    func readInbound(into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard var front = inbound.first, let base = destination.baseAddress else { return 0 }
        let count = min(front.readableBytes, destination.count)
        front.withUnsafeReadableBytes { source in
            base.copyMemory(from: source.baseAddress!, byteCount: count)
        }
        front.moveReaderIndex(forwardBy: count)
        inboundBytes -= count
        if front.readableBytes == 0 {
            // Dropping a consumed read lets the channel reuse its pooled buffer.
            inbound.removeFirst()
        } else {
            inbound[inbound.startIndex] = front
        }
        return count
    }

    /// Makes room for the records that `count` plaintext bytes become (TLS 1.3 adds
    /// at most 22 bytes to each 16 KiB record; TLS 1.2 with AES-GCM adds 29).
    ///
    /// The storage handed out last time is reused when the channel has already
    /// written it and let go (the usual case: sockets take small writes at once);
    /// `clear()` allocates afresh only when it is still shared. Either way there is
    /// one allocation at most, sized up front, instead of growth by doubling.
    func reserveOutbound(forPlaintext count: Int) {
        let records = count / (16 * 1024) + 1
        if outbound.readableBytes == 0 { outbound.clear() }
        outbound.reserveCapacity(minimumWritableBytes: count + records * 32)
    }

    /// Hands over what OpenSSL wrote, if anything. Large storage is kept for reuse
    /// while bulk data flows; small storage is not, since allocating it again is cheap
    /// and an idle connection (keepalive pings only) then holds none.
    func takeOutbound() -> ByteBuffer? {
        guard outbound.readableBytes > 0 else { return nil }
        let taken = outbound
        if outbound.capacity > Self.keptCapacity {
            outbound.moveReaderIndex(to: outbound.writerIndex)
        } else {
            outbound = ByteBuffer()
        }
        return taken
    }

    /// Storage up to this size is given away with what it holds.
    static let keptCapacity = 16 * 1024

    /// An idle connection should not hold a bulk-sized buffer.
    func releaseLargeOutbound() {
        if outbound.readableBytes == 0, outbound.capacity > 256 * 1024 { outbound = ByteBuffer() }
    }
}

/// The BIO method, created once per process. `nonisolated(unsafe)` is safe: the
/// global is initialised exactly once (Swift's lazy globals are thread-safe) and the
/// method table is never changed afterwards.
nonisolated(unsafe) private let ciphertextBIOMethod: OpaquePointer = {
    let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pinhole ciphertext")!
    BIO_meth_set_create(
        method,
        { bio in
            BIO_set_init(bio, 1)
            return 1
        })
    BIO_meth_set_destroy(method, { _ in 1 })
    BIO_meth_set_read_ex(method, ciphertextBIORead)
    BIO_meth_set_write_ex(method, ciphertextBIOWrite)
    BIO_meth_set_ctrl(method, ciphertextBIOControl)
    return method
}()

/// A BIO reading from and writing to `buffers`, which must outlive it (the
/// `TLSConnection` owns both and frees the `SSL`, and with it the BIO, first).
func makeCiphertextBIO(_ buffers: CiphertextBuffers) -> OpaquePointer? {
    guard let bio = BIO_new(ciphertextBIOMethod) else { return nil }
    BIO_set_data(bio, Unmanaged.passUnretained(buffers).toOpaque())
    return bio
}

private func buffers(of bio: OpaquePointer?) -> CiphertextBuffers? {
    guard let bio, let data = BIO_get_data(bio) else { return nil }
    return Unmanaged<CiphertextBuffers>.fromOpaque(data).takeUnretainedValue()
}

private func ciphertextBIORead(
    _ bio: OpaquePointer?, _ destination: UnsafeMutablePointer<CChar>?, _ capacity: Int,
    _ readCount: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let buffers = buffers(of: bio), let destination, let readCount else { return 0 }
    pinhole_BIO_clear_retry_flags(bio)
    guard buffers.inboundBytes > 0 else {
        // Not EOF: more ciphertext may arrive. The handler deals with real EOF.
        pinhole_BIO_set_retry_read(bio)
        readCount.pointee = 0
        return 0
    }
    let count = buffers.readInbound(into: UnsafeMutableRawBufferPointer(start: destination, count: capacity))
    readCount.pointee = count
    return 1
}

private func ciphertextBIOWrite(
    _ bio: OpaquePointer?, _ source: UnsafePointer<CChar>?, _ count: Int, _ written: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let buffers = buffers(of: bio), let source, let written else { return 0 }
    pinhole_BIO_clear_retry_flags(bio)
    buffers.outbound.writeBytes(UnsafeRawBufferPointer(start: source, count: count))
    written.pointee = count
    return 1
}

private func ciphertextBIOControl(
    _ bio: OpaquePointer?, _ command: Int32, _ argument: Int, _ pointer: UnsafeMutableRawPointer?
) -> Int {
    switch command {
    case BIO_CTRL_FLUSH:
        return 1
    case BIO_CTRL_PENDING:
        return buffers(of: bio)?.inboundBytes ?? 0
    default:
        return 0
    }
}
