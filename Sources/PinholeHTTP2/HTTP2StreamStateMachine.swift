/// One stream's state, without nghttp2: what has been sent, what the producer has said
/// about the end, what has arrived, the writability last reported, and whether the
/// stream is over. `HTTP2Stream` and `HTTP2Connection` ask it before acting and tell it
/// what happened; each part is an enum, so the combinations are the ones listed here.
struct HTTP2StreamStateMachine: Equatable {
    enum Send: Equatable {
        /// No HEADERS submitted yet.
        case awaitingHeaders
        /// HEADERS submitted with a data provider: nghttp2 pulls DATA from the queue.
        case streaming
        /// The provider found the queue empty: nghttp2 waits for `resume_data`.
        case deferred
        /// END_STREAM is with nghttp2 (on HEADERS, the last DATA, or trailers).
        case finished
    }

    /// What the producer has said about the end of what it sends.
    enum LocalEnd: Equatable {
        case open
        /// The data queued is the last.
        case queued
        /// These trailers follow the data queued, and end the stream.
        case queuedWithTrailers(HTTP2Headers)
        /// RST_STREAM with this code follows the HEADERS and data queued: the peer sees
        /// what was sent, then the reset (a response cut short). A reset submitted at once
        /// would make nghttp2 drop HEADERS it has not written yet.
        case resetAfterQueued(HTTP2ErrorCode)
    }

    enum Receive: Equatable {
        case awaitingHeaders
        /// The message's HEADERS arrived; `headersEndedStream` when they carried
        /// END_STREAM (a message with no body at all).
        case receiving(headersEndedStream: Bool)
        /// END_STREAM arrived.
        case ended(headersEndedStream: Bool)
    }

    /// What this side wants of the rest of the peer's message once its own is complete.
    enum PeerRest: Equatable {
        case wanted
        /// Once this side's END_STREAM has gone out, a peer still sending is asked to stop
        /// with RST_STREAM(NO_ERROR) (RFC 9113 §8.1): an answer that needed no more of the
        /// request (a 413 to an upload), whose rest would only be read and dropped.
        case unwanted
    }

    enum Writability: Equatable {
        case writable
        /// Reported unwritable (past the high watermark); writable again below the low one.
        case unwritable
    }

    enum Lifecycle: Equatable {
        case open
        /// nghttp2 closed the stream (both ends done, or reset), or the connection went.
        case closed
    }

    /// What the data provider tells nghttp2.
    enum DataProvision: Equatable {
        /// Nothing queued yet: wait for `resume_data`.
        case deferUntilResumed
        /// Send this many bytes; more follow.
        case data(Int)
        /// Send this many bytes, and END_STREAM with them.
        case last(Int)
        /// Send this many bytes, then the trailers end the stream.
        case lastBeforeTrailers(Int)
        /// Everything queued has gone: wait, and reset the stream with this code.
        case reset(HTTP2ErrorCode)
    }

    /// What a reset requested with `resetAfterQueued` needs now.
    enum QueuedReset: Equatable {
        /// Nothing of the stream waits to be written (no HEADERS submitted, or the end
        /// already with nghttp2): reset now.
        case resetNow
        /// nghttp2 waits for a resume: resume, and the data provider resets once the queue is empty.
        case resume
        /// The data provider will be asked (after HEADERS, as flow control allows) and resets then.
        case waitForProvider
        /// The stream is over, or its end is already decided.
        case none
    }

    /// What a HEADERS frame received is.
    enum ReceivedHeaders: Equatable {
        /// A 1xx response: not forwarded, the final one follows.
        case informational
        case headers
        case trailers
    }

    private(set) var send: Send = .awaitingHeaders
    private(set) var localEnd: LocalEnd = .open
    private(set) var receive: Receive = .awaitingHeaders
    private(set) var peerRest: PeerRest = .wanted
    private(set) var writability: Writability = .writable
    private(set) var lifecycle: Lifecycle = .open

    var isClosed: Bool { lifecycle == .closed }

    /// Whether the peer's message has ended (END_STREAM arrived).
    var peerMessageEnded: Bool {
        if case .ended = receive { return true }
        return false
    }

    var headersEndedStream: Bool {
        switch receive {
        case .receiving(let ended), .ended(let ended): return ended
        case .awaitingHeaders: return false
        }
    }

    // MARK: Sending

    /// Whether the producer may still queue data or trailers.
    var mayQueue: Bool { lifecycle == .open && localEnd == .open }

    /// Whether HEADERS may be submitted now (once per stream, while it is open).
    var mayStartSending: Bool { lifecycle == .open && send == .awaitingHeaders }

    /// The producer queued data (once `mayQueue` allowed it); `end` marks it the last.
    mutating func dataQueued(end: Bool, outgoingBytes: Int, highWatermark: Int) {
        if end { localEnd = .queued }
        // Not reported: the producer that queued it sees `isWritable` itself.
        if outgoingBytes >= highWatermark { writability = .unwritable }
    }

    /// The producer ends the stream with trailers. Returns false when that is too late.
    mutating func trailersQueued(_ trailers: HTTP2Headers) -> Bool {
        guard mayQueue else { return false }
        localEnd = .queuedWithTrailers(trailers)
        return true
    }

    mutating func headersSubmitted(endStream: Bool) {
        if endStream {
            send = .finished
            localEnd = .queued
        } else {
            send = .streaming
        }
    }

    /// The producer cuts the stream: RST_STREAM with `code` once what it queued is out.
    mutating func resetAfterQueuedRequested(_ code: HTTP2ErrorCode) -> QueuedReset {
        guard lifecycle == .open else { return .none }
        switch send {
        case .awaitingHeaders, .finished:
            return .resetNow
        case .streaming, .deferred:
            guard localEnd == .open else { return .resetNow }
            localEnd = .resetAfterQueued(code)
            return send == .deferred ? .resume : .waitForProvider
        }
    }

    /// nghttp2 asks for the next DATA frame, of at most `maximum` bytes, with `queued` waiting.
    mutating func provideData(maximum: Int, queued: Int) -> DataProvision {
        let count = min(maximum, queued)
        if case .resetAfterQueued(let code) = localEnd {
            if count > 0 { return .data(count) }
            send = .deferred
            return .reset(code)
        }
        guard count == queued, localEnd != .open else {
            if count > 0 { return .data(count) }
            send = .deferred
            return .deferUntilResumed
        }
        send = .finished
        if case .queuedWithTrailers = localEnd { return .lastBeforeTrailers(count) }
        return .last(count)
    }

    /// More was queued: true when nghttp2 waits for a resume and should get one.
    mutating func resumeRequested() -> Bool {
        guard lifecycle == .open, send == .deferred else { return false }
        send = .streaming
        return true
    }

    /// The trailers to submit now that the data before them has gone, if any.
    mutating func takeTrailers() -> HTTP2Headers? {
        guard lifecycle == .open, case .queuedWithTrailers(let trailers) = localEnd else { return nil }
        localEnd = .queued
        return trailers
    }

    /// A DATA frame took bytes from the queue: true when the stream should report itself
    /// writable again.
    mutating func dataTaken(outgoingBytes: Int, lowWatermark: Int) -> Bool {
        guard writability == .unwritable, outgoingBytes <= lowWatermark else { return false }
        writability = .writable
        return true
    }

    /// The producer needs no more of the peer's message (see `PeerRest`).
    mutating func peerRestUnwanted() {
        peerRest = .unwanted
    }

    /// Whether the peer, still sending what is not wanted, is to be asked to stop: asked
    /// once this side's END_STREAM has gone out.
    var stopsPeer: Bool {
        lifecycle == .open && peerRest == .unwanted && !peerMessageEnded
    }

    // MARK: Receiving

    /// A header block arrived; `informational` is asked only of a stream's first.
    mutating func headersReceived(informational: @autoclosure () -> Bool, endStream: Bool) -> ReceivedHeaders {
        guard case .awaitingHeaders = receive else { return .trailers }
        if informational() { return .informational }
        receive = .receiving(headersEndedStream: endStream)
        return .headers
    }

    /// END_STREAM arrived: true the first time (`.end` is delivered once).
    mutating func endReceived() -> Bool {
        switch receive {
        case .awaitingHeaders:
            receive = .ended(headersEndedStream: false)
            return true
        case .receiving(let headersEndedStream):
            receive = .ended(headersEndedStream: headersEndedStream)
            return true
        case .ended:
            return false
        }
    }

    mutating func closed() {
        lifecycle = .closed
    }
}
