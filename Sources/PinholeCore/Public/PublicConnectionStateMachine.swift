import NIOCore
import NIOHTTP1

/// The lifecycle of one public HTTP/1.1 connection, as a value. `PublicRequestHandler`
/// tells it what happened (bytes read, a request parsed, an answer arriving from the
/// upstream, a timer firing, the channel ending) and carries out the `Action` each
/// method returns; the machine decides, the handler does the I/O.
///
/// It holds no channel and reads no clock: times come in as `now` (as autoclosures
/// where most calls need none), and what only the handler can see comes in as
/// arguments: whether the upstream takes more body, how many bytes wait unparsed.
///
/// One request is served at a time. Pipelined requests wait unparsed behind the one in
/// flight once it has been read to its end (the pipelining hold); past
/// `maximumPipelinedBytes` of them, reading stops until the response is out.
struct PublicConnectionStateMachine {
    private(set) var state = State.initialized
    private var idleness: ConnectionIdleness
    private let headTimeout: TimeAmount
    private let requestTimeout: TimeAmount?
    /// `--stall-timeout`: how long the client may be the side not moving (see
    /// `stallCheckDue`); nil for never.
    private let stallTimeout: TimeAmount?
    /// When the request body last moved: the exchange started, bytes arrived, or reads
    /// resumed after the upstream held them.
    private var uploadMovedAt = NIODeadline.uptimeNanoseconds(0)
    /// Since when the client has not taken what we write (the channel is not writable);
    /// nil while it is.
    private var downloadBlockedSince: NIODeadline?
    private var requestsStarted = 0
    /// The wait in line of the request queued now (see `exchangeQueued`).
    private var queueWait = TimeAmount.zero
    /// Whether a `read` was held back, to be issued once reading may go on.
    private var readHeld = false
    /// Whether a flush is due at the end of this event-loop tick.
    private var flushScheduled = false

    /// Pipelined bytes kept while a response goes out; past this, reading stops.
    static let maximumPipelinedBytes = 64 * 1024

    init(
        headTimeout: TimeAmount, idleTimeout: TimeAmount?, requestTimeout: TimeAmount?,
        stallTimeout: TimeAmount? = nil
    ) {
        self.headTimeout = headTimeout
        self.requestTimeout = requestTimeout
        self.stallTimeout = stallTimeout
        self.idleness = ConnectionIdleness(firstRequestLimit: headTimeout, limit: idleTimeout)
    }

    // MARK: The channel

    /// The channel is active (told by `handlerAdded` or `channelActive`, whichever sees
    /// it first): the idle clock starts.
    mutating func channelActive(now: NIODeadline) -> Action {
        guard case .initialized = state else { return .none }
        state = .idle
        idleness.note(busy: false, now: now)
        return .schedule(.idle, in: idleness.checkInterval)
    }

    /// The channel has ended. A request in flight is abandoned (and recorded so); a
    /// switched protocol ends this way, so it is recorded now.
    mutating func channelInactive() -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            return .tearDown(cancelUpstream: true, record: .abandoned(status: exchange.status))
        case .switched(let exchange):
            return .tearDown(cancelUpstream: true, record: .complete(status: exchange.status))
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .tearDown(cancelUpstream: false, record: nil)
        }
    }

    /// An error reached the handler: the connection closes, and `channelInactive` tears down.
    func errorCaught() -> Action {
        .close
    }

    /// The client ended its side. Only a switched protocol passes that on: its app may
    /// still answer.
    func inputClosed() -> Action {
        guard case .switched = state else { return .none }
        return .sendEnd(trailers: nil)
    }

    // MARK: Reading requests

    /// Bytes arrived from the client.
    mutating func bytesReceived(_ bytes: ByteBuffer, now: @autoclosure () -> NIODeadline) -> Action {
        switch state {
        case .awaitingResponse, .streamingResponse:
            if stallTimeout != nil { uploadMovedAt = now() }
            return .parse(bytes)
        case .initialized, .idle, .headArriving:
            return .parse(bytes)
        case .switched:
            return .passThrough(bytes)
        case .closing(.lingering(let linger)):
            return .discard(closeIn: linger.closeDelay(now: now()))
        case .closing(.answering), .closed:
            // Read and dropped: left unread, they would make the close a reset, which
            // can destroy the answer before the client reads it.
            return .discard(closeIn: nil)
        }
    }

    /// Whether the handler may parse what it holds now: not behind a request read to its
    /// end (the pipelining hold), nor after a switch or an error answer.
    var isReadyForRequestBytes: Bool {
        switch state {
        case .initialized, .idle, .headArriving:
            return true
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            return exchange.request == .bodyArriving && exchange.waitingFor == nil
        case .switched, .closing, .closed:
            return false
        }
    }

    /// A request head arrived and was read into `head`, to be forwarded.
    mutating func requestHeadReceived(
        _ head: ProxyRequestHead, version: HTTPVersion, keepAlive: Bool, expectsContinue: Bool
    ) -> Action {
        guard state.isBetweenRequests else { return .none }
        requestsStarted += 1
        idleness.requestStarted()
        state = .awaitingResponse(
            Exchange(
                number: requestsStarted, version: version, keepAlive: keepAlive, expectsContinue: expectsContinue,
                upgradeRequested: head.upgrade != nil))
        return .startExchange(head, number: requestsStarted)
    }

    /// A request head that cannot be forwarded (no Host, say): answered, and the
    /// connection closes after the answer.
    mutating func requestRefused(_ error: ExchangeError, version: HTTPVersion) -> Action {
        guard state.isBetweenRequests else { return .none }
        state = .closing(.answering)
        return .answerAndClose(error, version: version, record: nil, cancelUpstream: false)
    }

    /// The router or the target refused exchange `number` at once (no tunnel, no agent,
    /// a client not allowed, a cap): answered, and recorded as HTTP/2's refusals are.
    mutating func exchangeRefused(number: Int, _ error: ExchangeError) -> Action {
        guard state.exchangeInFlight?.number == number else { return .none }
        return fail(error, cancelUpstream: false)
    }

    /// Request `number` met a cap on requests in flight (`limit`) and waits in line for
    /// a place, for at most `wait`: its body is not read meanwhile.
    mutating func exchangeQueued(number: Int, limit: InFlightLimits.Limit, wait: TimeAmount) -> Action {
        guard case .awaitingResponse(var exchange) = state, exchange.number == number else { return .none }
        exchange.waitingFor = limit
        state = .awaitingResponse(exchange)
        queueWait = wait
        return .schedule(.queue, in: wait)
    }

    /// Request `number` got its place: the handler starts its exchange next.
    mutating func exchangeAdmitted(number: Int) -> Action {
        guard case .awaitingResponse(var exchange) = state, exchange.number == number, exchange.waitingFor != nil
        else { return .none }
        exchange.waitingFor = nil
        state = .awaitingResponse(exchange)
        return .cancel(.queue)
    }

    /// Exchange `number` has its upstream. Unless it ended meanwhile (the target may
    /// answer within the call that starts it), the client may now send its body, and the
    /// wait for the answer is timed if so configured.
    mutating func exchangeStarted(number: Int, now: @autoclosure () -> NIODeadline = .now()) -> Action {
        switch state {
        case .awaitingResponse(let exchange) where exchange.number == number:
            if stallTimeout != nil { uploadMovedAt = now() }
            return .exchangeUnderWay(
                sendContinue: exchange.sendsContinue, requestTimeout: requestTimeout, stallCheckIn: stallTimeout)
        case .streamingResponse(let exchange) where exchange.number == number,
            .switched(let exchange) where exchange.number == number:
            if stallTimeout != nil { uploadMovedAt = now() }
            return .exchangeUnderWay(
                sendContinue: exchange.sendsContinue, requestTimeout: nil, stallCheckIn: stallTimeout)
        default:
            return .none
        }
    }

    /// A piece of the request body was read.
    func requestBodyReceived(_ body: ByteBuffer) -> Action {
        guard let exchange = state.exchangeInFlight, exchange.request == .bodyArriving else { return .none }
        return .sendBody(body)
    }

    /// The request was read to its end. A handshake's request stays open upstream: if
    /// the app switches protocols, the client's bytes follow on it.
    mutating func requestEndReceived(trailers: HTTPHeaders?) -> Action {
        let exchange: Exchange
        switch state {
        case .awaitingResponse(var awaiting) where awaiting.request == .bodyArriving:
            awaiting.request = .ended
            state = .awaitingResponse(awaiting)
            exchange = awaiting
        case .streamingResponse(var streaming) where streaming.request == .bodyArriving:
            streaming.request = .ended
            state = .streamingResponse(streaming)
            exchange = streaming
        default:
            return .none
        }
        return exchange.upgradeRequested ? .none : .sendEnd(trailers: trailers)
    }

    /// What the client sent is not HTTP, or frames its body ambiguously.
    mutating func requestMalformed(_ error: ExchangeError) -> Action {
        if state.exchangeInFlight != nil {
            return fail(error, cancelUpstream: true)
        }
        guard state.isBetweenRequests else { return .none }
        state = .closing(.answering)
        return .answerAndClose(error, version: .http1_1, record: nil, cancelUpstream: false)
    }

    /// The handler parsed what it could. `headBytesPending`: part of the next head is
    /// there, and the rest is awaited. The head timer runs only then (not while a
    /// pipelined head waits for the response before it: that wait is ours), and the
    /// connection counts as idle when nothing is arriving or in flight.
    mutating func parsingPaused(headBytesPending: Bool, now: @autoclosure () -> NIODeadline) -> Action {
        switch state {
        case .initialized, .idle, .headArriving:
            guard headBytesPending else {
                if state == .headArriving { state = .idle }
                idleness.note(busy: false, now: now())
                return .cancel(.head)
            }
            idleness.note(busy: true, now: now())
            if state == .headArriving { return .none }
            state = .headArriving
            return .schedule(.head, in: headTimeout)
        case .awaitingResponse, .streamingResponse, .switched:
            idleness.note(busy: true, now: now())
            return .cancel(.head)
        case .closing, .closed:
            idleness.note(busy: false, now: now())
            return .cancel(.head)
        }
    }

    // MARK: Backpressure on the request body

    /// The channel wants to read. It waits while the upstream cannot take more body, or
    /// while pipelined bytes pile up behind a response; a closing connection reads on
    /// (and drops what it reads).
    mutating func readRequested(upstreamWritable: Bool, bufferedBytes: Int) -> Action {
        if mustHoldReads(upstreamWritable: upstreamWritable, bufferedBytes: bufferedBytes) {
            readHeld = true
            return .none
        }
        return .read
    }

    /// Something changed that may let a held read go: the upstream's writability, a
    /// response's end, a switch, a close, a place in line.
    mutating func readMayResume(
        upstreamWritable: Bool, bufferedBytes: Int, now: @autoclosure () -> NIODeadline = .now()
    ) -> Action {
        guard readHeld, !mustHoldReads(upstreamWritable: upstreamWritable, bufferedBytes: bufferedBytes) else {
            return .none
        }
        readHeld = false
        // The upload waited on the upstream, not on the client: its clock starts again.
        if stallTimeout != nil { uploadMovedAt = now() }
        return .read
    }

    /// The channel's writability changed: while it is not writable, the client is not
    /// taking the answer as fast as it comes.
    mutating func downstreamWritabilityChanged(writable: Bool, now: @autoclosure () -> NIODeadline) {
        guard stallTimeout != nil else { return }
        if writable {
            downloadBlockedSince = nil
        } else if downloadBlockedSince == nil {
            downloadBlockedSince = now()
        }
    }

    private func mustHoldReads(upstreamWritable: Bool, bufferedBytes: Int) -> Bool {
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            return !upstreamWritable || exchange.waitingFor != nil
                || (exchange.request == .ended && bufferedBytes >= Self.maximumPipelinedBytes)
        case .switched:
            return !upstreamWritable
        case .initialized, .idle, .headArriving, .closing, .closed:
            return false
        }
    }

    // MARK: Timers

    /// A timer the machine scheduled fired. Timers that no longer apply do nothing.
    mutating func timerFired(
        _ timer: Timer, now: NIODeadline, unsentBytes: @autoclosure () -> Int
    ) -> Action {
        switch timer {
        case .head:
            guard state == .headArriving else { return .none }
            state = .closing(.answering)
            let seconds = Int(headTimeout.nanoseconds / 1_000_000_000)
            return .answerAndClose(
                .headTimedOut(seconds: seconds), version: .http1_1, record: nil, cancelUpstream: false)
        case .request:
            guard case .awaitingResponse = state, let requestTimeout else { return .none }
            return fail(.timedOut(after: requestTimeout), cancelUpstream: true)
        case .linger:
            guard case .closing(.lingering) = state else { return .none }
            return .close
        case .idle:
            return idleCheckDue(now: now, unsentBytes: unsentBytes())
        case .queue:
            guard case .awaitingResponse(let exchange) = state, let limit = exchange.waitingFor else { return .none }
            return fail(.tooManyInFlight(limit, waited: queueWait), cancelUpstream: false)
        case .stall:
            return stallCheckDue(now: now)
        }
    }

    /// `--stall-timeout`: the client is cut off once it has been, for that long, the
    /// side not moving: a request body it does not send while we would read it, or an
    /// answer it does not read (the channel not writable). Waits on the other side stop
    /// the clock: a body held back because the app does not read it (a breakpoint), an
    /// answer the app has not sent. A WebSocket's quiet client is not stalled; one that
    /// stops reading is.
    private mutating func stallCheckDue(now: NIODeadline) -> Action {
        guard let stallTimeout else { return .none }
        var stalledSince: NIODeadline?
        var reading = false
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            if exchange.request == .bodyArriving, !exchange.upgradeRequested, exchange.waitingFor == nil, !readHeld {
                stalledSince = uploadMovedAt
            }
        case .switched:
            break
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none  // no exchange: the next one schedules the timer again
        }
        switch state {
        case .streamingResponse, .switched:
            if let blocked = downloadBlockedSince, stalledSince.map({ blocked < $0 }) ?? true {
                stalledSince = blocked
                reading = true
            }
        default:
            break
        }
        guard let stalledSince else { return .schedule(.stall, in: stallTimeout) }
        let remaining = stalledSince + stallTimeout - now
        guard remaining <= .zero else { return .schedule(.stall, in: remaining) }
        let seconds = Int(stallTimeout.nanoseconds / 1_000_000_000)
        return fail(.clientStalled(seconds: seconds, reading: reading), cancelUpstream: true)
    }

    /// The idle clock's look (see `ConnectionIdleness`).
    private mutating func idleCheckDue(now: NIODeadline, unsentBytes: @autoclosure () -> Int) -> Action {
        switch state {
        case .initialized, .closing, .closed:
            return .none
        case .idle, .headArriving, .awaitingResponse, .streamingResponse, .switched:
            break
        }
        switch idleness.verdict(now: now) {
        case .unlimited:
            return .none
        case .lookAgain(let delay):
            return .schedule(.idle, in: delay)
        case .expired where unsentBytes() > 0:
            // The end of the last answer still waits for a reader that paused: not idle
            // yet. (What the kernel has queued survives a close; what NIO holds would not.)
            idleness.restart(now: now)
            return .schedule(.idle, in: idleness.checkInterval)
        case .expired:
            // Nothing is in flight, unread or unsent, so this is a plain close (FIN), as
            // RFC 9112 §9.5 allows. A client may send a request just then and see the
            // connection end: hence the long default idle timeout.
            return .close
        }
    }

    // MARK: The response, as the upstream sends it

    /// The response head arrived. `hasBody`: whether a body may follow it (see
    /// `ProxyResponseHead.hasBody(for:)`).
    mutating func responseHeadReceived(_ head: ProxyResponseHead, hasBody: Bool) -> Action {
        guard case .awaitingResponse(var exchange) = state else { return .none }
        exchange.status = Int(head.status.code)
        // An HTTP/1.0 client cannot read chunked bodies: without a length, the end of
        // the connection has to mark the end of the body.
        if exchange.version.minor == 0, hasBody, !head.headers.contains(name: "content-length") {
            exchange.keepAlive = false
        }
        let switches = head.status == .switchingProtocols
        if switches, !exchange.upgradeRequested {
            return fail(.protocolViolation("a switch of protocols that nobody asked for"), cancelUpstream: true)
        }
        if exchange.upgradeRequested {
            // The connection ends with this exchange: its client meant to leave HTTP.
            exchange.keepAlive = false
            if switches {
                state = .switched(exchange)
                return .switchProtocols(head, scheduleFlush: takeFlush())
            }
        }
        state = .streamingResponse(exchange)
        // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told.
        let connection = !exchange.keepAlive ? "close" : (exchange.version.minor == 0 ? "keep-alive" : nil)
        return .writeResponseHead(
            head, version: exchange.version, hasBody: hasBody, connection: connection,
            endRequest: exchange.upgradeRequested, scheduleFlush: takeFlush())
    }

    /// A piece of the response body arrived. (A piece that was on its way when the
    /// exchange failed goes nowhere.)
    mutating func responseBodyReceived(_ body: ByteBuffer) -> Action {
        switch state {
        case .awaitingResponse, .streamingResponse, .switched:
            return .writeResponseBody(body, scheduleFlush: takeFlush())
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none
        }
    }

    /// The response is complete. The connection carries the next request only if the
    /// exchange keeps it alive and its request was read to its end.
    mutating func responseEndReceived(trailers: HTTPHeaders?) -> Action {
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange), .switched(let exchange):
            if exchange.keepAlive, exchange.request == .ended {
                state = .idle
                return .finishResponse(trailers: trailers, status: exchange.status, then: .nextRequest)
            }
            state = .closing(.answering)
            return .finishResponse(trailers: trailers, status: exchange.status, then: .closeAfterAnswer)
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none
        }
    }

    /// The upstream failed. Before the response head, the client gets an error answer;
    /// after it, the response can only be cut.
    mutating func exchangeFailed(_ error: ExchangeError) -> Action {
        fail(error, cancelUpstream: false)
    }

    /// The flush due at the end of the tick runs now.
    mutating func flushDue() -> Action {
        flushScheduled = false
        return .flush
    }

    /// A closing connection's last answer is written: our side ends, and the lingering
    /// begins.
    mutating func answerWritten(now: NIODeadline) -> Action {
        guard state == .closing(.answering) else { return .none }
        let linger = LingeringClose(answerWrittenAt: now)
        state = .closing(.lingering(linger))
        return .endOutputAndLinger(closeIn: linger.closeDelay(now: now))
    }

    // MARK: Helpers

    /// Ends the exchange in flight with `error`: an error answer (recorded if `record`)
    /// if no response has started, else a cut, so that the client sees it incomplete (and
    /// the log that it was cut short; a switched protocol simply ends).
    private mutating func fail(_ error: ExchangeError, cancelUpstream: Bool, record: Bool = true) -> Action {
        switch state {
        case .awaitingResponse(let exchange):
            state = .closing(.answering)
            let status = record ? Int(error.status.code) : nil
            return .answerAndClose(error, version: exchange.version, record: status, cancelUpstream: cancelUpstream)
        case .streamingResponse(let exchange):
            state = .closed
            return .cut(cancelUpstream: cancelUpstream, record: .cutShort(status: exchange.status, error: error))
        case .switched(let exchange):
            state = .closed
            return .cut(cancelUpstream: cancelUpstream, record: .complete(status: exchange.status))
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none
        }
    }

    /// Head, body and end usually arrive in the same event-loop tick; flushing once at
    /// the end of it sends them in one write. True when no flush was scheduled yet.
    private mutating func takeFlush() -> Bool {
        if flushScheduled { return false }
        flushScheduled = true
        return true
    }
}
