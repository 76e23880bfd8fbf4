/// The request's side of an incoming stream (`AgentStreamResponder`): where its body
/// goes, and how the upstream hears of its end. The response's side is the responder's
/// own `ResponsePhase`; this asks only whether the answer is complete.
///
/// Once the answer is complete, the rest of the request is wanted by no one (the app
/// answered before reading all of it: a 401 or 413 to an upload). Its sender is asked to
/// stop (`stopping`: RST_STREAM NO_ERROR after the answer's end), and what it still sends
/// is dropped without its window coming back, which would only invite more. Held back for
/// an app that reads no more, that body would keep the stream open, one of the
/// connection's concurrent streams, for as long as the connection lasts. Body that finds
/// no upstream before any answer (`dropping`) is dropped with its window given back. An
/// upstream still running after a drop (an h2c app that answered 204 and reads on) is
/// cancelled at the request's end rather than told the body ended whole.
struct IncomingRequestStateMachine {
    enum State: Equatable {
        /// Its body passes on to the upstream as it comes.
        case receiving
        /// Some of its body was dropped: the upstream will be cancelled, not ended.
        case dropping
        /// The answer is complete and the peer is asked to stop sending (RST_STREAM
        /// NO_ERROR after the answer's end): what it still sends is dropped without its
        /// window coming back, which would only invite more. `dropped`: some body was.
        case stopping(dropped: Bool)
        /// Its end was passed on, or the upstream cancelled: nothing more goes to it.
        case over
    }

    enum BodyAction: Equatable {
        /// Pass the piece to the upstream (its window comes back as the upstream keeps up).
        case passOn
        /// Drop it, and give its window back now.
        case drop
        /// Drop it, and keep its window: the peer is being stopped.
        case ignore
    }

    enum EndAction: Equatable {
        case none
        /// Tell the upstream the request ended, with its trailers.
        case sendEnd
        /// Cancel the upstream: it got less than the whole request.
        case cancelUpstream
    }

    private(set) var state = State.receiving

    /// Whether window held for the upstream may still be given back as it takes more:
    /// not once the peer is being stopped.
    var givesWindowBack: Bool {
        if case .stopping = state { return false }
        return true
    }

    /// A piece of body came. `upstreamTakesIt`: there is an upstream, and the answer is
    /// not complete yet.
    mutating func bodyReceived(upstreamTakesIt: Bool) -> BodyAction {
        switch state {
        case .receiving where upstreamTakesIt: return .passOn
        case .stopping:
            state = .stopping(dropped: true)
            return .ignore
        case .receiving:
            state = .dropping
            return .drop
        case .dropping, .over: return .drop
        }
    }

    /// The answer is complete. True when the request has not ended: its sender is to be
    /// asked to stop once the answer is out.
    mutating func answerCompleted() -> Bool {
        switch state {
        case .receiving: state = .stopping(dropped: false)
        case .dropping: state = .stopping(dropped: true)
        case .stopping, .over: return false
        }
        return true
    }

    /// The request's end came (END_STREAM).
    mutating func ended() -> EndAction {
        defer { state = .over }
        switch state {
        case .receiving, .stopping(dropped: false): return .sendEnd
        case .dropping, .stopping(dropped: true): return .cancelUpstream
        case .over: return .none
        }
    }

    /// The stream closed. Before the request's end (the peer reset it after an early
    /// answer), an upstream still reading would wait for the rest for good.
    mutating func streamClosed() -> EndAction {
        defer { state = .over }
        return state == .over ? .none : .cancelUpstream
    }
}
