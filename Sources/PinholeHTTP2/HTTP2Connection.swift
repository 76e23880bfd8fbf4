internal import CNghttp2
import NIOCore

public enum HTTP2Role: Sendable {
    case client, server
}

/// One HTTP/2 connection driven by an nghttp2 session. Confined to its event loop;
/// obtained from `HTTP2ConnectionHandler.connection`.
///
/// Reentrancy is handled in one place. nghttp2 calls back only from inside
/// `nghttp2_session_mem_recv` and `nghttp2_session_send`; while `inSession` is set,
/// those callbacks merely record `SessionEvent`s, and anything that would touch the
/// session is appended to `deferredOperations`. Both queues are drained after the
/// call returns, so delegates always run outside nghttp2 and may call anything.
public final class HTTP2Connection {
    public let role: HTTP2Role
    public let configuration: HTTP2Configuration
    public let eventLoop: any EventLoop

    /// Called (outside nghttp2) for each stream the peer opens; returns its delegate.
    let streamAcceptor: ((HTTP2Stream) -> any HTTP2StreamDelegate)?

    var session: OpaquePointer?
    var context: ChannelHandlerContext?
    var streams: [Int32: HTTP2Stream] = [:]

    var inSession = false
    var inChannelRead = false
    var deferredOperations: [Operation] = []
    var events: [SessionEvent] = []
    private var spareOperations: [Operation] = []
    private var spareEvents: [SessionEvent] = []
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
    var needsSend = false
    var sendScheduled = false
    var outboundFull = false
    /// Messages completed (see `completedMessage`) since the last write to the channel.
    var completedSinceWrite = 0
    /// The last reason nghttp2 gave for refusing something the peer sent.
    var lastProtocolComplaint: String?
    var terminalError: HTTP2Error?

    var pendingPings: [UInt64: (sent: NIODeadline, promise: EventLoopPromise<TimeAmount>)] = [:]
    var nextPingID: UInt64 = 0
    public internal(set) var goAwayReceived: (code: HTTP2ErrorCode, lastStreamID: Int32)?
    public internal(set) var goAwaySent = false
    var isClosed = false
    /// Set while `terminate` sends its last frames.
    var isTerminating = false
    /// Set while `drainAfterSessionCall` delivers events.
    private var isDraining = false

    /// Cap on one write to the channel; a larger backlog waits for writability. A DATA
    /// frame that would cross it waits for the next write, unless it is the write's
    /// first (one frame is at most 64 KiB), so the TLS record buffer for a write stays
    /// below malloc's default mmap threshold (128 KiB).
    static let maximumWriteSize = 64 * 1024
    /// DATA payload pieces at least this long are written as slices, not copied into
    /// `outbound`. Each slice starts a new buffer in the write, and under TLS the bytes
    /// before it (a frame header at least) end in a short record of their own. Between
    /// relay and agent (64 KiB frames) that keeps the record count about as it was: a
    /// 64 KiB frame was already four full records and a short one. With a peer that keeps
    /// 16 KiB frames it is up to 8 records per 64 KiB instead of 5. A 32 KiB threshold
    /// would avoid that, but measured no better between relay and agent (5 alternating
    /// rounds: download CPU per 100 MiB relay 90 -> 130 ms, upload 122 -> 115 ms).
    static let sliceThreshold = 16 * 1024
    /// Event and operation queues keep at most this much capacity between calls.
    static let keptQueueCapacity = 16

    enum Operation {
        case openStream(HTTP2Stream, HTTP2Headers, endStream: Bool)
        case sendHeaders(HTTP2Stream, HTTP2Headers, endStream: Bool)
        case resumeData(HTTP2Stream)
        case submitTrailers(HTTP2Stream)
        case reset(HTTP2Stream, HTTP2ErrorCode)
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
        _ = nghttp2_session_set_next_stream_id(session, id)
    }

    // MARK: Public operations

    /// Opens a stream with request headers (client role). With `endStream`, the request has no body.
    public func openStream(
        headers: HTTP2Headers, endStream: Bool = false, delegate: any HTTP2StreamDelegate
    ) throws(HTTP2Error) -> HTTP2Stream {
        guard role == .client else { throw .misuse("only the client role opens streams") }
        if let terminalError { throw terminalError }
        if isClosed { throw .connectionClosed }
        if let goAwayReceived { throw .goAway(code: goAwayReceived.code, lastStreamID: goAwayReceived.lastStreamID) }
        if goAwaySent { throw .connectionDraining }
        let stream = HTTP2Stream(id: 0, connection: self, delegate: delegate)
        perform(.openStream(stream, headers, endStream: endStream))
        if let error = stream.resetReason { throw error }
        return stream
    }

    /// Sends a PING; the future carries the round-trip time.
    public func ping() -> EventLoopFuture<TimeAmount> {
        let promise = eventLoop.makePromise(of: TimeAmount.self)
        guard let session, !isClosed else {
            promise.fail(terminalError ?? .connectionClosed)
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
        completedSinceWrite += 1
        guard completedSinceWrite >= configuration.messagesPerWrite, needsSend, !inChannelRead, !inSession else {
            return
        }
        flushOutput()
    }

    /// Starts a graceful drain: GOAWAY with the last stream we processed. Streams in
    /// flight finish; new ones are refused; the connection closes once none is left.
    /// `debugData` travels in the frame for the peer to read (RFC 9113 §6.8).
    public func goAway(code: HTTP2ErrorCode = .noError, debugData: String = "") {
        guard let session, !goAwaySent, !isClosed else { return }
        goAwaySent = true
        let last = nghttp2_session_get_last_proc_stream_id(session)
        var opaque = Array(debugData.utf8)
        let result = nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code.rawValue, &opaque, opaque.count)
        if result != 0 { terminalError = .library(operation: "sending GOAWAY", code: result) }
        scheduleSend()
    }

    /// Sends GOAWAY and closes the connection right after it is written, without
    /// waiting for the streams in flight (they end with an error on both sides).
    /// Call it outside the connection's own read, as from a task on its event loop.
    public func goAwayAndClose(code: HTTP2ErrorCode = .noError, debugData: String = "") {
        goAway(code: code, debugData: debugData)
        sendFinalFrames()
        context?.close(promise: nil)
    }

    // MARK: Running operations outside nghttp2

    func perform(_ operation: Operation) {
        // Inside nghttp2, or before the session exists (streams opened while the channel
        // is still connecting): run it later.
        if inSession || (session == nil && !isClosed) {
            deferredOperations.append(operation)
            return
        }
        execute(operation)
        scheduleSend()
    }

    private func execute(_ operation: Operation) {
        guard let session, !isClosed else {
            if case .openStream(let stream, _, _) = operation {
                stream.resetReason = terminalError ?? .connectionClosed
            }
            return
        }
        switch operation {
        case .openStream(let stream, let headers, let endStream):
            let id = submit(endStream: endStream) { provider in
                headers.withNameValuePairs { nghttp2_submit_request(session, nil, $0, $1, provider, nil) }
            }
            guard id > 0 else {
                stream.resetReason = .library(operation: "opening a stream", code: id)
                if id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE.rawValue {
                    // All 2^30 client stream ids are spent: this connection can carry no
                    // more requests. Drain it, so the streams in flight finish and the
                    // peer (an agent) reconnects, rather than refuse every request forever.
                    goAway(code: .noError, debugData: "stream ids used up")
                }
                return
            }
            stream.id = id
            stream.headersSent = true
            stream.localEndQueued = endStream
            streams[id] = stream
        case .sendHeaders(let stream, let headers, let endStream):
            guard !stream.isClosed, !stream.headersSent else { return }
            let result = submit(endStream: endStream) { provider in
                headers.withNameValuePairs { nghttp2_submit_response(session, stream.id, $0, $1, provider) }
            }
            guard result == 0 else {
                perform(.reset(stream, .internalError))
                return
            }
            stream.headersSent = true
            if endStream { stream.localEndQueued = true }
        case .resumeData(let stream):
            guard stream.dataDeferred, !stream.isClosed else { return }
            stream.dataDeferred = false
            _ = nghttp2_session_resume_data(session, stream.id)
        case .submitTrailers(let stream):
            guard let trailers = stream.pendingTrailers, !stream.isClosed else { return }
            stream.pendingTrailers = nil
            _ = trailers.withNameValuePairs { nghttp2_submit_trailer(session, stream.id, $0, $1) }
        case .reset(let stream, let code):
            guard !stream.isClosed, stream.id > 0 else { return }
            if stream.resetReason == nil {
                stream.resetReason = .streamResetLocally(streamID: stream.id, code: code, reason: "reset by this side")
            }
            _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, code.rawValue)
        case .consume(let stream, let count):
            guard !stream.isClosed else { return }
            _ = nghttp2_session_consume_stream(session, stream.id, count)
        }
    }

    /// Calls `body` with a data provider, or nil when the stream ends with its headers.
    private func submit(endStream: Bool, _ body: (UnsafePointer<nghttp2_data_provider>?) -> Int32) -> Int32 {
        if endStream { return body(nil) }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readStreamData)
        return withUnsafePointer(to: &provider) { body($0) }
    }

    /// Delivers what the last nghttp2 call recorded and runs what it deferred,
    /// until both are empty (a delegate may cause more of either).
    func drainAfterSessionCall() {
        // A delegate that reaches a session call again (a flush, say) must not start a
        // second drain: it would swap the queue being worked through back in and deliver
        // its events twice. This loop runs until both queues are empty, so it picks up
        // whatever the nested call recorded.
        guard !isDraining else { return }
        isDraining = true
        defer { isDraining = false }
        while !deferredOperations.isEmpty || !events.isEmpty {
            // Swap in the spare queues, so the ones being worked through are not shared
            // while new work is appended (emptying a shared array would reallocate it).
            swap(&deferredOperations, &spareOperations)
            for operation in spareOperations { execute(operation) }
            if !spareOperations.isEmpty { needsSend = true }
            spareOperations.removeAll(keepingCapacity: spareOperations.capacity <= Self.keptQueueCapacity)
            swap(&events, &spareEvents)
            for event in spareEvents { deliver(event) }
            // A burst must not leave a large array behind on an idle connection.
            spareEvents.removeAll(keepingCapacity: spareEvents.capacity <= Self.keptQueueCapacity)
        }
    }

    private func deliver(_ event: SessionEvent) {
        switch event {
        case .streamOpened(let stream):
            if stream.delegate == nil, let streamAcceptor { stream.delegate = streamAcceptor(stream) }
        case .streamPart(let stream, let part):
            stream.delegate?.stream(stream, received: part)
        case .streamClosed(let stream, let error):
            let delegate = stream.delegate
            stream.delegate = nil  // breaks the stream <-> delegate cycle
            delegate?.streamClosed(stream, error: error)
        case .streamWritable(let stream):
            stream.delegate?.streamWritabilityChanged(stream)
        case .goAway(let code, let lastStreamID, let debugData):
            context?.fireUserInboundEventTriggered(
                HTTP2ConnectionEvent.goAwayReceived(code: code, lastStreamID: lastStreamID, debugData: debugData))
        case .pingAcknowledged(let id):
            if let (sent, promise) = pendingPings.removeValue(forKey: id) {
                promise.succeed(.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - sent.uptimeNanoseconds)))
            }
        }
    }
}

/// Connection-level events `HTTP2ConnectionHandler` sends up the pipeline.
public enum HTTP2ConnectionEvent: Sendable, Equatable {
    /// The peer sent GOAWAY; `debugData` is its frame's opaque data as text (often empty).
    case goAwayReceived(code: HTTP2ErrorCode, lastStreamID: Int32, debugData: String)
}

@available(*, unavailable)
extension HTTP2Connection: Sendable {}
