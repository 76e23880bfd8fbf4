import NIOCore
import NIOHTTP1

// MARK: The response, as the upstream sends it

extension PublicConnectionStateMachine {
    /// The response head arrived. `hasBody`: whether a body may follow it (see
    /// `ProxyResponseHead.hasBody(for:)`).
    mutating func responseHeadReceived(_ head: ProxyResponseHead, hasBody: Bool) -> Action {
        guard case .awaitingResponse(var exchange) = state else { return .none }
        exchange.status = Int(head.status.code)
        // An HTTP/1.0 client cannot read chunked bodies: without a length, the end of
        // the connection has to mark the end of the body.
        if exchange.version.minor == 0, hasBody, !head.headers.contains(name: "content-length") {
            exchange.keepAlive = false
        }
        let switches = head.status == .switchingProtocols
        if switches, !exchange.upgradeRequested {
            return fail(.protocolViolation("a switch of protocols that nobody asked for"), cancelUpstream: true)
        }
        if exchange.upgradeRequested {
            // The connection ends with this exchange: its client meant to leave HTTP.
            exchange.keepAlive = false
            if switches {
                state = .switched(exchange)
                return .switchProtocols(head, scheduleFlush: takeFlush())
            }
        }
        state = .streamingResponse(exchange)
        // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told.
        let connection = !exchange.keepAlive ? "close" : (exchange.version.minor == 0 ? "keep-alive" : nil)
        return .writeResponseHead(
            head, version: exchange.version, hasBody: hasBody, connection: connection,
            endRequest: exchange.upgradeRequested, scheduleFlush: takeFlush())
    }

    /// A piece of the response body arrived. (A piece that was on its way when the
    /// exchange failed goes nowhere.)
    mutating func responseBodyReceived(_ body: ByteBuffer) -> Action {
        switch state {
        case .awaitingResponse, .streamingResponse, .switched:
            return .writeResponseBody(body, scheduleFlush: takeFlush())
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none
        }
    }

    /// The response is complete. The connection carries the next request only if the
    /// exchange keeps it alive and its request was read to its end.
    mutating func responseEndReceived(trailers: HTTPHeaders?) -> Action {
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange), .switched(let exchange):
            if exchange.keepAlive, exchange.request == .ended {
                state = .idle
                return .finishResponse(trailers: trailers, status: exchange.status, then: .nextRequest)
            }
            state = .closing(.answering)
            return .finishResponse(trailers: trailers, status: exchange.status, then: .closeAfterAnswer)
        case .initialized, .idle, .headArriving, .closing, .closed:
            return .none
        }
    }

    /// The upstream failed. Before the response head, the client gets an error answer;
    /// after it, the response can only be cut.
    mutating func exchangeFailed(_ error: ExchangeError) -> Action {
        fail(error, cancelUpstream: false)
    }

    /// A closing connection's last answer is written: our side ends, and the lingering
    /// begins.
    mutating func answerWritten(now: NIODeadline) -> Action {
        guard state == .closing(.answering) else { return .none }
        let linger = LingeringClose(answerWrittenAt: now)
        state = .closing(.lingering(linger))
        return .endOutputAndLinger(closeIn: linger.closeDelay(now: now))
    }
}
