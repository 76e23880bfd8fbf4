/// The lifecycle of one HTTP/2 connection, in either role, without nghttp2 or a channel.
///
/// `HTTP2Connection` feeds it events (a read began, a send pass ended, GOAWAY arrived,
/// the channel closed...) and carries out the `Action` each returns; the machine itself
/// touches nothing. Three parts change independently, each an enum:
/// - `state`: starting, active, draining after GOAWAY, terminating on an error, closed.
/// - `output`: whether frames wait to be sent and who will send them (the read in
///   progress, a task queued on the event loop, or the channel once it is writable).
/// - `sessionCall`: whether nghttp2 is on the stack. Its callbacks run inside
///   `nghttp2_session_mem_recv` and `nghttp2_session_send`, so while it is, work is
///   deferred, and the events the callbacks recorded are delivered once it returns
///   (by one delivery loop only, however deeply delegates nest calls).
/// Plus `input`, whether a channel read is in progress: its end sends what the read
/// caused, so nothing needs to be scheduled meanwhile.
struct HTTP2ConnectionStateMachine {
    private(set) var state: State = .starting
    private(set) var output: Output = .idle
    private(set) var sessionCall: SessionCall = .none
    private(set) var input: Input = .idle
    /// The peer's GOAWAY, kept after the drain ends: streams it left unprocessed end with it.
    private(set) var goAwayReceived: (code: HTTP2ErrorCode, lastStreamID: Int32)?
    /// Messages completed (see `HTTP2Connection.completedMessage`) since the last flush.
    private(set) var completedSinceFlush = 0
    /// Bytes send passes wrote to the channel that no flush has sent yet (`passWrote`).
    private(set) var unflushedBytes = 0

    /// Whether nghttp2 is on the stack (its callbacks must only record).
    var isInSession: Bool {
        sessionCall == .running || sessionCall == .runningWhileDelivering
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether this side sent GOAWAY and the connection is draining.
    var goAwaySent: Bool {
        if case .draining(let drain) = state { return drain != .received }
        return false
    }

    /// The error a stream the peer's GOAWAY left unprocessed ends with.
    var goAwayError: HTTP2Error? {
        goAwayReceived.map { .goAway(code: $0.code, lastStreamID: $0.lastStreamID) }
    }

    /// The error that ended the connection, if one did.
    var terminalError: HTTP2Error? {
        switch state {
        case .terminating(let error): return error
        case .closed(let error): return error
        case .starting, .active, .draining: return nil
        }
    }

    // MARK: Lifecycle

    /// The nghttp2 session was created.
    mutating func sessionStarted() -> Action {
        guard case .starting = state else { return .none }
        state = .active
        return .deliverEventsAndFlush
    }

    /// This side wants to drain: send GOAWAY, finish the streams in flight.
    mutating func goAwayRequested() -> Action {
        switch state {
        case .active:
            state = .draining(.sent)
        case .draining(.received):
            state = .draining(.sentAndReceived)
        case .starting, .draining(.sent), .draining(.sentAndReceived), .terminating, .closed:
            return .none
        }
        return .submitGoAway
    }

    /// nghttp2 has no stream id left for a new request: drain, so the streams in flight
    /// finish and the peer reconnects, rather than refuse every request from now on.
    mutating func streamIDsExhausted() -> Action {
        goAwayRequested()
    }

    /// The peer sent GOAWAY (recorded inside nghttp2; its event is delivered afterwards).
    mutating func receivedGoAway(code: HTTP2ErrorCode, lastStreamID: Int32) {
        goAwayReceived = (code, lastStreamID)
        switch state {
        case .active: state = .draining(.received)
        case .draining(.sent): state = .draining(.sentAndReceived)
        case .starting, .draining(.received), .draining(.sentAndReceived), .terminating, .closed: break
        }
    }

    /// After a flush: decides whether the connection is done. `sessionOver` is nghttp2
    /// wanting neither to read nor to write; `complaint` is its last reason for refusing input.
    mutating func flushFinished(
        sessionOver: Bool, hasOpenStreams: Bool, complaint: @autoclosure () -> String?
    )
        -> Action
    {
        switch state {
        case .active where sessionOver:
            // nghttp2 ended the session itself, after sending GOAWAY for a connection error.
            return terminate(.protocolViolation(complaint() ?? "the session was terminated"))
        case .draining where sessionOver || !hasOpenStreams:
            state = .closed(nil)
            return .close
        case .starting, .active, .draining, .terminating, .closed:
            return .none
        }
    }

    /// A connection error: the input broke the protocol, or nghttp2 failed.
    mutating func terminate(_ error: HTTP2Error) -> Action {
        switch state {
        case .terminating, .closed:
            // A send failing inside terminate's own flush comes back here: it must not
            // flush again (with nghttp2 failing the same way each time, it never ends).
            return .none
        case .starting, .active, .draining:
            state = .terminating(error)
            return .terminate(error)
        }
    }

    /// `terminate`'s last flush is done.
    mutating func finalFramesSent() -> Action {
        guard case .terminating(let error) = state else { return .none }
        state = .closed(error)
        return .failAndClose(error)
    }

    /// Close now, after one last send pass whatever the channel's writability.
    mutating func closeRequested() -> Action {
        switch state {
        case .starting, .closed:
            return .none
        case .active, .draining, .terminating:
            state = .closed(terminalError)
            return .sendFinalFramesAndClose
        }
    }

    /// The channel went inactive or the handler was removed.
    mutating func channelClosed() -> Action {
        let error = terminalError
        state = .closed(error)
        output = .idle
        return .tearDown(error ?? .connectionClosed)
    }

    // MARK: Requests from above

    /// A stream wants to open (client role).
    mutating func streamOpenRequested() -> Action {
        switch state {
        case .terminating(let error):
            return .refuse(error)
        case .closed(let error):
            return .refuse(error ?? .connectionClosed)
        case .draining(.received), .draining(.sentAndReceived):
            return .refuse(goAwayError ?? .connectionClosed)
        case .draining(.sent):
            return .refuse(.connectionDraining)
        case .starting, .active:
            return operationRequested()
        }
    }

    /// Any other operation on the session (headers, resume, reset, window update).
    mutating func operationRequested() -> Action {
        switch state {
        case .starting:
            return .deferOperation
        case .closed:
            return .none
        case .active, .draining, .terminating:
            return isInSession ? .deferOperation : .executeOperation
        }
    }

    /// A PING wants to go out.
    func pingRequested() -> Action {
        switch state {
        case .starting: return .refuse(.connectionClosed)
        case .closed(let error): return .refuse(error ?? .connectionClosed)
        case .active, .draining, .terminating: return .executeOperation
        }
    }

    // MARK: Reentrancy

    /// `nghttp2_session_mem_recv` or `nghttp2_session_send` is about to run.
    mutating func sessionCallStarted() {
        switch sessionCall {
        case .none: sessionCall = .running
        case .delivering: sessionCall = .runningWhileDelivering
        case .running, .runningWhileDelivering:
            preconditionFailure("nghttp2 entered while already running: a callback called into the session")
        }
    }

    /// nghttp2 returned: deliver what its callbacks recorded, unless a delivery loop
    /// further up the stack will.
    mutating func sessionCallReturned() -> Action {
        switch sessionCall {
        case .running:
            sessionCall = .none
            return .deliverEvents
        case .runningWhileDelivering:
            sessionCall = .delivering
            return .none
        case .none, .delivering:
            preconditionFailure("nghttp2 returned without having been entered")
        }
    }

    /// The delivery loop starts: false if one is already running further up the stack
    /// (a second would deliver the same events twice).
    mutating func deliveryStarted() -> Bool {
        guard sessionCall == .none else { return false }
        sessionCall = .delivering
        return true
    }

    mutating func deliveryFinished() {
        if sessionCall == .delivering { sessionCall = .none }
    }

    // MARK: Sending

    /// Something queued frames in nghttp2 (an operation, a PING, a window update).
    mutating func sendRequested() -> Action {
        if case .closed = state { return .none }
        switch (output, input) {
        case (.blocked, _):
            return .none
        case (.scheduled, _):
            output = .scheduled(pending: true)
            return .none
        case (.idle, .reading), (.pending, .reading):
            output = .pending
            return .none
        case (.idle, .idle), (.pending, .idle):
            // Once per event-loop tick however many streams ask: many frames, one write.
            output = .scheduled(pending: true)
            return .scheduleFlush
        }
    }

    /// The flush task queued by `.scheduleFlush` runs.
    mutating func flushTaskFired() -> Action {
        if case .scheduled(let pending) = output { output = pending ? .pending : .idle }
        return .flush
    }

    /// A read from the channel begins (nothing needs scheduling until it completes).
    mutating func readStarted() -> Action {
        switch state {
        case .starting, .closed: return .none
        case .active, .draining, .terminating: break
        }
        input = .reading
        return .receive
    }

    mutating func readCompleted() -> Action {
        input = .idle
        switch state {
        case .starting, .closed: return .none
        case .active, .draining, .terminating: return .flush
        }
    }

    /// A caller queued the last frame of a message. Every `batch` of them are flushed at
    /// once, so the peer starts on them while this loop is still busy; within a read, or
    /// inside nghttp2, the end of that call sends anyway.
    mutating func messageCompleted(batch: Int) -> Action {
        completedSinceFlush += 1
        guard completedSinceFlush >= batch, input == .idle, !isInSession else { return .none }
        switch output {
        case .pending, .scheduled(pending: true): return .flush
        case .idle, .scheduled(pending: false), .blocked: return .none
        }
    }

    /// A flush begins: a send pass runs if the channel takes more.
    mutating func flushStarted(isWritable: Bool) -> Action {
        switch state {
        case .starting, .closed: return .none
        case .active, .draining, .terminating: break
        }
        completedSinceFlush = 0
        return nextPass(isWritable: isWritable)
    }

    /// A send pass wrote `bytes` to the channel, unflushed. Small passes wait to go out in
    /// one flush: a stream's trailers, submitted once the pass with its last DATA returns,
    /// then leave in the same write (and TLS record) as its head and body, and the peer
    /// wakes once per answer, not twice. Once they reach `limit`, they are flushed at once,
    /// so that a run of full passes is not held back, and a flush carries at most `limit`
    /// plus one pass.
    mutating func passWrote(_ bytes: Int, coalescingUpTo limit: Int) -> Action {
        unflushedBytes += bytes
        return unflushedBytes >= limit ? writesFlushed() : .none
    }

    /// A flush's send passes are over: what they wrote goes out.
    mutating func passesEnded() -> Action {
        unflushedBytes > 0 ? writesFlushed() : .none
    }

    private mutating func writesFlushed() -> Action {
        unflushedBytes = 0
        return .flushWrites
    }

    /// Frames wait, and the caller on the stack sends them: a send callback refused bytes
    /// because this write is full (another pass follows), or deferred operations ran
    /// after nghttp2 returned (the read's end, the flush loop or the session start sends).
    mutating func moreToSend() {
        switch output {
        case .idle: output = .pending
        case .scheduled: output = .scheduled(pending: true)
        case .pending, .blocked: break  // a blocked channel's writability resumes sending
        }
    }

    /// One send pass ended; `failure` is nghttp2's error if it had one.
    mutating func sendPassFinished(failure: HTTP2Error?, isWritable: Bool) -> Action {
        if let failure { return terminate(failure) }
        switch state {
        case .starting, .closed: return .none
        case .active, .draining, .terminating: break
        }
        switch output {
        case .pending, .scheduled(pending: true): return nextPass(isWritable: isWritable)
        case .idle, .scheduled(pending: false), .blocked: return .none
        }
    }

    mutating func writabilityChanged(isWritable: Bool) -> Action {
        guard isWritable else { return .none }
        switch state {
        case .starting, .closed: return .none
        case .active, .draining, .terminating: return .flush
        }
    }

    private mutating func nextPass(isWritable: Bool) -> Action {
        guard isWritable else {
            output = .blocked
            return .none
        }
        switch output {
        case .scheduled: output = .scheduled(pending: false)
        case .idle, .pending, .blocked: output = .idle
        }
        return .sendPass
    }
}
