import NIOCore

/// What arrives on a stream, in order: one `.headers`, any number of `.data`,
/// optionally `.trailers`, then `.end` (unless the stream is reset first).
public enum HTTP2StreamPart: Sendable {
    case headers(HTTP2Headers)
    case data(ByteBuffer)
    case trailers(HTTP2Headers)
    case end
}

/// Receives one stream's events. All calls happen on the connection's event loop,
/// never while nghttp2 is running, so a delegate may call any stream or connection
/// method from inside them.
public protocol HTTP2StreamDelegate: AnyObject {
    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart)
    /// The stream is over. `error` is nil when both sides ended it normally.
    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?)
    /// `stream.isWritable` changed; a paused producer may resume.
    func streamWritabilityChanged(_ stream: HTTP2Stream)
}

/// One HTTP/2 stream. Confined to its connection's event loop.
///
/// Outgoing data is queued here and handed to nghttp2 as flow control allows;
/// a producer should stop while `isWritable` is false. Incoming data must be
/// acknowledged with `consumed(_:)` once it has been passed on: only then does the
/// peer get window to send more, so a slow consumer slows its own stream only.
public final class HTTP2Stream {
    public internal(set) var id: Int32
    /// Strongly held until the stream closes, then released.
    public internal(set) var delegate: (any HTTP2StreamDelegate)?
    /// The connection the stream belongs to. Held strongly: a delegate may keep a
    /// stream after the connection has closed, and its calls must stay safe.
    public let connection: HTTP2Connection

    /// What has been sent and received, and whether the stream is over.
    var state = HTTP2StreamStateMachine()

    // The outgoing queue, read by the data provider.
    private var outgoing = OutgoingData()
    var outgoingBytes = 0

    // The header block being received, and why the stream is ending if it is not normal.
    var incomingHeaders = HTTP2Headers()
    var incomingHeaderBytes = 0
    var resetReason: HTTP2Error?

    /// Whether the peer's first HEADERS frame also ended the stream: a message with no
    /// body at all. Set before `.headers` is delivered, so its handler can rely on it.
    public var headersEndedStream: Bool { state.headersEndedStream }

    init(id: Int32, connection: HTTP2Connection, delegate: (any HTTP2StreamDelegate)?) {
        self.id = id
        self.connection = connection
        self.delegate = delegate
    }

    /// False while more outgoing data waits than the configured high watermark.
    public var isWritable: Bool {
        outgoingBytes < connection.configuration.streamWriteBufferHighWatermark
    }

    /// Sends response headers (server role) or informational/extra headers.
    /// With `endStream`, the stream ends here and no body follows.
    public func sendHeaders(_ headers: HTTP2Headers, endStream: Bool = false) {
        connection.perform(.sendHeaders(self, headers, endStream: endStream))
    }

    /// Queues body bytes. With `endStream`, they are the last ones.
    public func sendData(_ data: ByteBuffer, endStream: Bool = false) {
        guard state.mayQueue else { return }
        if data.readableBytes > 0 {
            outgoing.append(data)
            outgoingBytes += data.readableBytes
        }
        state.dataQueued(
            end: endStream, outgoingBytes: outgoingBytes,
            highWatermark: connection.configuration.streamWriteBufferHighWatermark)
        connection.perform(.resumeData(self))
    }

    /// Ends the stream with trailers after any queued data.
    public func sendTrailers(_ trailers: HTTP2Headers) {
        guard state.trailersQueued(trailers) else { return }
        connection.perform(.resumeData(self))
    }

    /// Ends the stream after any queued data.
    public func finish() {
        sendData(ByteBuffer(), endStream: true)
    }

    /// Asks the peer to stop sending once this side's message is out whole: RST_STREAM
    /// with NO_ERROR right after END_STREAM, if the peer's message has not ended by then
    /// (RFC 9113 §8.1, a response complete before its request). Call it before ending
    /// the stream; nothing is cut, the peer keeps the whole answer.
    public func stopPeerOnceEnded() {
        state.peerRestUnwanted()
    }

    /// Resets the stream (RST_STREAM) with `code`; queued data is dropped.
    public func reset(_ code: HTTP2ErrorCode = .cancel) {
        guard !state.isClosed else { return }
        discardOutgoing()
        connection.perform(.reset(self, code))
    }

    /// Resets the stream (RST_STREAM) with `code` once what is already queued has gone
    /// out: HEADERS submitted in the same tick, and queued data as flow control lets it.
    /// The peer sees what was sent, then the reset, as when a response is cut short.
    /// Nothing more can be queued.
    public func resetAfterQueued(_ code: HTTP2ErrorCode = .internalError) {
        guard !state.isClosed else { return }
        connection.perform(.resetAfterQueued(self, code))
    }

    /// Gives `count` bytes of receive window back to the peer: call it once the data
    /// delivered in `.data` parts has been passed on.
    public func consumed(_ count: Int) {
        guard count > 0, !state.isClosed else { return }
        connection.perform(.consume(self, count))
    }

    /// Drops queued data.
    func discardOutgoing() {
        outgoing.removeAll()
        outgoingBytes = 0
    }

    /// Takes up to `count` queued bytes for a DATA frame being written, handing them to
    /// `body` as slices of the queued buffers, in order.
    func takeOutgoing(_ count: Int, _ body: (ByteBuffer) -> Void) {
        var remaining = count
        while remaining > 0, var chunk = outgoing.first {
            let take = min(remaining, chunk.readableBytes)
            body(chunk.readSlice(length: take)!)
            remaining -= take
            if chunk.readableBytes == 0 {
                outgoing.removeFirst()
            } else {
                outgoing.replaceFirst(with: chunk)
            }
        }
        outgoingBytes -= count - remaining
    }
}

@available(*, unavailable)
extension HTTP2Stream: Sendable {}
