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

    // The handler's work is in extensions, a file per concern (carrying out actions,
    // admission, timers, the downstream): what they use is internal, the rest private.
    let router: any PublicRouter
    private let logger: Logger?
    /// Called once per finished exchange, with its record (see `complete`).
    let onComplete: (@Sendable (ExchangeRecord) -> Void)?
    /// Hears of each request while its answer is awaited, for the request log.
    let watch: RequestWatch?
    var machine: Machine
    var context: ChannelHandlerContext?
    /// The client's address for X-Forwarded-For: formatting it costs an inet_ntop and a
    /// String, and it cannot change on a connection, so it is done once.
    private lazy var clientAddress: String? = context?.channel.remoteAddress?.ipAddress
    lazy var clientGroup = AddressGroup(context?.channel.remoteAddress)
    let inFlight: InFlightLimits?
    /// The exchange in flight. When it ends, its place among the requests in flight is
    /// given back (or its wait in line ends).
    var current: PublicExchange? {
        didSet {
            guard let previous = oldValue, previous.number != current?.number, let inFlight else { return }
            if let slot = previous.slot { inFlight.release(slot) }
            if let ticket = previous.ticket { inFlight.cancel(ticket) }
        }
    }
    private var parser = HTTP1RequestParser()
    /// Bytes read and not yet parsed: a head split across reads, or requests pipelined
    /// behind one whose response is still going out.
    var input = ByteBuffer()
    var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    var timers = ScheduledTimers()
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
    func parseAvailable(_ context: ChannelHandlerContext) {
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

    private var upstreamIsWritable: Bool { current?.upstream?.canTakeRequestBody ?? true }

    func resumeReadingIfHeld() {
        guard let context else { return }
        perform(
            machine.readMayResume(
                upstreamWritable: upstreamIsWritable, bufferedBytes: input.readableBytes, now: context.eventLoop.now))
    }
}

@available(*, unavailable)
extension PublicRequestHandler: Sendable {}
