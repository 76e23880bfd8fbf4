import NIOCore
import NIOHTTP1

// MARK: Reading requests

extension PublicConnectionStateMachine {
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
                sendContinue: exchange.sendsContinue, requestTimeout: requestTimeout, stallCheckIn: scheduleStallTimer()
            )
        case .streamingResponse(let exchange) where exchange.number == number,
            .switched(let exchange) where exchange.number == number:
            if stallTimeout != nil { uploadMovedAt = now() }
            return .exchangeUnderWay(
                sendContinue: exchange.sendsContinue, requestTimeout: nil, stallCheckIn: scheduleStallTimer())
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
}
