import NIOCore
import NIOHTTP1

/// The lifecycle of one connection to the target, as a value. Each method takes
/// something that happened (to the channel, from the request's downstream, or from the
/// response parser) and returns what `TargetConnection`, the ChannelHandler, must do.
/// The handler keeps the bytes (the request's head, body held while opening, the
/// parser's input); whether and when they move is decided here.
///
/// A connection opens for one request, or is taken idle from the pool; it carries one
/// exchange at a time and goes back to the pool when the response ends with the
/// request complete and the target willing, else it closes.
struct TargetConnectionStateMachine {
    /// Before a connection is open, this much request body is held; then the exchange
    /// reports itself unwritable.
    static let heldBodyLimit = 64 * 1024

    private(set) var state: State
    /// A flush is scheduled for the end of the tick. The connection's, not the
    /// exchange's: the task may run after its exchange has ended.
    private(set) var flushScheduled = false

    /// A connection being opened for `request`. `ended`: its end has already come (a
    /// request sent again after a pooled connection proved dead).
    init(opening request: Request, ended: Bool = false) {
        state = .opening(Opening(request: request, ended: ended))
    }

    var isIdle: Bool { state == .idle }
    var isClosed: Bool { state == .closed }

    /// Whether the exchange's downstream may send more body before the connection opens.
    var mayHoldMore: Bool {
        guard case .opening(let opening) = state else { return true }
        return opening.heldBytes < Self.heldBodyLimit
    }

    // MARK: Opening

    mutating func connected() -> Action {
        switch state {
        case .opening(let opening):
            return begin(opening.request, reused: false, ended: opening.ended)
        case .openingUnwanted:
            state = .idle
            return .joinPool
        case .idle, .busy, .closed:
            return .none
        }
    }

    mutating func connectFailed(reason: String) -> Action {
        switch state {
        case .opening:
            state = .closed
            return .fail(.unreachable(reason: reason), close: false)
        case .openingUnwanted:
            state = .closed
            return .none
        case .idle, .busy, .closed:
            return .none
        }
    }

    /// A request for a connection taken from the pool.
    mutating func start(_ request: Request) -> Action {
        switch state {
        case .idle:
            return begin(request, reused: true, ended: false)
        case .closed:
            return .fail(.unreachable(reason: "the connection closed"), close: false)
        case .opening, .openingUnwanted, .busy:
            preconditionFailure("a request for a connection that is not idle: \(state)")
        }
    }

    /// `reused`: taken from the pool, so the request may go again should the connection
    /// prove dead. A fresh connection (a retry's, too) gets no second chance.
    private mutating func begin(_ request: Request, reused: Bool, ended: Bool) -> Action {
        // Bodiless: its head goes now, and the end, already on its way, flushes it.
        let writeHead = !request.mayHaveBody
        state = .busy(
            Exchange(
                request: request, sending: writeHead ? .headSent : .headHeld, reused: reused,
                keepAlive: !request.asksUpgrade))
        let scheduleFlush = !writeHead && !ended && !flushScheduled
        if scheduleFlush { flushScheduled = true }
        return .startRequest(writeHead: writeHead, replayEnd: ended, scheduleFlush: scheduleFlush)
    }

    // MARK: The request, from the downstream

    mutating func requestBody(_ body: ByteBuffer) -> Action {
        switch state {
        case .opening(var opening):
            opening.heldBytes += body.readableBytes
            state = .opening(opening)
            return .holdBody(body)
        case .busy(var exchange):
            guard exchange.sending != .ended else { return .none }
            let writeHead = exchange.sending == .headHeld
            exchange.sending = .headSent
            exchange.bodySent = true
            state = .busy(exchange)
            let scheduleFlush = !flushScheduled
            flushScheduled = true
            return .writeBody(body, writeHead: writeHead, scheduleFlush: scheduleFlush)
        case .openingUnwanted, .idle, .closed:
            return .none
        }
    }

    mutating func requestEnd() -> Action {
        switch state {
        case .opening(var opening):
            opening.ended = true
            state = .opening(opening)
            return .none
        case .busy(var exchange):
            guard exchange.sending != .ended else { return .none }
            let writeHead = exchange.sending == .headHeld
            exchange.sending = .ended
            state = .busy(exchange)
            return .writeEnd(writeHead: writeHead, closeOutput: exchange.receiving == .switched)
        case .openingUnwanted, .idle, .closed:
            return .none
        }
    }

    /// The task scheduled by an earlier action ran.
    mutating func flushDue() -> Action {
        flushScheduled = false
        switch state {
        case .busy(var exchange):
            // Still no end and no body: one may follow, so the head announces it.
            let writeHead = exchange.sending == .headHeld
            if writeHead {
                exchange.sending = .headSent
                state = .busy(exchange)
            }
            return .flush(writeHead: writeHead)
        case .idle:
            return .flush(writeHead: false)
        case .opening, .openingUnwanted, .closed:
            return .none
        }
    }

    /// The downstream went away.
    mutating func cancel() -> Action {
        switch state {
        case .opening:
            state = .openingUnwanted
            return .dropRequest
        case .busy:
            state = .closed
            return .dropRequestAndClose
        case .openingUnwanted, .idle, .closed:
            return .none
        }
    }

    // MARK: Reading, and backpressure

    /// The channel wants to read; `downstreamWritable` is whether the downstream can take
    /// more response body now.
    mutating func read(downstreamWritable: Bool) -> Action {
        guard case .busy(var exchange) = state, !downstreamWritable else { return .read }
        exchange.readHeld = true
        state = .busy(exchange)
        return .none
    }

    mutating func downstreamWritable() -> Action {
        guard case .busy(var exchange) = state, exchange.readHeld else { return .none }
        exchange.readHeld = false
        state = .busy(exchange)
        return .read
    }

    mutating func channelWritabilityChanged() -> Action {
        guard case .busy = state else { return .none }
        return .forwardWritability
    }

    // MARK: The response

    /// Bytes arrived, before they are parsed: once any has, the request reached the target.
    mutating func bytesReceived() {
        guard case .busy(var exchange) = state, !exchange.answerBegun else { return }
        exchange.answerBegun = true
        state = .busy(exchange)
    }

    /// `reusable`: the target keeps the connection open after this response.
    mutating func responseHead(_ head: ProxyResponseHead, reusable: Bool) -> Action {
        guard case .busy(var exchange) = state, exchange.receiving == .head else { return .none }
        exchange.keepAlive = exchange.keepAlive && reusable
        exchange.answerBegun = true
        exchange.receiving = head.status == .switchingProtocols ? .switched : .body
        state = .busy(exchange)
        return .forwardHead(head)
    }

    mutating func responseBody(_ body: ByteBuffer) -> Action {
        guard case .busy(let exchange) = state, exchange.receiving != .head else { return .none }
        return .forwardBody(body)
    }

    /// `inputLeft`: bytes follow the response in what was read, which no request asked for.
    mutating func responseEnd(trailers: HTTPHeaders?, inputLeft: Bool) -> Action {
        guard case .busy(let exchange) = state, exchange.receiving != .head else { return .none }
        if exchange.sending == .ended && exchange.keepAlive && !inputLeft {
            state = .idle
            return .forwardEnd(trailers: trailers, then: .release)
        }
        // The target answered before reading the whole request (or sent more than was
        // asked): the connection's state is unknown, so it is not reused.
        state = .closed
        return .forwardEnd(trailers: trailers, then: .close)
    }

    mutating func invalidResponse(_ error: HTTP1SyntaxError) -> Action {
        switch state {
        case .busy:
            state = .closed
            return .fail(.invalidResponse(error), close: true)
        case .idle:
            state = .closed
            return .close
        case .opening, .openingUnwanted, .closed:
            return .none
        }
    }

    // MARK: The end of the connection

    /// The connection failed (a reset, say) rather than closing cleanly: what it
    /// carried is cut short.
    mutating func errorCaught() -> Action {
        switch state {
        case .busy(let exchange):
            state = .closed
            return lost(exchange, close: true)
        case .idle:
            state = .closed
            return .close
        case .opening, .openingUnwanted, .closed:
            return .none
        }
    }

    /// `bodyEndsHere`: the response parser says a body that runs to the close is complete.
    mutating func channelInactive(bodyEndsHere: Bool) -> Action {
        switch state {
        case .busy(let exchange):
            state = .closed
            if bodyEndsHere && exchange.receiving != .head {
                return .forwardEnd(trailers: nil, then: .nothing)
            }
            return lost(exchange, close: false)
        case .idle:
            state = .closed
            return .leavePool
        case .opening, .openingUnwanted:
            // Never opened: `connectFailed` says what happened.
            return .none
        case .closed:
            return .none
        }
    }

    /// The exchange's outcome when its connection is gone: a pooled connection that was
    /// dead before anything of the request reached the target sends it again, once, on a
    /// fresh connection; otherwise the exchange fails.
    private func lost(_ exchange: Exchange, close: Bool) -> Action {
        if exchange.reused && exchange.request.mayReplay && !exchange.answerBegun && !exchange.bodySent {
            return .retry(ended: exchange.sending == .ended, close: close)
        }
        return .fail(exchange.receiving == .head ? .closedBeforeResponse : .closedDuringResponse, close: close)
    }
}
