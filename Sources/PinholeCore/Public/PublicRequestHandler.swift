import Logging
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
/// `HTTP1RequestParser` and, as the downstream of the exchange, writes the response
/// back as it comes, framed by `HTTP1MessageWriter`: bytes in, bytes out, with no HTTP
/// codec handlers in the pipeline.
///
/// What happens when is decided by `PublicConnectionStateMachine`: each event goes to
/// the machine, and the handler carries out the action it returns (`perform`).
public final class PublicRequestHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer
    typealias Machine = PublicConnectionStateMachine

    private let router: any PublicRouter
    private let logger: Logger?
    /// Called once per finished exchange, with its record (see `complete`).
    private let onComplete: (@Sendable (ExchangeRecord) -> Void)?
    /// Hears of each request while its answer is awaited, for the request log.
    private let watch: RequestWatch?
    private var machine: Machine
    private var context: ChannelHandlerContext?
    /// The client's address for X-Forwarded-For: formatting it costs an inet_ntop and a
    /// String, and it cannot change on a connection, so it is done once.
    private lazy var clientAddress: String? = context?.channel.remoteAddress?.ipAddress
    private lazy var clientGroup = AddressGroup(context?.channel.remoteAddress)
    private let inFlight: InFlightLimits?
    /// The exchange in flight. When it ends, its place among the requests in flight is
    /// given back (or its wait in line ends).
    private var current: PublicExchange? {
        didSet {
            guard let previous = oldValue, previous.number != current?.number, let inFlight else { return }
            if let slot = previous.slot { inFlight.release(slot) }
            if let ticket = previous.ticket { inFlight.cancel(ticket) }
        }
    }
    private var parser = HTTP1RequestParser()
    /// Bytes read and not yet parsed: a head split across reads, or requests pipelined
    /// behind one whose response is still going out.
    private var input = ByteBuffer()
    private var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    private var timers = ScheduledTimers()
    /// `http`, or `https` behind TLS: what X-Forwarded-Proto and the tunnel's `:scheme` say.
    private let scheme: String

    /// `headTimeout`: a request head, once begun, must be complete within this time; a
    /// client that trickles heads (slowloris) would otherwise hold its connection for
    /// ever. `logger` hears, at debug level, why connections end on errors.
    public init(
        router: any PublicRouter, requestTimeout: TimeAmount? = nil, headTimeout: TimeAmount = .seconds(30),
        idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout, limits: PublicLimits = PublicLimits(),
        logger: Logger? = nil, scheme: String = "http", watch: RequestWatch? = nil,
        onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) {
        self.router = router
        self.scheme = scheme
        self.logger = logger
        self.inFlight = limits.inFlight
        self.watch = watch
        self.machine = Machine(
            headTimeout: headTimeout, idleTimeout: idleTimeout, requestTimeout: requestTimeout,
            stallTimeout: limits.stallTimeout)
        self.onComplete = onComplete
    }

    /// Longer than the hour Envoy keeps an idle upstream connection by default (Istio's
    /// DestinationRule `idleTimeout`): closing a connection that a sidecar may pick for
    /// its next request at that moment would fail that request with a 503.
    public static let defaultIdleTimeout = TimeAmount.minutes(65)

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { perform(machine.channelActive(now: context.eventLoop.now)) }
    }

    /// The context holds this handler: keeping it after removal made a cycle that kept
    /// every closed public connection (handler, context, pipeline, buffers) alive.
    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        perform(machine.channelActive(now: context.eventLoop.now))
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.bytesReceived(unwrapInboundIn(data), now: context.eventLoop.now))
    }

    public func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(upstreamWritable: upstreamIsWritable, bufferedBytes: input.readableBytes))
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        machine.downstreamWritabilityChanged(writable: context.channel.isWritable, now: context.eventLoop.now)
        current?.upstream?.downstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { perform(machine.inputClosed()) }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        perform(machine.channelInactive())
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Clients that reset their connections are common: the metadata (strings) is
        // made only if someone reads it.
        if let logger, logger.logLevel <= .debug {
            var metadata: Logger.Metadata = [
                "client": "\(clientAddress ?? "unknown")", "while": "\(machine.state)", "error": "\(error)",
            ]
            if let current { metadata["request"] = "\(current.head.method.rawValue) \(current.head.path)" }
            logger.debug("closing a public connection after an error", metadata: metadata)
        }
        perform(machine.errorCaught())
    }

    // MARK: Reading requests

    /// Parses what `input` holds, up to a pipelined request that must wait.
    private func parseAvailable(_ context: ChannelHandlerContext) {
        do {
            while machine.isReadyForRequestBytes, let event = try parser.next(from: &input) {
                switch event {
                case .head(let head): receivedHead(head)
                case .body(let body): perform(machine.requestBodyReceived(body))
                case .end(let trailers): perform(machine.requestEndReceived(trailers: trailers))
                }
            }
        } catch {
            perform(
                machine.requestMalformed(
                    error == .headTooLarge
                        ? .headTooLarge(limit: HeadLimits.maximumHeaderListSize)
                        : .malformedRequest("the request has \(error.description)")))
        }
        let headBytesPending = parser.isBetweenRequests && input.readableBytes > 0
        perform(machine.parsingPaused(headBytesPending: headBytesPending, now: context.eventLoop.now))
    }

    private func receivedHead(_ head: PublicRequestHead) {
        do {
            let proxyHead = try ProxyRequestHead(publicRequest: head, clientAddress: clientAddress, scheme: scheme)
            perform(
                machine.requestHeadReceived(
                    proxyHead, version: head.version, keepAlive: head.keepAlive, expectsContinue: head.expectsContinue))
        } catch {
            perform(machine.requestRefused(error, version: head.version))
        }
    }

    /// Starts exchange `number` with the target the router picks, once it has a place
    /// among the requests in flight.
    private func startExchange(_ head: ProxyRequestHead, number: Int, _ context: ChannelHandlerContext) {
        current = PublicExchange(number: number, head: head, startedAt: .now(), watch: watch)
        let localPort = context.channel.localAddress?.port ?? 0
        let target: any ExchangeTarget
        do {
            target = try router.target(forHost: head.authority, localPort: localPort)
        } catch {
            perform(machine.exchangeRefused(number: number, error))
            return
        }
        guard let inFlight else { return begin(head, number: number, target: target, context) }
        let tunnel = InFlightLimits.tunnel(of: target)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let admission = inFlight.admit(address: clientGroup, tunnel: tunnel) { slot in
            loop.execute { handler.value.admitted(number: number, slot: slot) }
        }
        switch admission {
        case .admitted(let slot):
            current?.slot = slot
            begin(head, number: number, target: target, context)
        case .waiting(let ticket, let limit):
            current?.ticket = ticket
            current?.target = target
            perform(machine.exchangeQueued(number: number, limit: limit, wait: inFlight.caps.waitLimit))
        case .refused(let limit):
            perform(machine.exchangeRefused(number: number, .tooManyInFlight(limit, waited: .zero)))
        }
    }

    /// A place freed up for request `number`, waiting in line.
    private func admitted(number: Int, slot: InFlightLimits.Slot) {
        guard let context, let exchange = current, exchange.number == number, exchange.slot == nil,
            let target = exchange.target
        else {
            inFlight?.release(slot)  // it stopped waiting meanwhile
            return
        }
        current?.slot = slot
        current?.ticket = nil
        current?.target = nil
        perform(machine.exchangeAdmitted(number: number))
        begin(exchange.head, number: number, target: target, context)
        parseAvailable(context)
        resumeReadingIfHeld()
    }

    /// The target may answer, or fail, within `startExchange`: the exchange is `current` before.
    private func begin(
        _ head: ProxyRequestHead, number: Int, target: any ExchangeTarget, _ context: ChannelHandlerContext
    ) {
        do {
            let upstream = try target.startExchange(head, downstream: self, on: context.eventLoop)
            if current?.number == number { current?.upstream = upstream }
            perform(machine.exchangeStarted(number: number, now: context.eventLoop.now))
        } catch {
            perform(machine.exchangeRefused(number: number, error))
        }
    }

    private var upstreamIsWritable: Bool { current?.upstream?.isWritable ?? true }

    private func resumeReadingIfHeld() {
        guard let context else { return }
        perform(
            machine.readMayResume(
                upstreamWritable: upstreamIsWritable, bufferedBytes: input.readableBytes, now: context.eventLoop.now))
    }

    // MARK: Carrying out the machine's actions

    private func perform(_ action: Machine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .read:
            context.read()
        case .parse(var bytes):
            if input.readableBytes == 0 {
                input = bytes
            } else {
                input.writeBuffer(&bytes)
            }
            parseAvailable(context)
        case .passThrough(let bytes):
            current?.bytesIn += bytes.readableBytes
            current?.upstream?.sendBody(bytes)
        case .discard(let closeIn):
            if let closeIn { schedule(.linger, in: closeIn, context) }
        case .startExchange(let head, let number):
            startExchange(head, number: number, context)
        case .exchangeUnderWay(let sendContinue, let requestTimeout, let stallCheckIn):
            if let stallCheckIn { schedule(.stall, in: stallCheckIn, context) }
            if sendContinue {
                var interim = context.channel.allocator.buffer(capacity: 32)
                interim.writeStatusLine(version: .http1_1, status: .continue)
                interim.writeStaticString("\r\n")
                context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
            }
            if let requestTimeout { schedule(.request, in: requestTimeout, context) }
        case .sendBody(let body):
            current?.bytesIn += body.readableBytes
            current?.upstream?.sendBody(body)
        case .sendEnd(let trailers):
            current?.upstream?.sendEnd(trailers: trailers)
        case .writeResponseHead(let head, let version, let hasBody, let connection, let endRequest, let flush):
            timers.cancel(.request)
            if endRequest { current?.upstream?.sendEnd(trailers: nil) }
            writer.head(
                status: head.status, version: version, headers: head.headers, hasBody: hasBody, connection: connection)
            if flush { scheduleFlush(context) }
        case .switchProtocols(let head, let flush):
            timers.cancel(.request)
            switchProtocols(head, flush: flush, context)
        case .writeResponseBody(let body, let flush):
            current?.bytesOut += body.readableBytes
            writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
            if flush { scheduleFlush(context) }
        case .finishResponse(let trailers, let status, let then):
            timers.cancel(.request)
            complete(status: status, .complete)
            writer.end(trailers: trailers)
            switch then {
            case .nextRequest:
                if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
                context.flush()
                parseAvailable(context)
                resumeReadingIfHeld()
            case .closeAfterAnswer:
                closeAfterAnswer(context)
            }
        case .flush:
            if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
            context.flush()
        case .answerAndClose(let error, let version, let record, let cancelUpstream):
            timers.cancel(.request)
            if cancelUpstream { current?.upstream?.cancel() }
            current?.bytesOut = error.body.readableBytes
            if let record { complete(status: record, .answeredByPinhole(error)) }
            current = nil
            writer.answer(error, version: version) { context.write(wrapOutboundOut($0), promise: nil) }
            closeAfterAnswer(context)
        case .cut(let cancelUpstream, let record):
            timers.cancel(.request)
            if cancelUpstream { current?.upstream?.cancel() }
            complete(record)
            // What the response got to (gathered for this tick's flush) goes out first:
            // the client sees the head and the bytes that came, then the cut.
            if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
            context.flush()
            context.close(promise: nil)
        case .endOutputAndLinger(let closeIn):
            // The timer first: ending our side may close the channel at once, and so
            // reach `channelInactive`, which cancels it.
            schedule(.linger, in: closeIn, context)
            endOutput(context)
        case .close:
            context.close(promise: nil)
        case .tearDown(let cancelUpstream, let record):
            timers.cancelAll()
            if cancelUpstream { current?.upstream?.cancel() }
            if let record { complete(record) }
            current = nil
        case .schedule(let timer, let delay):
            schedule(timer, in: delay, context)
        case .cancel(let timer):
            timers.cancel(timer)
        }
    }

    /// Records the exchange in flight, answered with `status`, and lets it go.
    private func complete(status: Int, _ outcome: ExchangeRecord.Outcome) {
        guard var exchange = current else { return }
        current = nil
        exchange.stopWaiting(watch)
        onComplete?(exchange.record(status: status, outcome: outcome))
    }

    /// Records the exchange in flight as the machine says, and lets it go.
    private func complete(_ recording: Machine.Recording) {
        switch recording {
        case .complete(let status):
            complete(status: status, .complete)
        case .cutShort(let status, let error):
            complete(status: status, .cutShort(error, expected: current?.expectedBytesOut))
        case .abandoned(let status):
            complete(status: status, .abandoned(reason: "the client went away"))
        }
    }

    /// Answers 101 and from then on passes bytes as they are: what the client sent early
    /// first, then whatever it sends.
    private func switchProtocols(_ head: ProxyResponseHead, flush: Bool, _ context: ChannelHandlerContext) {
        // A client that ends its side (FIN) may still read: its end goes on, in order,
        // after what it sent (see `userInboundEventTriggered`).
        try? context.channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        writer.switchingProtocols(to: head.upgrade ?? current?.head.upgrade ?? "websocket", headers: head.headers)
        // Written now, so that body pieces passed on whole cannot overtake it.
        if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
        if flush { scheduleFlush(context) }
        if input.readableBytes > 0 {
            let early = input
            input = ByteBuffer()
            current?.upstream?.sendBody(early)
        }
        resumeReadingIfHeld()
    }

    /// A stream that trickles (server-sent events) still goes out within the tick each
    /// piece arrives in. The task captures only `self` (the context is read back from
    /// it): a closure over a single object needs no allocated context, one over two
    /// does, per response.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().execute { self.perform(self.machine.flushDue()) }
    }

    /// Writes what is gathered; once it is written, the machine decides how to end.
    private func closeAfterAnswer(_ context: ChannelHandlerContext) {
        resumeReadingIfHeld()
        context.writeAndFlush(wrapOutboundOut(writer.take() ?? ByteBuffer())).assumeIsolated().whenComplete { _ in
            self.perform(self.machine.answerWritten(now: context.eventLoop.now))
        }
    }

    /// Ends our side of the connection (see `LingeringClose`).
    private func endOutput(_ context: ChannelHandlerContext) {
        let outputClosed = context.eventLoop.makePromise(of: Void.self)
        outputClosed.futureResult.assumeIsolated().whenComplete { result in
            // A channel that cannot half-close (or already closed) closes outright.
            if case .failure = result { context.close(promise: nil) }
        }
        context.close(mode: .output, promise: outputClosed)
    }

    // MARK: Timers

    private func schedule(_ timer: Machine.Timer, in delay: TimeAmount, _ context: ChannelHandlerContext) {
        timers.cancel(timer)
        timers[timer] = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { self.timerFired(timer) }
    }

    private func timerFired(_ timer: Machine.Timer) {
        timers[timer] = nil
        guard let context else { return }
        perform(machine.timerFired(timer, now: context.eventLoop.now, unsentBytes: unsentBytes(context)))
    }

    /// Bytes handed to the channel and not yet taken by the socket.
    private func unsentBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }
}

// MARK: The downstream of the exchange

extension PublicRequestHandler: ExchangeDownstream {
    public var isWritable: Bool { context?.channel.isWritable ?? false }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) {
        let hasBody = current.map { head.hasBody(for: $0.head) } ?? false
        if current != nil {
            current?.stopWaiting(watch)
            if hasBody { current?.expectedBytesOut = head.headers.first(name: "content-length").flatMap { Int($0) } }
        }
        perform(machine.responseHeadReceived(head, hasBody: hasBody))
    }

    public func exchangeReceivedBody(_ body: ByteBuffer) {
        perform(machine.responseBodyReceived(body))
    }

    public func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        perform(machine.responseEndReceived(trailers: trailers))
    }

    public func exchangeFailed(_ error: ExchangeError) {
        perform(machine.exchangeFailed(error))
    }

    public func exchangeUpstreamWritabilityChanged() {
        resumeReadingIfHeld()
    }
}

/// One scheduled task per timer of `PublicConnectionStateMachine`.
private struct ScheduledTimers {
    private var head, idle, request, linger, queue, stall: Scheduled<Void>?

    subscript(timer: PublicConnectionStateMachine.Timer) -> Scheduled<Void>? {
        get {
            switch timer {
            case .head: return head
            case .idle: return idle
            case .request: return request
            case .linger: return linger
            case .queue: return queue
            case .stall: return stall
            }
        }
        set {
            switch timer {
            case .head: head = newValue
            case .idle: idle = newValue
            case .request: request = newValue
            case .linger: linger = newValue
            case .queue: queue = newValue
            case .stall: stall = newValue
            }
        }
    }

    mutating func cancel(_ timer: PublicConnectionStateMachine.Timer) {
        self[timer]?.cancel()
        self[timer] = nil
    }

    mutating func cancelAll() {
        for timer in PublicConnectionStateMachine.Timer.allCases { cancel(timer) }
    }
}

@available(*, unavailable)
extension PublicRequestHandler: Sendable {}
