import NIOCore
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

/// One request as an HTTP/2 stream this side opens: the relay's to the agent, or the
/// agent's to an h2c app. It is the upstream of the exchange.
final class TunnelStreamUpstream: ExchangeUpstream, HTTP2StreamDelegate {
    private var downstream: (any ExchangeDownstream)?
    private var stream: HTTP2Stream?
    private let peer: StreamPeer
    private var responseStarted = false
    private var ended = false
    /// Whether the whole request (its end) has been handed to the stream.
    private var requestEnded = false
    private var credit = ReceiveCredit()
    private var trailers: HTTPHeaders?

    private init(downstream: any ExchangeDownstream, peer: StreamPeer) {
        self.downstream = downstream
        self.peer = peer
    }

    /// Opens the stream. Must run on the connection's event loop.
    static func start(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, connection: HTTP2Connection,
        peer: StreamPeer? = nil
    ) throws(ExchangeError) -> TunnelStreamUpstream {
        let peer = peer ?? .agent(host: head.authority)
        let upstream = TunnelStreamUpstream(downstream: downstream, peer: peer)
        do {
            let headers: HTTP2Headers
            if case .app = peer { headers = head.appHTTP2Headers } else { headers = head.http2Headers }
            upstream.stream = try connection.openStream(
                headers: headers, endStream: !head.mayHaveBody, delegate: upstream)
        } catch {
            throw upstream.failure(error)
        }
        return upstream
    }

    /// What `error` on the stream means to the exchange.
    private func failure(_ error: HTTP2Error?) -> ExchangeError {
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

    // MARK: ExchangeUpstream (called by the public side)

    var canTakeRequestBody: Bool { stream?.isWritable ?? true }

    func sendBody(_ body: ByteBuffer) {
        stream?.sendData(body)
    }

    func sendEnd(trailers: HTTPHeaders?) {
        requestEnded = true
        stream?.finish(trailers: trailers)
        // The request is complete (see `HTTP2Connection.completedMessage`). The public side
        // ends every request, bodiless ones too, so each is counted here, once.
        stream?.connection.completedMessage()
    }

    func cancel() {
        downstream = nil
        stream?.reset(.cancel)
        stream = nil
    }

    func downstreamWritabilityChanged() {
        if downstream?.canTakeResponseBody ?? true { credit.release(on: stream) }
    }

    // MARK: HTTP2StreamDelegate (called by the tunnel)

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        guard let downstream else { return }
        switch part {
        case .headers(let fields):
            do {
                var head = try ProxyResponseHead(http2: fields)
                head.endsWithHead = stream.headersEndedStream
                responseStarted = true
                downstream.exchangeReceivedHead(consume head)
            } catch {
                fail(error)
            }
        case .data(let data):
            let count = data.readableBytes
            downstream.exchangeReceivedBody(data)
            credit.received(count, on: stream, consumerKeepsUp: downstream.canTakeResponseBody)
        case .trailers(let fields):
            trailers = HTTPHeaders(http2: fields)
        case .end:
            ended = true
            self.downstream = nil
            if !requestEnded {
                // The answer is complete before the request (a 401 or 413 to an upload):
                // the rest of the request is not wanted. Without a reset the stream would
                // stay open on both ends for the tunnel's life, holding one of the agent's
                // concurrent streams; enough of them and every new request waits forever.
                stream.reset(.cancel)
                self.stream = nil
            }
            downstream.exchangeReceivedEnd(trailers: trailers)
        }
    }

    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
        self.stream = nil
        guard !ended else { return }
        fail(failure(error))
    }

    func streamWritabilityChanged(_ stream: HTTP2Stream) {
        downstream?.exchangeUpstreamWritabilityChanged()
    }

    private func fail(_ error: ExchangeError) {
        guard let downstream else { return }
        self.downstream = nil
        stream?.reset(.cancel)
        downstream.exchangeFailed(error)
    }
}
