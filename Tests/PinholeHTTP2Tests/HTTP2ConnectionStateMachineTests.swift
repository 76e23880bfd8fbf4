import Testing

@testable import PinholeHTTP2

/// The connection's lifecycle, one transition at a time, without nghttp2 or a channel.
@Suite("HTTP/2 connection state machine")
struct HTTP2ConnectionStateMachineTests {
    typealias Machine = HTTP2ConnectionStateMachine

    /// A machine whose session has started, with nothing waiting.
    private func active() -> Machine {
        var machine = Machine()
        #expect(machine.sessionStarted() == .deliverEventsAndFlush)
        return machine
    }

    // MARK: Starting

    @Test("before the session exists, work waits for it and PINGs fail")
    func starting() {
        var machine = Machine()
        #expect(machine.state == .starting)
        #expect(machine.streamOpenRequested() == .deferOperation)
        #expect(machine.operationRequested() == .deferOperation)
        #expect(machine.pingRequested() == .refuse(.connectionClosed))
        #expect(machine.goAwayRequested() == .none, "no session to send GOAWAY on")
        #expect(machine.readStarted() == .none)
        #expect(machine.flushStarted(isWritable: true) == .none)
        #expect(machine.sessionStarted() == .deliverEventsAndFlush)
        #expect(machine.state == .active)
        #expect(machine.sessionStarted() == .none, "a second channelActive starts nothing")
    }

    @Test("while active, operations run at once and streams open")
    func activeOperations() {
        var machine = active()
        #expect(machine.streamOpenRequested() == .executeOperation)
        #expect(machine.operationRequested() == .executeOperation)
        #expect(machine.pingRequested() == .executeOperation)
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: false, complaint: nil) == .none)
        #expect(machine.state == .active, "an active connection with no stream stays open")
    }

    // MARK: GOAWAY drain

    @Test("GOAWAY sent: streams in flight finish, new ones are refused, the last one closing closes")
    func goAwaySentDrain() {
        var machine = active()
        #expect(machine.goAwayRequested() == .submitGoAway)
        #expect(machine.state == .draining(.sent))
        #expect(machine.goAwaySent)
        #expect(machine.goAwayRequested() == .none, "GOAWAY goes once")
        #expect(machine.streamOpenRequested() == .refuse(.connectionDraining))
        #expect(machine.operationRequested() == .executeOperation, "streams in flight still send")
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: true, complaint: nil) == .none)
        #expect(machine.state == .draining(.sent))
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: false, complaint: nil) == .close)
        #expect(machine.state == .closed(nil))
        #expect(!machine.goAwaySent)
        #expect(machine.streamOpenRequested() == .refuse(.connectionClosed))
        #expect(machine.operationRequested() == .none)
        #expect(machine.channelClosed() == .tearDown(.connectionClosed))
    }

    @Test("GOAWAY received: new streams fail with its last stream id, the drain ends with the last stream")
    func goAwayReceivedDrain() {
        var machine = active()
        machine.receivedGoAway(code: .noError, lastStreamID: 5)
        #expect(machine.state == .draining(.received))
        #expect(!machine.goAwaySent)
        let refusal = HTTP2Error.goAway(code: .noError, lastStreamID: 5)
        #expect(machine.streamOpenRequested() == .refuse(refusal))
        #expect(machine.goAwayError == refusal)
        #expect(machine.operationRequested() == .executeOperation)
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: true, complaint: nil) == .none)

        // This side may still say goodbye itself; the peer's GOAWAY stays the reason given.
        #expect(machine.goAwayRequested() == .submitGoAway)
        #expect(machine.state == .draining(.sentAndReceived))
        #expect(machine.goAwaySent)
        #expect(machine.streamOpenRequested() == .refuse(refusal))
        #expect(machine.goAwayRequested() == .none)

        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: false, complaint: nil) == .close)
        #expect(machine.state == .closed(nil))
        #expect(machine.goAwayError == refusal, "kept for the streams torn down after the close")
    }

    @Test("GOAWAY sent, then the peer's: both recorded")
    func goAwaySentThenReceived() {
        var machine = active()
        #expect(machine.goAwayRequested() == .submitGoAway)
        machine.receivedGoAway(code: .enhanceYourCalm, lastStreamID: 7)
        #expect(machine.state == .draining(.sentAndReceived))
        #expect(machine.streamOpenRequested() == .refuse(.goAway(code: .enhanceYourCalm, lastStreamID: 7)))
    }

    @Test("a draining session nghttp2 has finished closes even with streams still listed")
    func drainingSessionOver() {
        var machine = active()
        machine.receivedGoAway(code: .noError, lastStreamID: 1)
        #expect(machine.flushFinished(sessionOver: true, hasOpenStreams: true, complaint: nil) == .close)
        #expect(machine.state == .closed(nil))
    }

    @Test("stream ids running out: the connection drains, and closes after the last stream")
    func streamIDsExhausted() {
        var machine = active()
        #expect(machine.streamIDsExhausted() == .submitGoAway)
        #expect(machine.state == .draining(.sent))
        #expect(machine.streamOpenRequested() == .refuse(.connectionDraining))
        #expect(machine.streamIDsExhausted() == .none, "one GOAWAY however many requests fail")
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: true, complaint: nil) == .none)
        #expect(machine.flushFinished(sessionOver: false, hasOpenStreams: false, complaint: nil) == .close)
    }

    // MARK: Errors

    @Test("a protocol error: nghttp2's GOAWAY goes out, then the error is reported and the channel closed")
    func protocolErrorEndsInGoAway() {
        var machine = active()
        #expect(machine.readStarted() == .receive)
        let error = HTTP2Error.protocolViolation("sent GOAWAY(FRAME_SIZE_ERROR)")
        #expect(machine.terminate(error) == .terminate(error))
        #expect(machine.state == .terminating(error))
        #expect(machine.terminalError == error)
        #expect(machine.streamOpenRequested() == .refuse(error))
        #expect(machine.operationRequested() == .executeOperation, "a delegate may still reset its stream")
        // terminate's flush sends what nghttp2 queued (its GOAWAY).
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
        #expect(machine.flushFinished(sessionOver: true, hasOpenStreams: true, complaint: nil) == .none)
        #expect(machine.terminate(.connectionClosed) == .none, "the first error is the one reported")
        #expect(machine.finalFramesSent() == .failAndClose(error))
        #expect(machine.state == .closed(error))
        #expect(machine.finalFramesSent() == .none)
        #expect(machine.streamOpenRequested() == .refuse(error))
        #expect(machine.pingRequested() == .refuse(error))
        #expect(machine.channelClosed() == .tearDown(error))
    }

    @Test("nghttp2 ending the session by itself is a protocol violation carrying its complaint")
    func sessionEndedByNghttp2() {
        var machine = active()
        let action = machine.flushFinished(sessionOver: true, hasOpenStreams: false, complaint: "bad preface")
        #expect(action == .terminate(.protocolViolation("bad preface")))
        var other = active()
        #expect(
            other.flushFinished(sessionOver: true, hasOpenStreams: false, complaint: nil)
                == .terminate(.protocolViolation("the session was terminated")))
    }

    @Test("terminate during a send: the failing pass ends the loop, and terminate's own flush does not recurse")
    func terminateDuringSend() {
        var machine = active()
        let failure = HTTP2Error.library(operation: "sending frames", code: -902)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.sendPassFinished(failure: failure, isWritable: true) == .terminate(failure))
        #expect(machine.state == .terminating(failure))
        // terminate flushes once more; nghttp2 fails the same way.
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.sendPassFinished(failure: failure, isWritable: true) == .none)
        #expect(machine.finalFramesSent() == .failAndClose(failure))
        #expect(machine.flushStarted(isWritable: true) == .none, "nothing is sent once closed")
    }

    @Test("goAwayAndClose: one last pass whatever the writability, then closed")
    func closeRequested() {
        var machine = active()
        #expect(machine.goAwayRequested() == .submitGoAway)
        #expect(machine.closeRequested() == .sendFinalFramesAndClose)
        #expect(machine.state == .closed(nil))
        #expect(machine.closeRequested() == .none)
        #expect(machine.sendRequested() == .none)
        var starting = Machine()
        #expect(starting.closeRequested() == .none)
    }

    @Test("the channel closing ends everything, with the error that ended the connection if any")
    func channelClosed() {
        var machine = active()
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.channelClosed() == .tearDown(.connectionClosed))
        #expect(machine.state == .closed(nil))
        #expect(machine.output == .idle)
        #expect(machine.flushTaskFired() == .flush)
        #expect(machine.flushStarted(isWritable: true) == .none, "the task queued before finds nothing to do")
        #expect(machine.readStarted() == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .none)
        #expect(machine.channelClosed() == .tearDown(.connectionClosed), "handlerRemoved after channelInactive")
    }

    // MARK: Sending

    @Test("sends outside a read: one flush task per tick however many ask")
    func sendScheduledOncePerTick() {
        var machine = active()
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.output == .scheduled(pending: true))
        #expect(machine.sendRequested() == .none)
        #expect(machine.flushTaskFired() == .flush)
        #expect(machine.output == .pending)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.output == .idle)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
        #expect(machine.sendRequested() == .scheduleFlush, "the next tick gets its own task")
    }

    @Test("a flush before the task runs: the task still runs, and no second one is queued meanwhile")
    func flushBeforeTask() {
        var machine = active()
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.output == .scheduled(pending: false))
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
        #expect(machine.sendRequested() == .none)
        #expect(machine.output == .scheduled(pending: true))
        #expect(machine.flushTaskFired() == .flush)
    }

    @Test("within a read nothing is scheduled: the read's end sends")
    func sendDuringRead() {
        var machine = active()
        #expect(machine.readStarted() == .receive)
        #expect(machine.input == .reading)
        #expect(machine.sendRequested() == .none)
        #expect(machine.output == .pending)
        #expect(machine.sendRequested() == .none)
        #expect(machine.readCompleted() == .flush)
        #expect(machine.input == .idle)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
    }

    @Test("a send scheduled while inside the session: the operation waits, the events are delivered after")
    func sendWhileInsideSession() {
        var answer: Bool
        var machine = active()
        machine.sessionCallStarted()
        #expect(machine.sessionCall == .running)
        #expect(machine.isInSession)
        #expect(machine.operationRequested() == .deferOperation)
        #expect(machine.streamOpenRequested() == .deferOperation)
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.messageCompleted(batch: 1) == .none, "no flush from inside nghttp2")
        #expect(machine.sessionCallReturned() == .deliverEvents)
        #expect(!machine.isInSession)
        answer = machine.deliveryStarted()
        #expect(answer)
        machine.moreToSend()  // the deferred operations ran
        #expect(machine.output == .scheduled(pending: true))
        machine.deliveryFinished()
        #expect(machine.sessionCall == HTTP2ConnectionStateMachine.SessionCall.none)
        #expect(machine.flushTaskFired() == .flush)
    }

    @Test("a delegate's flush while events are delivered: nghttp2 runs, its events wait for the running loop")
    func nestedSessionCallDuringDelivery() {
        var answer: Bool
        var machine = active()
        answer = machine.deliveryStarted()
        #expect(answer)
        #expect(!machine.isInSession, "delegates run outside nghttp2")
        #expect(machine.operationRequested() == .executeOperation)
        machine.sessionCallStarted()
        #expect(machine.sessionCall == .runningWhileDelivering)
        #expect(machine.isInSession)
        #expect(machine.operationRequested() == .deferOperation)
        #expect(machine.sessionCallReturned() == .none, "the loop further up delivers")
        #expect(machine.sessionCall == .delivering)
        answer = machine.deliveryStarted()
        #expect(!answer, "no second delivery loop")
        machine.deliveryFinished()
        #expect(machine.sessionCall == HTTP2ConnectionStateMachine.SessionCall.none)
    }

    @Test("outbound full: another pass follows; an unwritable channel blocks until writability returns")
    func outboundFullAndWritability() {
        var machine = active()
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        machine.moreToSend()  // the 64 KiB write cap refused a frame
        #expect(machine.output == .pending)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .sendPass)
        machine.moreToSend()
        #expect(machine.sendPassFinished(failure: nil, isWritable: false) == .none)
        #expect(machine.output == .blocked)
        #expect(machine.sendRequested() == .none, "no task while the channel is full")
        #expect(machine.output == .blocked)
        #expect(machine.messageCompleted(batch: 1) == .none)
        #expect(machine.writabilityChanged(isWritable: false) == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .flush)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.output == .idle)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
    }

    @Test("a flush that finds the channel unwritable sends nothing and waits")
    func flushWhileUnwritable() {
        var machine = active()
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.flushTaskFired() == .flush)
        #expect(machine.flushStarted(isWritable: false) == .none)
        #expect(machine.output == .blocked)
        #expect(machine.readStarted() == .receive)
        #expect(machine.readCompleted() == .flush, "a read's end tries anyway; the flush checks writability")
        #expect(machine.flushStarted(isWritable: false) == .none)
    }

    @Test("completed messages flush in batches, never within a read or inside nghttp2")
    func messageBatches() {
        var machine = active()
        #expect(machine.sendRequested() == .scheduleFlush)
        #expect(machine.messageCompleted(batch: 3) == .none)
        #expect(machine.messageCompleted(batch: 3) == .none)
        #expect(machine.messageCompleted(batch: 3) == .flush)
        #expect(machine.flushStarted(isWritable: true) == .sendPass)
        #expect(machine.completedSinceFlush == 0)
        #expect(machine.sendPassFinished(failure: nil, isWritable: true) == .none)
        for _ in 0..<3 { #expect(machine.messageCompleted(batch: 3) == .none, "nothing waits to be sent") }

        var reading = active()
        #expect(reading.readStarted() == .receive)
        #expect(reading.sendRequested() == .none)
        #expect(reading.messageCompleted(batch: 1) == .none, "the read's end sends")
    }

    @Test("small passes' writes wait for one flush; a pass that reaches the limit flushes at once")
    func coalescedFlushes() {
        var machine = active()
        #expect(machine.passWrote(60, coalescingUpTo: 1_000) == .none, "a head and body")
        #expect(machine.passWrote(11, coalescingUpTo: 1_000) == .none, "the trailers after them")
        #expect(machine.unflushedBytes == 71)
        #expect(machine.passesEnded() == .flushWrites, "both go out in one flush")
        #expect(machine.passesEnded() == .none, "nothing left to flush")
        #expect(machine.passWrote(0, coalescingUpTo: 1_000) == .none)
        #expect(machine.passesEnded() == .none, "a pass that wrote nothing needs no flush")

        #expect(machine.passWrote(400, coalescingUpTo: 1_000) == .none)
        #expect(machine.passWrote(700, coalescingUpTo: 1_000) == .flushWrites, "the limit reached: flushed at once")
        #expect(machine.unflushedBytes == 0)
        #expect(machine.passesEnded() == .none)
    }
}
