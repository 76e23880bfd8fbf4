import Testing

@testable import PinholeTunnel

/// `IncomingRequestStateMachine` without channels: where an incoming request's body goes
/// once its answer may already be complete, and how the upstream hears of its end.
@Suite("An incoming request's side")
struct IncomingRequestStateMachineTests {
    private typealias Machine = IncomingRequestStateMachine

    @Test("body passes on while the upstream takes it; the end is passed on, once")
    func wholeRequest() {
        var machine = Machine()
        #expect(machine.bodyReceived(upstreamTakesIt: true) == .passOn)
        #expect(machine.bodyReceived(upstreamTakesIt: true) == .passOn)
        #expect(machine.ended() == .sendEnd)
        #expect(machine.state == .over)
        #expect(machine.streamClosed() == Machine.EndAction.none)
    }

    @Test("body after a complete answer is dropped from then on, and the end cancels the upstream")
    func bodyAfterTheAnswer() {
        var machine = Machine()
        #expect(machine.bodyReceived(upstreamTakesIt: true) == .passOn)
        #expect(machine.bodyReceived(upstreamTakesIt: false) == .drop)
        #expect(machine.state == .dropping)
        // Nothing reaches the upstream after a drop, even if it were to take more.
        #expect(machine.bodyReceived(upstreamTakesIt: true) == .drop)
        #expect(machine.ended() == .cancelUpstream)
        #expect(machine.ended() == Machine.EndAction.none)
    }

    @Test("a complete answer before the request's end stops the peer: the rest is dropped keeping its window")
    func answerBeforeTheEnd() {
        var stops: Bool
        var whole = Machine()
        #expect(whole.bodyReceived(upstreamTakesIt: true) == .passOn)
        stops = whole.answerCompleted()
        #expect(stops, "the request is still coming: stop its sender")
        stops = whole.answerCompleted()
        #expect(!stops, "once")
        #expect(whole.ended() == .sendEnd, "nothing was dropped: the upstream got the whole request")

        var cut = Machine()
        stops = cut.answerCompleted()
        #expect(stops)
        #expect(cut.bodyReceived(upstreamTakesIt: true) == .ignore, "no window back, nothing to the upstream")
        #expect(cut.state == .stopping(dropped: true))
        #expect(!cut.givesWindowBack && whole.givesWindowBack)
        #expect(cut.ended() == .cancelUpstream)

        var dropping = Machine()
        _ = dropping.bodyReceived(upstreamTakesIt: false)
        stops = dropping.answerCompleted()
        #expect(stops)
        #expect(dropping.streamClosed() == .cancelUpstream, "the reset closes it before the end came")

        var over = Machine()
        _ = over.ended()
        stops = over.answerCompleted()
        #expect(!stops, "an answer after the whole request stops no one")
    }

    @Test("the stream closing before the request's end cancels the upstream, once")
    func closedBeforeTheEnd() {
        var receiving = Machine()
        #expect(receiving.streamClosed() == .cancelUpstream)
        #expect(receiving.streamClosed() == Machine.EndAction.none)
        var dropping = Machine()
        _ = dropping.bodyReceived(upstreamTakesIt: false)
        #expect(dropping.streamClosed() == .cancelUpstream)
        #expect(dropping.ended() == Machine.EndAction.none)
    }
}
