import NIOCore
import NIOHTTP1

/// Decides which target answers a public request.
public protocol PublicRouter: Sendable {
    /// The target for a request that asked for `host` and arrived on local port
    /// `localPort`; throws `noRoute` (404) or `agentNotConnected` (503).
    func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget
}

/// Serves public HTTP/1.1, with keep-alive and pipelining, and turns each request into
/// an exchange with the target the router picks. It reads requests with
/// `HTTP1RequestParser` (this file) and, as the downstream of the exchange, writes the
/// response back as it comes, framed by `HTTP1MessageWriter` (the `+Response` file):
/// bytes in, bytes out, with no HTTP codec handlers in the pipeline.
public final class PublicRequestHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    // Members without `private` are shared with the response half, in
    // PublicRequestHandler+Response.swift; nothing else in the module uses them.
    private let router: any PublicRouter
    private let requestTimeout: TimeAmount?
    /// A request head, once begun, must be complete within this time; a client that
    /// trickles heads (slowloris) would otherwise hold its connection for ever.
    private let headTimeout: TimeAmount
    private var headTimer: Scheduled<Void>?
    private var idleness: ConnectionIdleness
    private var idleTimer: Scheduled<Void>?
    private var linger = LingeringClose()
    let onComplete: (@Sendable (ExchangeRecord) -> Void)?

    var context: ChannelHandlerContext?
    /// The client's address for X-Forwarded-For: formatting it costs an inet_ntop and a
    /// String, and it cannot change on a connection, so it is done once.
    private lazy var clientAddress: String? = context?.channel.remoteAddress?.ipAddress
    var current: PublicExchange?
    private var parser = HTTP1RequestParser()
    /// Bytes read and not yet parsed: a head split across reads, or requests pipelined
    /// behind one whose response is still going out.
    var input = ByteBuffer()
    /// An error answer is on its way and the connection closes after it.
    var closing = false
    var heldRead = false
    /// The app switched protocols (a WebSocket): bytes now pass both ways as they are.
    var switched = false
    var flushScheduled = false
    var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    /// Pipelined bytes kept while a response goes out; past this, reading stops.
    private static let maximumPipelinedBytes = 64 * 1024

    public init(
        router: any PublicRouter, requestTimeout: TimeAmount? = nil, headTimeout: TimeAmount = .seconds(30),
        idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout,
        onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) {
        self.router = router
        self.requestTimeout = requestTimeout
        self.headTimeout = headTimeout
        self.idleness = ConnectionIdleness(firstRequestLimit: headTimeout, limit: idleTimeout)
        self.onComplete = onComplete
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startIdleClock(context) }
    }

    /// The context holds this handler: keeping it after removal made a cycle that kept
    /// every closed public connection (handler, context, pipeline, buffers) alive.
    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        startIdleClock(context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After an error answer the connection closes once it is written; until then
        // what the client still sends is read and dropped. Left unread, it would make
        // the close a reset, which can destroy the answer before the client reads it.
        if closing {
            linger.rearm(context)
            return
        }
        var bytes = unwrapInboundIn(data)
        if switched {
            current?.upstream?.sendBody(bytes)
            return
        }
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        parseAvailable(context)
    }

    /// Whether the next bytes are a pipelined request that must wait: the one before it
    /// has been read to its end, and its response is not finished.
    private var waitingForResponse: Bool { current?.requestEnded ?? false }

    /// Handles what `input` holds, up to a pipelined request that must wait.
    func parseAvailable(_ context: ChannelHandlerContext) {
        defer { watchHead(context) }
        do {
            while !closing, !waitingForResponse, let event = try parser.next(from: &input) {
                handle(event, context: context)
            }
        } catch {
            let failure = ExchangeError.malformedRequest("the request has \(error.description)")
            if current != nil {
                current?.upstream?.cancel()
                exchangeFailed(failure)
            } else {
                respond(with: failure, version: .http1_1, context: context)
            }
        }
    }

    /// Runs the head timer while part of a head has arrived and the rest is awaited (not
    /// while a pipelined head waits for the response before it: that wait is ours), and
    /// notes when the connection falls idle.
    private func watchHead(_ context: ChannelHandlerContext) {
        let headArriving = !closing && !waitingForResponse && parser.isBetweenRequests && input.readableBytes > 0
        idleness.note(busy: headArriving || current != nil, now: context.eventLoop.now)
        if !headArriving {
            headTimer?.cancel()
            headTimer = nil
        } else if headTimer == nil {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let timeout = headTimeout
            headTimer = context.eventLoop.scheduleTask(in: timeout) {
                handler.value.headTimedOut(after: timeout)
            }
        }
    }

    private func headTimedOut(after timeout: TimeAmount) {
        headTimer = nil
        guard let context, !closing, current == nil else { return }
        respond(
            with: .headTimedOut(seconds: Int(timeout.nanoseconds / 1_000_000_000)), version: .http1_1, context: context)
    }

    /// Closes the connection once it has been idle too long (see `ConnectionIdleness`).
    private func startIdleClock(_ context: ChannelHandlerContext) {
        guard idleTimer == nil, !idleness.hasStartedRequest else { return }
        idleness.note(busy: false, now: context.eventLoop.now)
        scheduleIdleCheck(in: idleness.checkInterval, context)
    }

    private func scheduleIdleCheck(in delay: TimeAmount, _ context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: delay) { handler.value.idleCheckDue() }
    }

    private func idleCheckDue() {
        idleTimer = nil
        guard let context, !closing else { return }
        switch idleness.verdict(now: context.eventLoop.now) {
        case .unlimited:
            return
        case .lookAgain(let delay):
            scheduleIdleCheck(in: delay, context)
        case .expired where unsentBytes(context) > 0:
            // The end of the last answer still waits for a reader that paused: not idle
            // yet. (What the kernel has queued survives a close; what NIO holds would not.)
            idleness.restart(now: context.eventLoop.now)
            scheduleIdleCheck(in: idleness.checkInterval, context)
        case .expired:
            // Nothing is in flight, unread or unsent, so this is a plain close (FIN), as
            // RFC 9112 §9.5 allows. A client may send a request just then and see the
            // connection end: hence the long default, see `defaultIdleTimeout`.
            context.close(promise: nil)
        }
    }

    /// Bytes handed to the channel and not yet taken by the socket.
    private func unsentBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }

    private func handle(_ event: HTTP1RequestParser.Event, context: ChannelHandlerContext) {
        switch event {
        case .head(let head):
            start(head, context: context)
        case .body(let body):
            current?.upstream?.sendBody(body)
        case .end(let trailers):
            guard current != nil else { return }
            current?.requestEnded = true
            // A handshake's request stays open: if the app switches protocols, the client's
            // bytes follow on it (see `exchangeReceivedHead`).
            if current?.head.upgrade == nil { current?.upstream?.sendEnd(trailers: trailers) }
        }
    }

    private func start(_ head: PublicRequestHead, context: ChannelHandlerContext) {
        let proxyHead: ProxyRequestHead
        do {
            proxyHead = try ProxyRequestHead(publicRequest: head, clientAddress: clientAddress)
        } catch {
            respond(with: error, version: head.version, context: context)
            return
        }
        idleness.requestStarted()  // an answer may come within this call, before `watchHead` runs
        var exchange = PublicExchange(
            head: proxyHead, version: head.version, upstream: nil, keepAlive: head.keepAlive, startedAt: .now())
        // A bodiless request is complete with its head; the parser's `.end` follows.
        let localPort = context.channel.localAddress?.port ?? 0
        do {
            let target = try router.target(forHost: proxyHead.authority, localPort: localPort)
            current = exchange
            exchange.upstream = try target.startExchange(proxyHead, downstream: self, on: context.eventLoop)
        } catch {
            current = nil
            respond(with: error, version: head.version, context: context)
            return
        }
        if current != nil {
            current?.upstream = exchange.upstream
            if head.expectsContinue && head.version.minor == 1 {
                // We stream the body on at once, so tell the client to send it now. Only
                // now: a request refused above gets its answer without being sent.
                var interim = context.channel.allocator.buffer(capacity: 32)
                interim.writeStatusLine(version: head.version, status: .continue)
                interim.writeStaticString("\r\n")
                context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
            }
            if let requestTimeout {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                current?.timeout = context.eventLoop.scheduleTask(in: requestTimeout) {
                    handler.value.timedOut(after: requestTimeout)
                }
            }
        }
    }

    private func timedOut(after timeout: TimeAmount) {
        guard let exchange = current, !exchange.responseStarted else { return }
        exchange.upstream?.cancel()
        exchangeFailed(.timedOut(after: timeout))
    }

    /// Answers a request nothing upstream will answer, then closes the connection: any
    /// body or pipelined request behind it is not served.
    func respond(with error: ExchangeError, version: HTTPVersion, context: ChannelHandlerContext) {
        writer.answer(error, version: version) { context.write(wrapOutboundOut($0), promise: nil) }
        closeAfterAnswer(context)
    }

    /// Writes what is gathered, then ends the connection without a reset (see
    /// `LingeringClose`): any body or pipelined request behind the answer is dropped.
    func closeAfterAnswer(_ context: ChannelHandlerContext) {
        closing = true
        releaseHeldRead()
        writeGatheredAndFlush(context).assumeIsolated().whenComplete { _ in
            self.linger.begin(context)
            // After `begin` returns: this may close the channel at once, and so reach
            // `channelInactive`, which cancels the lingering.
            LingeringClose.endOutput(context)
        }
    }

    /// Longer than the hour Envoy keeps an idle upstream connection by default (Istio's
    /// DestinationRule `idleTimeout`): closing a connection that a sidecar may pick for
    /// its next request at that moment would fail that request with a 503.
    public static let defaultIdleTimeout = TimeAmount.minutes(65)

    // MARK: Backpressure on the request body

    public func read(context: ChannelHandlerContext) {
        if mustHoldReads {
            heldRead = true
            return
        }
        context.read()
    }

    /// Reads wait while the upstream cannot take more body, or while pipelined bytes
    /// pile up behind a response. A closing connection reads on (and drops what it reads).
    var mustHoldReads: Bool {
        if closing { return false }
        if let upstream = current?.upstream, !upstream.isWritable { return true }
        return waitingForResponse && input.readableBytes >= Self.maximumPipelinedBytes
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        current?.upstream?.downstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        // Nothing more may start here: a response ending after this (its write failed
        // as the connection died) would otherwise go on to a pipelined request.
        closing = true
        headTimer?.cancel()
        idleTimer?.cancel()
        linger.cancel()
        if let exchange = current {
            current = nil
            exchange.timeout?.cancel()
            exchange.upstream?.cancel()
            if switched { record(exchange) }  // how a switched protocol ends
        }
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if switched, let event = event as? ChannelEvent, event == .inputClosed {
            current?.upstream?.sendEnd(trailers: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension PublicRequestHandler: Sendable {}
