import NIOCore
import NIOHTTP1

// The vocabulary of `PublicConnectionStateMachine`: its states, and the actions it asks
// `PublicRequestHandler` to carry out.

extension PublicConnectionStateMachine {
    enum State: Equatable {
        /// Not active yet: the idle clock has not started.
        case initialized
        /// Nothing in flight and nothing arriving: between requests, or before the first.
        case idle
        /// Part of a request head has arrived; the head timer runs until the rest does.
        case headArriving
        /// A request is in flight and no response head has come yet.
        case awaitingResponse(Exchange)
        /// The response head has been written; its body follows as it comes.
        case streamingResponse(Exchange)
        /// The app answered a WebSocket handshake with 101: bytes pass both ways as they are.
        case switched(Exchange)
        /// A last answer is going out; after it, the connection ends without a reset.
        case closing(Closing)
        /// Closed, or closing at once: nothing more goes out; only the teardown is left.
        case closed
    }

    /// The request in flight, as far as the lifecycle cares.
    struct Exchange: Equatable {
        /// Counts the connection's requests from 1: ties the handler's calls about one
        /// exchange to it, even if it ended and another began in between.
        let number: Int
        let version: HTTPVersion
        /// Whether the connection may carry another request after this one.
        var keepAlive: Bool
        let expectsContinue: Bool
        /// A WebSocket handshake: its request stays open upstream until the app answers.
        let upgradeRequested: Bool
        var request = RequestProgress.bodyArriving
        /// The status to record: the response's, or the error answer's.
        var status = 0
        /// Set while the request waits in line for a place (see `InFlightLimits`): its
        /// exchange has not started, and its body is not read yet.
        var waitingFor: InFlightLimits.Limit?

        /// Whether to tell the client to send its body (100 Continue) once the exchange
        /// has started: we stream it on at once. HTTP/1.0 has no interim responses.
        var sendsContinue: Bool { expectsContinue && version.minor == 1 }
    }

    enum RequestProgress: Equatable {
        case bodyArriving
        /// Read to its end: what follows is a pipelined request, held back until the
        /// response is out.
        case ended
    }

    enum Closing: Equatable {
        /// The answer is being written; what the client still sends is dropped.
        case answering
        /// Our side has ended; the connection closes once the client goes quiet.
        case lingering(LingeringClose)
    }

    /// The timers the machine asks for. Scheduling one replaces any of the same kind.
    enum Timer: Equatable, CaseIterable {
        /// A begun request head must be complete by then (408).
        case head
        /// The idle clock's next look (see `ConnectionIdleness`).
        case idle
        /// `--request-timeout`: the wait for a response head (504).
        case request
        /// A closing connection closes when the client has been quiet this long.
        case linger
        /// The wait in line for a place among the requests in flight (503 after it).
        case queue
        /// `--stall-timeout`'s next look at a client that may have stopped moving.
        case stall
    }

    /// Whether the stall timer is scheduled (see `stallTimer`).
    enum StallTimer {
        case idle
        case scheduled
    }

    /// What follows a response's end.
    enum AfterResponse: Equatable {
        /// Write and flush, then serve what the client pipelined behind it.
        case nextRequest
        /// The connection carries nothing more: without keep-alive, after a switched
        /// protocol, or with a request body the application never read.
        case closeAfterAnswer
    }

    /// How an exchange that a cut or the channel's end finishes goes into the request log.
    enum Recording: Equatable {
        /// Complete, with this status: a switched protocol ends this way.
        case complete(status: Int)
        /// Its response began with `status` and broke off; `error` says why, when known.
        case cutShort(status: Int, error: ExchangeError?)
        /// The client went away first; `status` is the response's if one began, else 0.
        case abandoned(status: Int)
    }

    enum Action: Equatable {
        case none

        // Reading
        /// Issue the `read` the channel asked for, or one held back.
        case read
        /// Add the bytes to what waits unparsed, and parse what may be parsed now.
        case parse(ByteBuffer)
        /// Pass the bytes on to the upstream as they are (after a 101).
        case passThrough(ByteBuffer)
        /// Drop the bytes: the connection is closing. With `closeIn`, the linger timer
        /// starts over with that delay.
        case discard(closeIn: TimeAmount?)

        // The request, toward the upstream
        /// Find the target for request `number` and start its exchange, as its
        /// downstream; then report `exchangeStarted` or `exchangeRefused`.
        case startExchange(ProxyRequestHead, number: Int)
        /// Keep the upstream just started. With `sendContinue`, answer 100 Continue now;
        /// with `requestTimeout`, time the wait for the response head; with `stallCheckIn`,
        /// schedule the stall timer (nil while one is scheduled already, see `stallTimer`).
        case exchangeUnderWay(sendContinue: Bool, requestTimeout: TimeAmount?, stallCheckIn: TimeAmount? = nil)
        case sendBody(ByteBuffer)
        case sendEnd(trailers: HTTPHeaders?)

        // The response, toward the client. Each response head stops the request timer.
        /// Write the response head. `connection`: the Connection field to add, if any.
        /// `endRequest`: a declined handshake, whose request ends upstream now.
        case writeResponseHead(
            ProxyResponseHead, version: HTTPVersion, hasBody: Bool, connection: String?, endRequest: Bool,
            scheduleFlush: Bool)
        /// Answer 101 and from then on pass bytes as they are, beginning with any the
        /// client sent early; then let held reads go.
        case switchProtocols(ProxyResponseHead, scheduleFlush: Bool)
        case writeResponseBody(ByteBuffer, scheduleFlush: Bool)
        /// End the response, record the exchange with `status`, and go on as `then` says.
        case finishResponse(trailers: HTTPHeaders?, status: Int, then: AfterResponse)
        /// Write what was gathered and flush.
        case flush

        // Ending
        /// Answer `error` (recorded with `record` when given; after cancelling the
        /// upstream when asked), then end the connection without a reset (see
        /// `LingeringClose`): any body or pipelined request behind it is not served.
        case answerAndClose(ExchangeError, version: HTTPVersion, record: Int?, cancelUpstream: Bool)
        /// Close now, cutting a response that has begun, so that the client sees it
        /// incomplete; the exchange is over (its upstream cancelled when asked), and
        /// recorded as `record` says.
        case cut(cancelUpstream: Bool, record: Recording)
        /// The answer is written: schedule the linger timer, then end our side.
        case endOutputAndLinger(closeIn: TimeAmount)
        case close
        /// The channel is gone: cancel every timer and let the exchange go (cancelling
        /// its upstream and recording it, when asked).
        case tearDown(cancelUpstream: Bool, record: Recording?)

        // Timers
        case schedule(Timer, in: TimeAmount)
        case cancel(Timer)
    }
}

extension PublicConnectionStateMachine.State {
    /// No request is in flight: the next bytes begin one.
    var isBetweenRequests: Bool {
        switch self {
        case .initialized, .idle, .headArriving: return true
        case .awaitingResponse, .streamingResponse, .switched, .closing, .closed: return false
        }
    }

    /// The exchange whose request is still being read, or whose response is awaited or
    /// going out; not a switched one.
    var exchangeInFlight: PublicConnectionStateMachine.Exchange? {
        switch self {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange): return exchange
        case .initialized, .idle, .headArriving, .switched, .closing, .closed: return nil
        }
    }
}

extension PublicConnectionStateMachine.State: CustomStringConvertible {
    /// What the connection was doing, for logs.
    var description: String {
        switch self {
        case .initialized: return "not yet active"
        case .idle: return "idle between requests"
        case .headArriving: return "receiving a request head"
        case .awaitingResponse(let exchange): return "waiting for the response to request \(exchange.number)"
        case .streamingResponse(let exchange): return "sending the response to request \(exchange.number)"
        case .switched: return "passing a switched protocol (101) through"
        case .closing: return "closing after its last answer"
        case .closed: return "closed"
        }
    }
}
