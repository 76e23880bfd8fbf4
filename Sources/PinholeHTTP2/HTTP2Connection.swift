internal import CNghttp2
import NIOCore

public enum HTTP2Role: Sendable {
    case client, server
}

/// One HTTP/2 connection driven by an nghttp2 session. Confined to its event loop;
/// obtained from `HTTP2ConnectionHandler.connection`.
///
/// Its lifecycle is `machine` (see `HTTP2ConnectionStateMachine`): each method here
/// feeds it an event and carries out the action it returns. Reentrancy is handled in one
/// place: nghttp2 calls back only from inside `nghttp2_session_mem_recv` and
/// `nghttp2_session_send`; while the machine says it is running, those callbacks merely
/// record `SessionEvent`s, and anything that would touch the session is appended to
/// `deferredOperations`. Both queues are drained after the call returns, so delegates
/// always run outside nghttp2 and may call anything.
public final class HTTP2Connection {
    public let role: HTTP2Role
    public let configuration: HTTP2Configuration
    public let eventLoop: any EventLoop

    /// Called (outside nghttp2) for each stream the peer opens; returns its delegate.
    let streamAcceptor: ((HTTP2Stream) -> any HTTP2StreamDelegate)?

    var session: OpaquePointer?
    var context: ChannelHandlerContext?
    var streams: [Int32: HTTP2Stream] = [:]
    /// The stream whose header block nghttp2 is delivering (see `beginHeaders`).
    var headerBlockStream: HTTP2Stream?
    var machine = HTTP2ConnectionStateMachine()

    var deferredOperations: [Operation] = []
    var events: [SessionEvent] = []
    var spareOperations: [Operation] = []
    var spareEvents: [SessionEvent] = []
    /// Bytes nghttp2 produced during `nghttp2_session_send`, written to the channel after it.
    var outbound: ByteBuffer
    /// Buffers that go out before `outbound` in the same write: earlier frames, and large
    /// DATA payloads passed on as slices of the stream's own buffers instead of copied.
    var outboundQueue: [ByteBuffer] = []
    var outboundQueueBytes = 0
    /// The buffer currently inside `nghttp2_session_mem_recv`, so DATA payloads can be sliced, not copied.
    var currentInput: (base: UnsafeRawPointer, buffer: ByteBuffer)?
    /// DATA bytes received whose connection-level window is returned right after the call.
    var connectionBytesToConsume = 0
    /// The last reason nghttp2 gave for refusing something the peer sent.
    var lastProtocolComplaint: String?

    var pendingPings: [UInt64: (sent: NIODeadline, promise: EventLoopPromise<TimeAmount>)] = [:]
    var nextPingID: UInt64 = 0

    /// The peer's GOAWAY, once it sent one.
    public var goAwayReceived: (code: HTTP2ErrorCode, lastStreamID: Int32)? { machine.goAwayReceived }
    /// Whether this side has sent GOAWAY and the connection is draining.
    public var goAwaySent: Bool { machine.goAwaySent }
    /// Whether nghttp2 is on the stack (tests check that no delegate runs inside it).
    var inSession: Bool { machine.isInSession }
    var terminalError: HTTP2Error? { machine.terminalError }

    /// Cap on what one send pass writes to the channel; a larger backlog waits for the
    /// next pass, or for writability. A DATA frame that would cross it waits for the next
    /// pass, unless it is the pass's first (one frame is at most 64 KiB). A flush carries
    /// one pass, or small ones together (`coalescedFlushLimit`), so the TLS record buffer
    /// for a flush stays below malloc's default mmap threshold (128 KiB).
    static let maximumWriteSize = 64 * 1024
    /// Passes that wrote less than this in all wait for one flush together (see
    /// `HTTP2ConnectionStateMachine.passWrote`): a head and body, then the trailers
    /// submitted after them.
    static let coalescedFlushLimit = 16 * 1024
    /// DATA payload pieces at least this long are written as slices, not copied into
    /// `outbound`. Each slice starts a new buffer in the write, and under TLS the bytes
    /// before it (a frame header at least) end in a short record of their own. Between
    /// relay and agent (64 KiB frames) that keeps the record count about as it was: a
    /// 64 KiB frame was already four full records and a short one. With a peer that keeps
    /// 16 KiB frames it is up to 8 records per 64 KiB instead of 5. A 32 KiB threshold
    /// would avoid that, but measured no better between relay and agent (5 alternating
    /// rounds: download CPU per 100 MiB relay 90 -> 130 ms, upload 122 -> 115 ms).
    static let sliceThreshold = 16 * 1024
    /// Event and operation queues keep at most this much capacity between calls once no
    /// stream is open (while streams are open they keep all, see `deliverEvents`). A
    /// response read makes four events (headers, data, end, close), and under h2load
    /// -c10 -m10 the agent's app connection reads the answers of dozens of requests at
    /// once, then has no stream open; at 128 its queues were regrown on most reads. An
    /// event is under 64 bytes: at most 16 KiB a queue for a connection gone quiet.
    static let keptQueueCapacity = 256
    /// The write buffer a connection with no stream open keeps (see `flushOutput`).
    static let keptOutboundCapacity = 4 * 1024

    enum Operation {
        case openStream(HTTP2Stream, HTTP2Headers, endStream: Bool)
        case sendHeaders(HTTP2Stream, HTTP2Headers, endStream: Bool)
        case resumeData(HTTP2Stream)
        case submitTrailers(HTTP2Stream)
        case reset(HTTP2Stream, HTTP2ErrorCode)
        case resetAfterQueued(HTTP2Stream, HTTP2ErrorCode)
        /// RST_STREAM(NO_ERROR) after this side's END_STREAM (see `stopPeerOnceEnded`):
        /// not an error, so the stream closes as a normal one does.
        case stopPeer(HTTP2Stream)
        case consume(HTTP2Stream, Int)
    }

    enum SessionEvent {
        case streamOpened(HTTP2Stream)
        case streamPart(HTTP2Stream, HTTP2StreamPart)
        case streamClosed(HTTP2Stream, HTTP2Error?)
        case streamWritable(HTTP2Stream)
        case goAway(HTTP2ErrorCode, lastStreamID: Int32, debugData: String)
        case pingAcknowledged(UInt64)
    }

    init(
        role: HTTP2Role, configuration: HTTP2Configuration, eventLoop: any EventLoop,
        streamAcceptor: ((HTTP2Stream) -> any HTTP2StreamDelegate)?
    ) {
        self.role = role
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.streamAcceptor = streamAcceptor
        self.outbound = ByteBufferAllocator().buffer(capacity: 0)
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    /// Streams currently open.
    public var activeStreamCount: Int { streams.count }

    /// Moves the next stream id forward (tests reach the end of the id space with it).
    func setNextStreamID(_ id: Int32) {
        guard let session else { return }
        let result = nghttp2_session_set_next_stream_id(session, id)
        precondition(result == 0, "stream id \(id) is not a valid next id for this role")
    }

    // MARK: Public operations

    /// Opens a stream with request headers (client role). With `endStream`, the request has no body.
    public func openStream(
        headers: HTTP2Headers, endStream: Bool = false, delegate: any HTTP2StreamDelegate
    ) throws(HTTP2Error) -> HTTP2Stream {
        guard role == .client else { throw .misuse("only the client role opens streams") }
        let action = machine.streamOpenRequested()
        if case .refuse(let error) = action { throw error }
        let stream = HTTP2Stream(id: 0, connection: self, delegate: delegate)
        carryOut(.openStream(stream, headers, endStream: endStream), action)
        if let error = stream.resetReason { throw error }
        return stream
    }

    /// Sends a PING; the future carries the round-trip time.
    public func ping() -> EventLoopFuture<TimeAmount> {
        let promise = eventLoop.makePromise(of: TimeAmount.self)
        if case .refuse(let error) = machine.pingRequested() {
            promise.fail(error)
            return promise.futureResult
        }
        guard let session else {
            promise.fail(HTTP2Error.connectionClosed)
            return promise.futureResult
        }
        nextPingID &+= 1
        let id = nextPingID
        let result = withUnsafeBytes(of: id.bigEndian) { opaque in
            nghttp2_submit_ping(
                session, UInt8(NGHTTP2_FLAG_NONE.rawValue), opaque.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard result == 0 else {
            promise.fail(HTTP2Error.library(operation: "sending PING", code: result))
            return promise.futureResult
        }
        pendingPings[id] = (.now(), promise)
        scheduleSend()
        return promise.futureResult
    }

    /// Tells the connection a caller has just queued the last frame of a message (a
    /// whole request or response). Frames are normally sent once per event-loop tick;
    /// when one tick completes many messages (a relay with many busy clients), every
    /// `configuration.messagesPerWrite` of them go out at once instead, so the peer
    /// starts on them while this loop is still busy. Within a read of this connection
    /// the end of the read sends anyway.
    public func completedMessage() {
        if case .flush = machine.messageCompleted(batch: configuration.messagesPerWrite) { flushOutput() }
    }

    /// Starts a graceful drain: GOAWAY with the last stream we processed. Streams in
    /// flight finish; new ones are refused; the connection closes once none is left.
    /// `debugData` travels in the frame for the peer to read (RFC 9113 §6.8).
    public func goAway(code: HTTP2ErrorCode = .noError, debugData: String = "") {
        guard case .submitGoAway = machine.goAwayRequested() else { return }
        submitGoAway(code: code, debugData: debugData)
    }

    /// Sends GOAWAY and closes the connection right after it is written, without
    /// waiting for the streams in flight (they end with an error on both sides).
    /// Call it outside the connection's own read, as from a task on its event loop.
    public func goAwayAndClose(code: HTTP2ErrorCode = .noError, debugData: String = "") {
        goAway(code: code, debugData: debugData)
        carryOut(machine.closeRequested())
    }

    func submitGoAway(code: HTTP2ErrorCode, debugData: String) {
        guard let session else { return }
        let last = nghttp2_session_get_last_proc_stream_id(session)
        var opaque = Array(debugData.utf8)
        let result = nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code.rawValue, &opaque, opaque.count)
        guard result == 0 else {
            terminate(with: .library(operation: "sending GOAWAY", code: result))
            return
        }
        scheduleSend()
    }
}

/// Connection-level events `HTTP2ConnectionHandler` sends up the pipeline.
public enum HTTP2ConnectionEvent: Sendable, Equatable {
    /// The peer sent GOAWAY; `debugData` is its frame's opaque data as text (often empty).
    case goAwayReceived(code: HTTP2ErrorCode, lastStreamID: Int32, debugData: String)
}

@available(*, unavailable)
extension HTTP2Connection: Sendable {}
