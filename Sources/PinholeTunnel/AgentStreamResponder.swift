import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2

/// The agent's side of one tunnelled request: the relay opened an HTTP/2 stream, and
/// this forwards it to the target as the downstream of a target exchange.
public final class AgentStreamResponder: HTTP2StreamDelegate, ExchangeDownstream {
    private let target: any ExchangeTarget
    private let requestTimeout: TimeAmount?
    private var timeout: Scheduled<Void>?
    private let onComplete: (@Sendable (ExchangeRecord) -> Void)?
    /// Hears of the request while its answer is awaited, for the request log.
    private let watch: RequestWatch?
    private var waiting: RequestWatch.Ticket?
    private var waitingID: Int?
    private var bytesIn = 0
    private var bytesOut = 0
    /// The response's Content-Length, to say how much of it a cut left out.
    private var expectedBytesOut: Int?
    private var outcome = ExchangeRecord.Outcome.complete
    private var stream: HTTP2Stream?
    private var upstream: (any ExchangeUpstream)?
    private var request: ProxyRequestHead?
    private var responseStarted = false
    private var responseEnded = false
    private var status = 0
    private var credit = ReceiveCredit()
    /// Request trailers, passed on with the end of the request.
    private var trailers: HTTPHeaders?
    private let startedAt = NIODeadline.now()

    public init(
        stream: HTTP2Stream, target: any ExchangeTarget, requestTimeout: TimeAmount? = nil,
        watch: RequestWatch? = nil, onComplete: (@Sendable (ExchangeRecord) -> Void)?
    ) {
        self.stream = stream
        self.target = target
        self.requestTimeout = requestTimeout
        self.watch = watch
        self.onComplete = onComplete
    }

    // MARK: HTTP2StreamDelegate (the relay's request)

    public func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        switch part {
        case .headers(let fields):
            do {
                var head = try ProxyRequestHead(http2: fields)
                head.mayHaveBody = !stream.headersEndedStream
                request = head
                waiting = watch?.begin(method: head.method.rawValue, path: head.path, startedAt: startedAt)
                upstream = try target.startExchange(head, downstream: self, on: stream.connection.eventLoop)
                if let requestTimeout, !responseStarted {
                    timeout = stream.connection.eventLoop.assumeIsolated().scheduleTask(in: requestTimeout) {
                        guard !self.responseStarted else { return }
                        self.upstream?.cancel()
                        self.exchangeFailed(.timedOut(after: requestTimeout))
                    }
                }
            } catch {
                exchangeFailed(error)
            }
        case .data(let data):
            let count = data.readableBytes
            bytesIn += count
            guard let upstream else {
                stream.consumed(count)
                return
            }
            upstream.sendBody(data)
            credit.received(count, on: stream, consumerKeepsUp: upstream.isWritable)
        case .trailers(let fields):
            trailers = HTTPHeaders(http2: fields)
        case .end:
            upstream?.sendEnd(trailers: trailers)
        }
    }

    public func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
        self.stream = nil
        timeout?.cancel()
        if !responseEnded {
            // The relay gave up (its client went away, or the tunnel dropped). For a
            // switched protocol (a WebSocket) that is how it ends.
            if status != 101 { outcome = .abandoned(reason: Self.abandonment(error)) }
            finish()
            upstream?.cancel()
        }
        upstream = nil
    }

    public func streamWritabilityChanged(_ stream: HTTP2Stream) {
        upstream?.downstreamWritabilityChanged()
    }

    // MARK: ExchangeDownstream (the target's response)

    public var isWritable: Bool { stream?.isWritable ?? true }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) {
        guard let stream, let request else { return }
        responseStarted = true
        timeout?.cancel()
        stopWaiting()
        status = Int(head.status.code)
        let hasBody = head.hasBody(for: request)
        if hasBody { expectedBytesOut = head.headers.first(name: "content-length").flatMap { Int($0) } }
        stream.sendHeaders(head.http2Headers, endStream: !hasBody)
        if !hasBody {
            finish()
            stream.connection.completedMessage()
        }
    }

    public func exchangeReceivedBody(_ body: ByteBuffer) {
        bytesOut += body.readableBytes
        stream?.sendData(body)
    }

    public func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        guard !responseEnded, let stream else { return }
        stream.finish(trailers: trailers)
        finish()
        // The response is complete: the relay can answer its client while this loop
        // serves other requests.
        stream.connection.completedMessage()
    }

    public func exchangeFailed(_ error: ExchangeError) {
        guard !responseEnded, let stream else { return }
        if responseStarted {
            // Headers are out: all we can do is cut the stream, so the caller sees it incomplete.
            stream.reset(.internalError)
            outcome = .cutShort(error, expected: expectedBytesOut)
        } else {
            let body = error.body
            stream.sendHeaders([
                (":status", String(error.status.code)), ("content-type", ExchangeError.bodyContentType),
                ("content-length", String(body.readableBytes)),
            ])
            stream.sendData(body, endStream: true)
            status = Int(error.status.code)
            bytesOut = body.readableBytes
            outcome = .answeredByPinhole(error)
        }
        finish()
    }

    public func exchangeUpstreamWritabilityChanged() {
        if upstream?.isWritable ?? true { credit.release(on: stream) }
    }

    private func finish() {
        guard !responseEnded else { return }
        responseEnded = true
        timeout?.cancel()
        stopWaiting()
        if let onComplete, let request {
            onComplete(
                ExchangeRecord(
                    request: request, status: status, startedAt: startedAt, bytesIn: bytesIn, bytesOut: bytesOut,
                    outcome: outcome, waitingID: waitingID))
        }
    }

    private func stopWaiting() {
        guard let ticket = waiting, let watch else { return }
        waiting = nil
        waitingID = watch.end(ticket)
    }

    /// Why the relay ended a stream whose response was not complete, for the log.
    private static func abandonment(_ error: HTTP2Error?) -> String {
        switch error {
        case .streamReset(_, let code) where code == .cancel:
            // What the relay sends when its client leaves.
            return "the client went away"
        case .streamReset, .streamResetLocally, .none:
            return "the relay ended the request (\(error.map { "\($0)" } ?? "stream closed"))"
        default:
            return "tunnel went down"
        }
    }
}
