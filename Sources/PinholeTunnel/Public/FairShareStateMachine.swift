import NIOCore
import PinholeCore

/// One public HTTP/2 stream's share of a tunnel, as the HTTP/1.1 side has it per request
/// (see `PublicConnectionStateMachine`): a place among the requests in flight, taken from
/// the relay's `InFlightLimits` before the exchange starts and given back when it ends
/// however it ends; and `--stall-timeout`, cutting off a client that is, for that long,
/// the side not moving.
///
/// The upload clock runs while the request body is unfinished, the app's side takes more,
/// and no answer has begun (then the exchange is full duplex, a gRPC stream say, where a
/// quiet client is as normal as a WebSocket's). The download clock runs while the stream
/// holds more unsent answer than its high watermark: the client's window is shut, or its
/// connection is not read. A wait in line, or an app paused at a breakpoint, stops both.
///
/// A stall check is scheduled only while a clock runs: most streams (a GET answered at
/// the pace its client reads) start none, and schedule and cancel no task.
struct FairShareStateMachine {
    enum State {
        /// Not yet asked for a place.
        case new
        /// In line for a place since the exchange began; the wait is bounded by `wait`.
        case waiting(InFlightLimits.Ticket, InFlightLimits.Limit, wait: TimeAmount)
        case running(Running)
        /// The exchange ended and its place was given back.
        case over
    }

    struct Running {
        /// Nil without caps.
        var slot: InFlightLimits.Slot?
        var upload: Upload
        /// Since when the client has read none of the answer, if it is not reading now.
        var downloadBlockedSince: NIODeadline?
        var stallCheck = StallCheck.idle

        /// Whether a clock runs: the client is the side not moving, one way or the other.
        var clockRuns: Bool {
            if case .open(_, appTakesMore: true) = upload { return true }
            return downloadBlockedSince != nil
        }
    }

    enum StallCheck {
        /// No check is scheduled: no clock ran since the last one.
        case idle
        /// A check is due at some point; when it finds no clock running, it goes idle.
        case scheduled
    }

    enum Upload: Equatable {
        /// A body of no announced length (a gRPC stream, say), or one whose client waits
        /// for `100 Continue`, of which nothing came yet: its client may be waiting for the
        /// app's first word (a bidirectional call), and the app may be at a breakpoint, so
        /// no clock runs until the first piece. (A piece that came while in line does not
        /// count: the clock starts at the next. Either way such a client holds only a place
        /// of its own address's share.)
        case awaitingFirstPiece
        /// The request body is unfinished: the client last moved at `movedAt` (or the app
        /// side last began to take more), and `appTakesMore` says whether it takes more now.
        case open(movedAt: NIODeadline, appTakesMore: Bool)
        /// The body ended, or the answer began: no upload clock.
        case settled
    }

    enum Action: Equatable {
        case none
        /// Start the real exchange now, then tell `exchangeStarted`.
        case startExchange
        /// Wait in line; at `deadlineIn`, `waitEnded`.
        case waitInLine(deadlineIn: TimeAmount)
        /// No place, and no room in line: answer `error` at once.
        case refuse(ExchangeError)
        /// The client went away while in line: leave it (a place on its way comes back
        /// through `admitted`, and is released then).
        case leaveLine(InFlightLimits.Ticket)
        /// The wait is over: leave the line and answer `error`.
        case giveUp(InFlightLimits.Ticket, ExchangeError)
        /// A place came for a stream that no longer waits for it: give it back.
        case release(InFlightLimits.Slot)
        /// The exchange ended: give back its place (if any) and stop the clock.
        case finished(InFlightLimits.Slot?)
        /// The client went away mid-exchange: cancel the real exchange, then as `finished`.
        case cancelExchange(InFlightLimits.Slot?)
        /// The client stalled: cancel the real exchange, answer `error`, then as `finished`.
        case cutOff(InFlightLimits.Slot?, ExchangeError)
        /// Look for a stall again in this long.
        case checkStall(in: TimeAmount)
    }

    /// The request's body, as its head tells it: whether the upload clock may start with
    /// the exchange, or only at the body's first piece (see `Upload.awaitingFirstPiece`).
    enum RequestBody: Equatable {
        /// The head ended the stream.
        case none
        /// Its length was announced, and no `100 Continue` is awaited: the clock starts
        /// with the exchange.
        case announced
        /// No length (a gRPC stream, say), or the client awaits `100 Continue`.
        case unannounced

        init(_ head: ProxyRequestHead) {
            if !head.mayHaveBody {
                self = .none
            } else if head.headers.contains(name: "content-length"),
                !head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                self = .announced
            } else {
                self = .unannounced
            }
        }
    }

    private(set) var state = State.new
    private let stallTimeout: TimeAmount?
    private let requestBody: RequestBody
    /// The body ended while the stream waited in line.
    private var requestEndedEarly = false

    init(stallTimeout: TimeAmount?, requestBody: RequestBody) {
        self.stallTimeout = stallTimeout
        self.requestBody = requestBody
    }

    var isWaiting: Bool {
        if case .waiting = state { return true }
        return false
    }

    // MARK: Admission

    /// A place was granted (`slot`; nil when there are no caps), at once or after a wait.
    /// The app side is taken to take the body until it says otherwise.
    mutating func admitted(_ slot: InFlightLimits.Slot?, now: NIODeadline) -> Action {
        switch state {
        case .new, .waiting:
            // A body that ended while in line is as none.
            let upload: Upload =
                switch requestEndedEarly ? .none : requestBody {
                case .none: .settled
                case .announced: .open(movedAt: now, appTakesMore: true)
                case .unannounced: .awaitingFirstPiece
                }
            state = .running(Running(slot: slot, upload: upload))
            return .startExchange
        case .running, .over:
            return slot.map { .release($0) } ?? .none
        }
    }

    /// Over `limit`, in line with `ticket` for at most `wait`.
    mutating func queued(_ ticket: InFlightLimits.Ticket, limit: InFlightLimits.Limit, wait: TimeAmount) -> Action {
        guard case .new = state else { return .leaveLine(ticket) }
        state = .waiting(ticket, limit, wait: wait)
        return .waitInLine(deadlineIn: wait)
    }

    /// Over `limit`, and the line is full.
    mutating func refused(_ limit: InFlightLimits.Limit) -> Action {
        guard case .new = state else { return .none }
        state = .over
        return .refuse(.tooManyInFlight(limit, waited: .zero))
    }

    mutating func waitEnded() -> Action {
        guard case .waiting(let ticket, let limit, let wait) = state else { return .none }
        state = .over
        return .giveUp(ticket, .tooManyInFlight(limit, waited: wait))
    }

    /// The real exchange started, its app taking body now or not (`appTakesMore`): a
    /// check to schedule if a clock runs. Nothing if the exchange already ended while
    /// starting (an app that answers at once). One event, so that an app that takes no
    /// body at first never has a check scheduled for a clock that does not run.
    mutating func exchangeStarted(appTakesMore: Bool, now: NIODeadline) -> Action {
        appWritabilityChanged(takesMore: appTakesMore, now: now)
    }

    /// The real exchange could not start (the agent left meanwhile, say).
    mutating func startFailed() -> Action {
        guard case .running(let running) = state else { return .none }
        state = .over
        return .finished(running.slot)
    }

    // MARK: The exchange's ends

    /// The client reset its stream, or the tunnel went down under it.
    mutating func clientWentAway() -> Action {
        switch state {
        case .new:
            state = .over
            return .none
        case .waiting(let ticket, _, _):
            state = .over
            return .leaveLine(ticket)
        case .running(let running):
            state = .over
            return .cancelExchange(running.slot)
        case .over:
            return .none
        }
    }

    /// The answer ended, or the exchange failed: the downstream has heard.
    mutating func exchangeEnded() -> Action {
        guard case .running(let running) = state else { return .none }
        state = .over
        return .finished(running.slot)
    }

    // MARK: Who is moving

    mutating func requestBodyArrived(now: NIODeadline) -> Action {
        updateUpload { upload in
            switch upload {
            case .awaitingFirstPiece: upload = .open(movedAt: now, appTakesMore: true)
            case .open(_, let takesMore): upload = .open(movedAt: now, appTakesMore: takesMore)
            case .settled: break
            }
        }
    }

    mutating func requestEnded() {
        if isWaiting { requestEndedEarly = true }
        _ = updateUpload { $0 = .settled }
    }

    /// The app side's writability changed: when it takes more again, the client gets
    /// window again, and its clock starts over.
    mutating func appWritabilityChanged(takesMore: Bool, now: NIODeadline) -> Action {
        updateUpload { upload in
            guard case .open(let movedAt, let before) = upload else { return }
            upload = .open(movedAt: takesMore && !before ? now : movedAt, appTakesMore: takesMore)
        }
    }

    /// A response head arrived; `final` unless informational (1xx).
    mutating func responseHeadArrived(final: Bool) {
        guard final else { return }
        _ = updateUpload { $0 = .settled }
    }

    /// Response body was handed to the stream, or the stream's writability changed:
    /// `clientReads` is whether it takes more now.
    mutating func downloadWritability(clientReads: Bool, now: NIODeadline) -> Action {
        updateRunning { running in
            if clientReads {
                running.downloadBlockedSince = nil
            } else if running.downloadBlockedSince == nil {
                running.downloadBlockedSince = now
            }
        }
    }

    /// The stall check is due.
    mutating func stallCheckDue(now: NIODeadline) -> Action {
        guard let stallTimeout, case .running(var running) = state else { return .none }
        var uploadStalledSince: NIODeadline?
        if case .open(let movedAt, true) = running.upload { uploadStalledSince = movedAt }
        switch StallClock.verdict(
            uploadStalledSince: uploadStalledSince, downloadBlockedSince: running.downloadBlockedSince,
            timeout: stallTimeout, now: now)
        {
        case .noClock:
            running.stallCheck = .idle
            state = .running(running)
            return .none
        case .checkAgain(let remaining): return .checkStall(in: remaining)
        case .stalled(let error):
            state = .over
            return .cutOff(running.slot, error)
        }
    }

    /// Changes the upload's state; a check to schedule if that started its clock.
    private mutating func updateUpload(_ change: (inout Upload) -> Void) -> Action {
        updateRunning { change(&$0.upload) }
    }

    /// Changes a running exchange (nothing otherwise). When a clock runs then and no check
    /// is scheduled, one is: a full timeout away, since a clock starts at the event that
    /// starts it.
    private mutating func updateRunning(_ change: (inout Running) -> Void) -> Action {
        guard case .running(var running) = state else { return .none }
        change(&running)
        defer { state = .running(running) }
        guard let stallTimeout, running.stallCheck == .idle, running.clockRuns else { return .none }
        running.stallCheck = .scheduled
        return .checkStall(in: stallTimeout)
    }
}
