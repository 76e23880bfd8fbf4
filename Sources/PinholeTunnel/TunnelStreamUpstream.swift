import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2

/// The relay's side of one tunnelled request: an HTTP/2 stream it opens to the agent,
/// acting as the upstream of the public connection's exchange.
final class TunnelStreamUpstream: ExchangeUpstream, HTTP2StreamDelegate {
    private var downstream: (any ExchangeDownstream)?
    private var stream: HTTP2Stream?
    private let host: String
    private var ended = false
    /// Whether the whole request (its end) has been handed to the stream.
    private var requestEnded = false
    private var credit = ReceiveCredit()
    private var trailers: HTTPHeaders?

    private init(downstream: any ExchangeDownstream, host: String) {
        self.downstream = downstream
        self.host = host
    }

    /// Opens the stream. Must run on the connection's event loop.
    static func start(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, connection: HTTP2Connection
    ) throws(ExchangeError) -> TunnelStreamUpstream {
        let upstream = TunnelStreamUpstream(downstream: downstream, host: head.authority)
        do {
            upstream.stream = try connection.openStream(
                headers: head.http2Headers, endStream: !head.mayHaveBody, delegate: upstream)
        } catch {
            throw .tunnelLost(host: head.authority, reason: error.description)
        }
        return upstream
    }

    // MARK: ExchangeUpstream (called by the public side)

    var isWritable: Bool { stream?.isWritable ?? true }

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
        if downstream?.isWritable ?? true { credit.release(on: stream) }
    }

    // MARK: HTTP2StreamDelegate (called by the tunnel)

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        guard let downstream else { return }
        switch part {
        case .headers(let fields):
            do {
                downstream.exchangeReceivedHead(try ProxyResponseHead(http2: fields))
            } catch {
                fail(error)
            }
        case .data(let data):
            let count = data.readableBytes
            downstream.exchangeReceivedBody(data)
            credit.received(count, on: stream, consumerKeepsUp: downstream.isWritable)
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
        fail(.tunnelLost(host: host, reason: error?.description ?? "the stream ended without a response"))
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
