import NIOCore
import NIOHTTP1

/// Turns one message at a time into HTTP/1.1 bytes, in place of NIO's encoders: the
/// responses the relay sends public clients, and the requests the agent sends its target.
///
/// The point is the number of writes: the head, short body pieces, chunk framing and
/// the end are gathered in one buffer, so a small message leaves as one buffer in one
/// `write` rather than three pipeline writes and three iovecs. A body piece larger than
/// `gatherLimit` is passed on as it is, after whatever was gathered before it.
struct HTTP1MessageWriter {
    /// How the body is delimited on the wire.
    enum Framing: Equatable {
        /// No body may follow (an answer to HEAD, 1xx, 204 or 304; a request known to
        /// have none): pieces are dropped.
        case none
        /// Content-Length, or the end of the connection for an HTTP/1.0 client.
        case identity
        case chunked
    }

    private(set) var framing = Framing.identity
    private var gathered: ByteBuffer?
    /// The last small buffer handed out by `take`. Once the channel has written it, it is
    /// ours alone again and the next message reuses it: no allocation per message.
    private var spare: ByteBuffer?
    /// Larger buffers are not kept: an idle keep-alive connection should hold little.
    static let spareCapacityLimit = 2048
    private let allocator: ByteBufferAllocator
    /// Pieces up to this size are copied into the gathered buffer; copying 4 KiB costs
    /// less than a pipeline write and an iovec of its own.
    static let gatherLimit = 4096

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
    }

    /// Starts a response. `hasBody` says whether one may follow (see
    /// `ProxyResponseHead.hasBody(for:)`); without a Content-Length, an HTTP/1.1 body is
    /// chunked and an HTTP/1.0 one runs to the end of the connection.
    mutating func head(
        status: HTTPResponseStatus, version: HTTPVersion, headers: HTTPHeaders, hasBody: Bool,
        connection: String?
    ) {
        if !hasBody {
            framing = .none
        } else if headers.contains(name: "content-length") || version.minor == 0 {
            framing = .identity
        } else {
            framing = .chunked
        }
        var buffer = takeBuffer(minimumCapacity: 128 + 32 * headers.count)
        buffer.writeStatusLine(version: version, status: status)
        for (name, value) in headers { buffer.writeHeaderField(name, value) }
        if framing == .chunked { buffer.writeHeaderField("transfer-encoding", "chunked") }
        if let connection { buffer.writeHeaderField("connection", connection) }
        buffer.writeStaticString("\r\n")
        gathered = buffer
    }

    /// Starts a request to the target. The original Host is kept, as the public client
    /// sent it, so the application sees the address it was called by. Without a
    /// Content-Length, a body is chunked.
    /// A request that asks to switch protocols (`request.upgrade`) goes with its
    /// Upgrade field and no framing: what follows is the new protocol's, once the app
    /// agrees.
    mutating func head(request: ProxyRequestHead, hasBody: Bool) {
        let headers = request.headers
        if request.upgrade != nil {
            framing = .identity
        } else if !hasBody {
            framing = .none
        } else {
            framing = headers.contains(name: "content-length") ? .identity : .chunked
        }
        var buffer = takeBuffer(minimumCapacity: 128 + 32 * headers.count)
        buffer.writeString(request.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(request.path)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        buffer.writeHeaderField("host", request.authority)
        for (name, value) in headers { buffer.writeHeaderField(name, value) }
        if framing == .chunked { buffer.writeHeaderField("transfer-encoding", "chunked") }
        if let upgrade = request.upgrade {
            buffer.writeHeaderField("connection", "upgrade")
            buffer.writeHeaderField("upgrade", upgrade)
        }
        buffer.writeStaticString("\r\n")
        gathered = buffer
    }

    /// The app's 101, for a client that asked to switch protocols: from here on, bytes
    /// pass as they are.
    mutating func switchingProtocols(to upgrade: String, headers: HTTPHeaders) {
        framing = .identity
        var buffer = takeBuffer(minimumCapacity: 128 + 32 * headers.count)
        buffer.writeStatusLine(version: .http1_1, status: .switchingProtocols)
        for (name, value) in headers { buffer.writeHeaderField(name, value) }
        buffer.writeHeaderField("connection", "upgrade")
        buffer.writeHeaderField("upgrade", upgrade)
        buffer.writeStaticString("\r\n")
        gathered = buffer
    }

    /// Frames one body piece; `emit` receives buffers that must be written now, in order.
    mutating func body(_ piece: ByteBuffer, emit: (ByteBuffer) -> Void) {
        let count = piece.readableBytes
        guard framing != .none, count > 0 else { return }
        var buffer = takeBuffer(minimumCapacity: min(count, Self.gatherLimit) + 16)
        if framing == .chunked {
            buffer.writeChunkSize(count)
        }
        if count <= Self.gatherLimit {
            var piece = piece
            buffer.writeBuffer(&piece)
            if framing == .chunked { buffer.writeStaticString("\r\n") }
            gathered = buffer
            return
        }
        emit(buffer)
        emit(piece)
        if framing == .chunked {
            var tail = allocator.buffer(capacity: 64)
            tail.writeStaticString("\r\n")
            gathered = tail
        }
    }

    /// Ends the response: the last chunk and any trailers when chunked.
    mutating func end(trailers: HTTPHeaders?) {
        guard framing == .chunked else { return }
        var buffer = takeBuffer(minimumCapacity: 8)
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] { buffer.writeHeaderField(name, value) }
        buffer.writeStaticString("\r\n")
        gathered = buffer
    }

    /// What was gathered since the last call, to be written before a flush.
    mutating func take() -> ByteBuffer? {
        defer { gathered = nil }
        if let gathered, gathered.capacity <= Self.spareCapacityLimit { spare = gathered }
        return gathered
    }

    /// The gathered buffer to append to, or a new one.
    private mutating func takeBuffer(minimumCapacity: Int) -> ByteBuffer {
        if var buffer = gathered {
            gathered = nil
            buffer.reserveCapacity(minimumWritableBytes: minimumCapacity)
            return buffer
        }
        if var buffer = spare {
            spare = nil
            // Clearing a buffer the channel still holds allocates a fresh one, as before.
            buffer.clear(minimumCapacity: max(minimumCapacity, 256))
            return buffer
        }
        return allocator.buffer(capacity: max(minimumCapacity, 256))
    }
}

extension HTTP1MessageWriter {
    /// Gathers the plain-text answer for a request that nothing upstream will answer,
    /// marked `Connection: close`.
    mutating func answer(_ error: ExchangeError, version: HTTPVersion, emit: (ByteBuffer) -> Void) {
        let body = error.body
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: ExchangeError.bodyContentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        head(status: error.status, version: version, headers: headers, hasBody: true, connection: "close")
        self.body(body, emit: emit)
        end(trailers: nil)
    }
}

extension ByteBuffer {
    /// `HTTP/1.1 200 OK\r\n`, without building a String first.
    mutating func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus) {
        writeStaticString("HTTP/1.")
        writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: version.minor == 0 ? 0 : 1))
        writeInteger(UInt8(ascii: " "))
        let code = Int(status.code)
        writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: (code / 100) % 10))
        writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: (code / 10) % 10))
        writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: code % 10))
        writeInteger(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
    }

    mutating func writeHeaderField(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// The size line of a chunk: hexadecimal, then CRLF.
    mutating func writeChunkSize(_ size: Int) {
        var digits = 1
        while size >> (4 * digits) != 0 { digits += 1 }
        for shift in stride(from: 4 * (digits - 1), through: 0, by: -4) {
            let nibble = UInt8(truncatingIfNeeded: (size >> shift) & 0xF)
            writeInteger(nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ nibble &- 10)
        }
        writeStaticString("\r\n")
    }
}
