import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2

/// One request as an HTTP/2 stream this side opens: the relay's to the agent, or the
/// agent's to an h2c app. It is the upstream of the exchange. Its life is
/// `OutgoingStreamStateMachine`'s; this carries out what that says, and holds the stream
/// and the downstream until it says to let go of them (or the stream closes).
final class TunnelStreamUpstream: ExchangeUpstream, HTTP2StreamDelegate {
    private var downstream: (any ExchangeDownstream)?
    private var stream: HTTP2Stream?
    private var machine: OutgoingStreamStateMachine
    private var credit = ReceiveCredit()

    private init(downstream: any ExchangeDownstream, peer: StreamPeer) {
        self.downstream = downstream
        self.machine = OutgoingStreamStateMachine(peer: peer)
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
            throw upstream.machine.openFailed(error)
        }
        return upstream
    }

    // MARK: ExchangeUpstream (called by the public side)

    var canTakeRequestBody: Bool { stream?.isWritable ?? true }

    func sendBody(_ body: ByteBuffer) {
        stream?.sendData(body)
    }

    func sendEnd(trailers: HTTPHeaders?) {
        perform(machine.requestEnded(), requestTrailers: trailers)
    }

    func cancel() {
        perform(machine.downstreamWentAway())
    }

    func downstreamWritabilityChanged() {
        if downstream?.canTakeResponseBody ?? true { credit.release(on: stream) }
    }

    // MARK: HTTP2StreamDelegate (called by the tunnel)

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        switch part {
        case .headers(let fields):
            // Asked first: a head after a cancel is not even read.
            guard case .pass = machine.responseHeadReceived() else { return }
            do {
                var head = try ProxyResponseHead(http2: fields)
                head.endsWithHead = stream.headersEndedStream
                downstream?.exchangeReceivedHead(consume head)
            } catch {
                perform(machine.responseHeadInvalid(error))
            }
        case .data(let data):
            guard case .pass = machine.responseBodyReceived(), let downstream else { return }
            let count = data.readableBytes
            downstream.exchangeReceivedBody(data)
            credit.received(count, on: stream, consumerKeepsUp: downstream.canTakeResponseBody)
        case .trailers(let fields):
            perform(machine.responseTrailersReceived(HTTPHeaders(http2: fields)))
        case .end:
            perform(machine.responseEnded())
        }
    }

    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
        self.stream = nil
        perform(machine.streamClosed(error))
    }

    func streamWritabilityChanged(_ stream: HTTP2Stream) {
        downstream?.exchangeUpstreamWritabilityChanged()
    }

    /// Carries out what the machine decided. The downstream, and the stream when it is
    /// reset, are let go of before the downstream hears its last, which may start its
    /// next request at once.
    private func perform(_ action: OutgoingStreamStateMachine.Action, requestTrailers: HTTPHeaders? = nil) {
        switch action {
        case .none, .pass:
            break
        case .finishRequest:
            stream?.finish(trailers: requestTrailers)
            // The request is complete (see `HTTP2Connection.completedMessage`). The public
            // side ends every request, bodiless ones too, so each is counted here, once.
            stream?.connection.completedMessage()
        case .deliverEnd(let trailers, let resetStream):
            if resetStream { letGoOfStream() }
            letGoOfDownstream()?.exchangeReceivedEnd(trailers: trailers)
        case .fail(let error):
            letGoOfStream()
            letGoOfDownstream()?.exchangeFailed(error)
        case .cancelStream:
            letGoOfStream()
            downstream = nil
        }
    }

    /// Resets the stream, if it is still open, and lets go of it.
    private func letGoOfStream() {
        stream?.reset(.cancel)
        stream = nil
    }

    private func letGoOfDownstream() -> (any ExchangeDownstream)? {
        defer { downstream = nil }
        return downstream
    }
}
