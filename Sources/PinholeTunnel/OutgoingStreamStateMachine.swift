import NIOHTTP1
import PinholeCore
import PinholeHTTP2

/// Who answers at the far end of an outgoing stream: it decides the fields sent, and
/// the words a failure is reported in.
enum StreamPeer {
    /// The agent, through the tunnel, for requests to `host`.
    case agent(host: String)
    /// An HTTP/2 (h2c) app, from the agent.
    case app(target: String)
}

/// The life of one request as an HTTP/2 stream this side opens (`TunnelStreamUpstream`):
/// the request going out, the response coming back, and how the exchange ends. It takes
/// the events of both sides and says what to do; the stream and the downstream are the
/// upstream's to hold and let go of, as the actions say.
struct OutgoingStreamStateMachine {
    enum Request: Equatable {
        /// More of its body may come.
        case sending
        /// Its end was handed to the stream (which may still hold some of it back, for
        /// flow control).
        case ended
    }

    enum State: Equatable {
        /// The stream is open, and no response head came yet: an app that fails now did
        /// not answer at all.
        case awaitingHead(Request)
        /// The response head reached the downstream; its body follows, then `trailers`
        /// (kept until the end, which carries them).
        case responding(Request, trailers: HTTPHeaders?)
        /// The downstream heard its last (the response ended, or failed), or went away.
        /// Nothing more passes either way.
        case done
    }

    enum Action: Equatable {
        case none
        /// Hand the request's end (with its trailers) to the stream, and count the
        /// request as complete for the connection's write batching.
        case finishRequest
        /// Pass the response head, or a piece of its body, on to the downstream.
        case pass
        /// The response is complete: let go of the downstream and tell it, with
        /// `trailers`. With `resetStream`, the answer came before the whole request (a 401
        /// or 413 to an upload): the rest is not wanted, so reset the stream and let go of
        /// it first. Without the reset it would stay open on both ends for the
        /// connection's life, holding one of the peer's concurrent streams; enough of them
        /// and every new request waits forever.
        case deliverEnd(trailers: HTTPHeaders?, resetStream: Bool)
        /// Reset the stream (cancel) and let go of it and of the downstream, then tell the
        /// downstream `error`.
        case fail(ExchangeError)
        /// The downstream went away: reset the stream (cancel), and let go of both.
        case cancelStream
    }

    let peer: StreamPeer
    private(set) var state = State.awaitingHead(.sending)

    init(peer: StreamPeer) {
        self.peer = peer
    }

    /// Opening the stream failed: what the exchange is told.
    func openFailed(_ error: HTTP2Error) -> ExchangeError {
        failure(error, responseStarted: false)
    }

    // MARK: The request (from the downstream)

    /// The downstream ended the request.
    mutating func requestEnded() -> Action {
        switch state {
        case .awaitingHead(.sending):
            state = .awaitingHead(.ended)
            return .finishRequest
        case .responding(.sending, let trailers):
            state = .responding(.ended, trailers: trailers)
            return .finishRequest
        case .awaitingHead(.ended), .responding(.ended, _), .done:
            return .none
        }
    }

    /// The downstream went away before the response was complete.
    mutating func downstreamWentAway() -> Action {
        guard state != .done else { return .none }
        state = .done
        return .cancelStream
    }

    // MARK: The response (from the stream)

    /// The response's head came, and made a valid response head.
    mutating func responseHeadReceived() -> Action {
        guard case .awaitingHead(let request) = state else { return .none }
        state = .responding(request, trailers: nil)
        return .pass
    }

    /// The response's head came, but is not a response Pinhole can pass on.
    mutating func responseHeadInvalid(_ error: ExchangeError) -> Action {
        guard state != .done else { return .none }
        state = .done
        return .fail(error)
    }

    /// A piece of the response body came.
    func responseBodyReceived() -> Action {
        guard case .responding = state else { return .none }
        return .pass
    }

    /// The response's trailers came: they go with its end.
    mutating func responseTrailersReceived(_ fields: HTTPHeaders) -> Action {
        guard case .responding(let request, _) = state else { return .none }
        state = .responding(request, trailers: fields)
        return .none
    }

    /// The stream's response ended.
    mutating func responseEnded() -> Action {
        switch state {
        case .responding(let request, let trailers):
            state = .done
            return .deliverEnd(trailers: trailers, resetStream: request == .sending)
        case .awaitingHead:
            // An end with no head before it (nghttp2 lets none through; this is for
            // safety): nothing the downstream could pass on.
            state = .done
            switch peer {
            case .agent(let host):
                return .fail(.protocolViolation("the agent for \(host) ended the request's stream without a response"))
            case .app(let target):
                return .fail(.targetClosedWithoutAnswer(target: target))
            }
        case .done:
            return .none
        }
    }

    /// The stream closed, with `error` if it did not end well.
    mutating func streamClosed(_ error: HTTP2Error?) -> Action {
        let responseStarted: Bool
        switch state {
        case .awaitingHead: responseStarted = false
        case .responding: responseStarted = true
        case .done: return .none
        }
        state = .done
        return .fail(failure(error, responseStarted: responseStarted))
    }

    /// What `error` on the stream means to the exchange, in words naming its peer.
    private func failure(_ error: HTTP2Error?, responseStarted: Bool) -> ExchangeError {
        let reason = error?.description ?? "the stream ended without a response"
        switch (peer, error) {
        case (.agent(let host), .streamReset(_, let code)?):
            return .streamReset(
                code: code.rawValue, reason: "the agent for \(host) reset the request's stream (\(code))")
        case (.app(let target), .streamReset(_, let code)?):
            return .streamReset(code: code.rawValue, reason: "\(target) reset the request's stream (\(code))")
        case (.agent(let host), _):
            return .tunnelLost(host: host, reason: reason)
        case (.app(let target), _):
            return responseStarted
                ? .targetClosedEarly(target: target) : .targetUnreachable(target: target, reason: reason)
        }
    }
}
