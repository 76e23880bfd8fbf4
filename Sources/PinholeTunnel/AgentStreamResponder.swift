import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2

/// Where the requests of incoming HTTP/2 streams go.
public enum StreamRoute: Sendable {
    /// To one target: the agent's app (streams the relay opened through the tunnel).
    case target(any ExchangeTarget)
    /// A public HTTP/2 client's streams: `router` picks the target by `:authority` as it
    /// does by Host for HTTP/1.1, and the request gets X-Forwarded-* fields.
    case publicSide(router: any PublicRouter, clientAddress: String?, scheme: String, localPort: Int)

    /// The X-Forwarded-* fields this route's requests get: none through the tunnel.
    var forwarding: ForwardingFields? {
        guard case .publicSide(_, let clientAddress, let scheme, _) = self else { return nil }
        return ForwardingFields(clientAddress: clientAddress, scheme: scheme)
    }
}

/// One incoming HTTP/2 stream forwarded as the downstream of an exchange: at the agent,
/// a stream the relay opened through the tunnel, sent on to the app; on the public side
/// (relay or embedded), a public HTTP/2 client's stream, sent on to the tunnel or app.
///
/// Failures before the response reach a gRPC call as `grpc-status` (see
/// `ExchangeError.grpcTrailersOnly`), others as a plain status and body; a reset on
/// the way passes on as a reset with the same code.
public final class AgentStreamResponder: HTTP2StreamDelegate, ExchangeDownstream {
    /// Where the answer to the stream is.
    private enum ResponsePhase {
        /// Nothing sent yet: a failure can still be answered in full (a status, or a
        /// gRPC trailers-only answer), and the request timeout runs.
        case awaited
        /// Its head is on its way: a failure can only cut the stream.
        case started
        /// Complete, cut, or answered by Pinhole: logged once, and nothing more is sent.
        case ended
    }

    private let route: StreamRoute
    private let requestTimeout: TimeAmount?
    private var timeout: Scheduled<Void>?
    private var onComplete: (@Sendable (ExchangeRecord) -> Void)?
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
    /// Set once, with what is derived from it, by `accept`.
    private var request: ProxyRequestHead?
    /// Whether the request is a gRPC call, worked out once (`isGRPC` searches the headers).
    private var isGRPC = false
    /// What the response's body depends on, kept apart so that answering does not copy
    /// the whole request (a copy retains each of its fields).
    private var responseMayHaveBody: ResponseBodyRule?
    private var response = ResponsePhase.awaited
    /// Where the request's body goes, and how its end is told (see the machine).
    private var requestSide = IncomingRequestStateMachine()
    private var status = 0
    /// The call's `grpc-status`, once the response's headers or trailers carried one.
    private var grpcStatus: Int?
    private var credit = ReceiveCredit()
    /// Request trailers, passed on with the end of the request.
    private var trailers: HTTPHeaders?
    private let startedAt = NIODeadline.now()

    public convenience init(
        stream: HTTP2Stream, target: any ExchangeTarget, requestTimeout: TimeAmount? = nil,
        watch: RequestWatch? = nil, onComplete: (@Sendable (ExchangeRecord) -> Void)?
    ) {
        self.init(
            stream: stream, route: .target(target), requestTimeout: requestTimeout, watch: watch,
            onComplete: onComplete)
    }

    public init(
        stream: HTTP2Stream, route: StreamRoute, requestTimeout: TimeAmount? = nil, watch: RequestWatch? = nil,
        onComplete: (@Sendable (ExchangeRecord) -> Void)?
    ) {
        self.stream = stream
        self.route = route
        self.requestTimeout = requestTimeout
        self.watch = watch
        self.onComplete = onComplete
    }

    // MARK: HTTP2StreamDelegate (the relay's request)

    public func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        switch part {
        case .headers(let fields):
            do throws(ExchangeError) {
                var head = try ProxyRequestHead(http2: fields, forwarding: route.forwarding)
                head.mayHaveBody = !stream.headersEndedStream
                let target: any ExchangeTarget
                switch route {
                case .target(let only):
                    accept(head)
                    target = only
                    // The relay's control streams are not requests of the app's, for its log.
                    if head.scheme == TunnelControl.scheme { onComplete = nil }
                case .publicSide(let router, _, let scheme, let localPort):
                    head.scheme = scheme
                    head.clientProtocol = .http2
                    // HTTP/2 has no Upgrade; a client's own tunnel field means nothing here.
                    head.upgrade = nil
                    // The forwarding fields count too: over the tunnel's limit, a 431 now
                    // rather than a reset on the way (as on the HTTP/1.1 side).
                    guard head.headerListSize <= HeadLimits.maximumHeaderListSize else {
                        throw ExchangeError.headTooLarge(limit: HeadLimits.maximumHeaderListSize)
                    }
                    accept(head)
                    target = try router.target(forHost: head.authority, localPort: localPort)
                }
                if onComplete != nil {
                    waiting = watch?.begin(method: head.method.rawValue, path: head.path, startedAt: startedAt)
                }
                upstream = try target.startExchange(head, downstream: self, on: stream.connection.eventLoop)
                if let requestTimeout, response == .awaited {
                    timeout = stream.connection.eventLoop.assumeIsolated().scheduleTask(in: requestTimeout) {
                        guard self.response == .awaited else { return }
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
            // Once the answer is complete, the rest is dropped (see the machine).
            switch requestSide.bodyReceived(upstreamTakesIt: upstream != nil && response != .ended) {
            case .passOn: break
            case .drop:
                stream.consumed(count)
                return
            case .ignore: return
            }
            guard let upstream else { return }
            upstream.sendBody(data)
            credit.received(count, on: stream, consumerKeepsUp: upstream.canTakeRequestBody)
        case .trailers(let fields):
            trailers = HTTPHeaders(http2: fields)
        case .end:
            switch requestSide.ended() {
            case .sendEnd: upstream?.sendEnd(trailers: trailers)
            case .cancelUpstream: upstream?.cancel()
            case .none: break
            }
        }
    }

    public func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
        self.stream = nil
        timeout?.cancel()
        let requestAction = requestSide.streamClosed()
        if response != .ended {
            // The relay gave up (its client went away, or the tunnel dropped). For a
            // switched protocol (a WebSocket) that is how it ends.
            if status != 101 { outcome = .abandoned(reason: Self.abandonment(error)) }
            finish()
            upstream?.cancel()
        } else if requestAction == .cancelUpstream {
            // Answered, but the request never ended (see the machine).
            upstream?.cancel()
        }
        upstream = nil
    }

    public func streamWritabilityChanged(_ stream: HTTP2Stream) {
        upstream?.downstreamWritabilityChanged()
    }

    // MARK: ExchangeDownstream (the target's response)

    public var canTakeResponseBody: Bool { stream?.isWritable ?? true }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) {
        // (Interim heads, 100 and 103, are dropped before they reach here; a 101 is final.)
        guard let stream, let responseMayHaveBody, response != .ended else { return }
        response = .started
        timeout?.cancel()
        stopWaiting()
        status = Int(head.status.code)
        if isGRPC, let value = head.headers.first(name: "grpc-status") { grpcStatus = Int(value) }
        let hasBody = responseMayHaveBody.allowsBody(in: head) && !head.endsWithHead
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
        guard response != .ended, let stream else { return }
        if isGRPC, let value = trailers?.first(name: "grpc-status") { grpcStatus = Int(value) }
        stream.finish(trailers: trailers)
        finish()
        // The response is complete: the relay can answer its client while this loop
        // serves other requests.
        stream.connection.completedMessage()
    }

    public func exchangeFailed(_ error: ExchangeError) {
        guard response != .ended, let stream else { return }
        let responseStarted = response == .started
        // A cut goes after what the response has queued (its HEADERS may not be written
        // yet): the caller sees the head and the body so far, then the reset.
        if case .streamReset(let code, _) = error {
            // A reset on the way (the app's, or the agent's) passes on as itself: a gRPC
            // client reads CANCEL, REFUSED_STREAM and the rest as distinct statuses.
            stream.resetAfterQueued(HTTP2ErrorCode(rawValue: code))
            if !responseStarted { status = Int(error.status.code) }
            outcome = responseStarted ? .cutShort(error, expected: expectedBytesOut) : .answeredByPinhole(error)
        } else if responseStarted, case .clientStalled = error {
            // What is queued waits for the very window the client does not give: cut now.
            stream.reset(.internalError)
            outcome = .cutShort(error, expected: expectedBytesOut)
        } else if responseStarted {
            // Headers are on their way: all we can do is cut the stream, so the caller sees it incomplete.
            stream.resetAfterQueued(.internalError)
            outcome = .cutShort(error, expected: expectedBytesOut)
        } else if isGRPC {
            stream.sendHeaders(error.grpcTrailersOnly, endStream: true)
            status = 200
            grpcStatus = error.grpcStatus
            outcome = .answeredByPinhole(error)
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
        // A peer being stopped gets no window back (see the machine's `stopping`).
        guard requestSide.givesWindowBack else { return }
        if upstream?.canTakeRequestBody ?? true { credit.release(on: stream) }
    }

    /// The request is known: kept for the log, with what its response depends on.
    private func accept(_ head: ProxyRequestHead) {
        isGRPC = head.isGRPC
        responseMayHaveBody = ResponseBodyRule(head)
        request = head
    }

    private func finish() {
        guard response != .ended else { return }
        // Answered before the request's end: once the answer is out, its sender is asked
        // to stop (RST_STREAM NO_ERROR), rather than send the rest only to have it
        // dropped; the window held back for the app is not given back, which would only
        // invite more (see the machine).
        if requestSide.answerCompleted() {
            stream?.stopPeerOnceEnded()
        } else {
            credit.release(on: stream)
        }
        response = .ended
        timeout?.cancel()
        stopWaiting()
        if let onComplete, let request {
            onComplete(
                ExchangeRecord(
                    request: request, status: status, startedAt: startedAt, bytesIn: bytesIn, bytesOut: bytesOut,
                    outcome: outcome, grpcStatus: grpcStatus, waitingID: waitingID))
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
