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
    // The events are methods in extensions, a file per concern (reading requests,
    // backpressure, timers, the response): what they change cannot be `private`. Only the
    // machine's own methods change them.
    var state = State.initialized
    var idleness: ConnectionIdleness
    let headTimeout: TimeAmount
    let requestTimeout: TimeAmount?
    /// `--stall-timeout`: how long the client may be the side not moving (see
    /// `stallCheckDue`); nil for never.
    let stallTimeout: TimeAmount?
    /// When the request body last moved: the exchange started, bytes arrived, or reads
    /// resumed after the upstream held them.
    var uploadMovedAt = NIODeadline.uptimeNanoseconds(0)
    /// Since when the client has not taken what we write (the channel is not writable);
    /// nil while it is.
    var downloadBlockedSince: NIODeadline?
    /// Whether the stall timer is scheduled. It outlives an exchange: one left from an
    /// earlier request looks no later than a new one would (`stallCheckDue` pushes an
    /// early look to what remains), so a new exchange schedules none while it is.
    var stallTimer = StallTimer.idle
    var requestsStarted = 0
    /// The wait in line of the request queued now (see `exchangeQueued`).
    var queueWait = TimeAmount.zero
    /// Whether a `read` was held back, to be issued once reading may go on.
    var readHeld = false
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

    // MARK: Flushing

    /// Head, body and end usually arrive in the same event-loop tick; flushing once at
    /// the end of it sends them in one write. True when no flush was scheduled yet.
    mutating func takeFlush() -> Bool {
        if flushScheduled { return false }
        flushScheduled = true
        return true
    }

    /// The flush due at the end of the tick runs now.
    mutating func flushDue() -> Action {
        flushScheduled = false
        return .flush
    }

    // MARK: Helpers

    /// Ends the exchange in flight with `error`: an error answer (recorded if `record`)
    /// if no response has started, else a cut, so that the client sees it incomplete (and
    /// the log that it was cut short; a switched protocol simply ends).
    mutating func fail(_ error: ExchangeError, cancelUpstream: Bool, record: Bool = true) -> Action {
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
}
