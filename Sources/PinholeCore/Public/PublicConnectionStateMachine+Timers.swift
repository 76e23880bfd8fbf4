import NIOCore

// MARK: Timers

extension PublicConnectionStateMachine {
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
            stallTimer = .idle
            let action = stallCheckDue(now: now)
            if case .schedule(.stall, _) = action { stallTimer = .scheduled }
            return action
        }
    }

    /// The stall timer's delay for an exchange that starts, if it must be scheduled: not
    /// when one is already (see `stallTimer`).
    mutating func scheduleStallTimer() -> TimeAmount? {
        guard let stallTimeout, stallTimer == .idle else { return nil }
        stallTimer = .scheduled
        return stallTimeout
    }

    /// `--stall-timeout`: the client is cut off once it has been, for that long, the
    /// side not moving: a request body it does not send while we would read it, or an
    /// answer it does not read (the channel not writable). Waits on the other side stop
    /// the clock: a body held back because the app does not read it (a breakpoint), an
    /// answer the app has not sent. A WebSocket's quiet client is not stalled; one that
    /// stops reading is.
    private mutating func stallCheckDue(now: NIODeadline) -> Action {
        guard let stallTimeout else { return .none }
        var uploadStalledSince: NIODeadline?
        var downloadBlockedSince: NIODeadline?
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            if exchange.request == .bodyArriving, !exchange.upgradeRequested, exchange.waitingFor == nil, !readHeld {
                uploadStalledSince = uploadMovedAt
            }
        case .switched:
            break
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none  // no exchange: the next one schedules the timer again
        }
        switch state {
        case .streamingResponse, .switched: downloadBlockedSince = self.downloadBlockedSince
        default: break
        }
        switch StallClock.verdict(
            uploadStalledSince: uploadStalledSince, downloadBlockedSince: downloadBlockedSince, timeout: stallTimeout,
            now: now)
        {
        case .noClock: return .schedule(.stall, in: stallTimeout)
        case .checkAgain(let remaining): return .schedule(.stall, in: remaining)
        case .stalled(let error): return fail(error, cancelUpstream: true)
        }
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
}
