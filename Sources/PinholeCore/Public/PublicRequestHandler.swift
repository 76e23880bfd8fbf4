import NIOCore
import NIOHTTP1

/// Decides which target answers a public request.
public protocol PublicRouter: Sendable {
    /// The target for a request that asked for `host` and arrived on local port
    /// `localPort`; throws `noRoute` (404) or `agentNotConnected` (503).
    func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget
}

/// Serves public HTTP/1.1 (with keep-alive and pipelining; requests parsed by NIO's
/// decoder) and turns each request into an exchange with the target the router picks.
/// It is the downstream of that exchange: it writes the response back as it comes, as
/// bytes framed by `HTTP1MessageWriter`.
public final class PublicRequestHandler: ChannelDuplexHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let router: any PublicRouter
    private let requestTimeout: TimeAmount?
    private let onComplete: (@Sendable (ExchangeRecord) -> Void)?

    private var context: ChannelHandlerContext?
    /// The client's address for X-Forwarded-For: formatting it costs an inet_ntop and a
    /// String, and it cannot change on a connection, so it is done once.
    private lazy var clientAddress: String? = context?.channel.remoteAddress?.ipAddress
    private var current: Exchange?
    /// Request body parts after an error response was sent; they are discarded.
    private var discardingBody = false
    private var heldRead = false
    private var flushScheduled = false
    private var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    /// Parts of requests that arrived while an earlier response was still going out.
    private var pipelined = CircularBuffer<HTTPServerRequestPart>()
    private static let maximumPipelined = 64

    /// The request in flight on this connection.
    private struct Exchange {
        var head: ProxyRequestHead
        var version: HTTPVersion
        var upstream: (any ExchangeUpstream)?
        var keepAlive: Bool
        var requestEnded = false
        var responseStarted = false
        var status = 0
        var startedAt: NIODeadline
        var timeout: Scheduled<Void>?
    }

    public init(
        router: any PublicRouter, requestTimeout: TimeAmount? = nil,
        onComplete: (@Sendable (ExchangeRecord) -> Void)? = nil
    ) {
        self.router = router
        self.requestTimeout = requestTimeout
        self.onComplete = onComplete
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // A pipelined request waits until the response before it is complete. Queueing
        // it here, rather than holding reads like NIO's pipelining handler does, spares
        // two epoll_ctl calls per request on ordinary keep-alive connections.
        if !pipelined.isEmpty || (current != nil && isHead(part)) {
            pipelined.append(part)
            return
        }
        handle(part, context: context)
    }

    private func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    /// Runs queued pipelined requests once the one before them has been answered.
    private func drainPipelined() {
        guard let context else { return }
        while current == nil, let part = pipelined.popFirst() {
            handle(part, context: context)
        }
        while current != nil, let part = pipelined.first, !isHead(part) {
            pipelined.removeFirst()
            handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            start(head, context: context)
        case .body(let body):
            if discardingBody { return }
            guard let upstream = current?.upstream else { return }
            upstream.sendBody(body)
        case .end(let trailers):
            if discardingBody {
                discardingBody = false
                return
            }
            current?.requestEnded = true
            current?.upstream?.sendEnd(trailers: trailers)
        }
    }

    private func start(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // We stream the body on at once, so tell the client to send it now.
            var interim = context.channel.allocator.buffer(capacity: 32)
            interim.writeStatusLine(version: head.version, status: .continue)
            interim.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
        }
        let proxyHead: ProxyRequestHead
        do {
            var parsed = try ProxyRequestHead(
                publicRequest: head, clientAddress: clientAddress)
            parsed.headers.remove(name: "expect")
            proxyHead = parsed
        } catch {
            respond(with: error, version: head.version, requestHasBody: true, context: context)
            return
        }
        var exchange = Exchange(
            head: proxyHead, version: head.version, upstream: nil, keepAlive: head.isKeepAlive, startedAt: .now())
        let localPort = context.channel.localAddress?.port ?? 0
        do {
            let target = try router.target(forHost: proxyHead.authority, localPort: localPort)
            current = exchange
            exchange.upstream = try target.startExchange(proxyHead, downstream: self, on: context.eventLoop)
        } catch {
            current = nil
            respond(with: error, version: head.version, requestHasBody: true, context: context)
            return
        }
        if current != nil {
            current?.upstream = exchange.upstream
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

    /// Answers a request nothing upstream will answer. When the request's body may
    /// still be arriving, the connection closes after the answer instead of reading it.
    private func respond(
        with error: ExchangeError, version: HTTPVersion, requestHasBody: Bool, context: ChannelHandlerContext
    ) {
        let body = error.body
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: ExchangeError.bodyContentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        writer.head(status: error.status, version: version, headers: headers, hasBody: true, connection: "close")
        writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
        writer.end(trailers: nil)
        writeGatheredAndFlush(context).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        discardingBody = requestHasBody
    }

    // MARK: Backpressure on the request body

    public func read(context: ChannelHandlerContext) {
        if pipelined.count >= Self.maximumPipelined {
            heldRead = true
            return
        }
        if let upstream = current?.upstream, !upstream.isWritable {
            heldRead = true
            return
        }
        context.read()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        current?.upstream?.downstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if let exchange = current {
            current = nil
            exchange.timeout?.cancel()
            exchange.upstream?.cancel()
        }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, current == nil {
            respond(
                with: .malformedRequest(String(describing: error)), version: .http1_1, requestHasBody: false,
                context: context)
        } else {
            context.close(promise: nil)
        }
    }
}

extension PublicRequestHandler: ExchangeDownstream {
    public var isWritable: Bool { context?.channel.isWritable ?? false }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) {
        guard let context, var exchange = current else { return }
        exchange.responseStarted = true
        exchange.status = Int(head.status.code)
        exchange.timeout?.cancel()
        let hasBody = head.hasBody(for: exchange.head)
        let isHTTP10 = exchange.version.minor == 0
        // An HTTP/1.0 client cannot read chunked bodies: without a length, the end of
        // the connection has to mark the end of the body.
        if isHTTP10, hasBody, !head.headers.contains(name: "content-length") {
            exchange.keepAlive = false
        }
        current = exchange
        // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told.
        let connection = !exchange.keepAlive ? "close" : (isHTTP10 ? "keep-alive" : nil)
        writer.head(
            status: head.status, version: exchange.version, headers: head.headers, hasBody: hasBody,
            connection: connection)
        scheduleFlush(context)
    }

    public func exchangeReceivedBody(_ body: ByteBuffer) {
        guard let context else { return }
        writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
        scheduleFlush(context)
    }

    /// Head, body and end usually arrive in the same event-loop tick; flushing once at
    /// the end of it sends them in one write. A stream that trickles (server-sent
    /// events) still goes out within the tick each piece arrives in.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            if let gathered = self.writer.take() { context.write(self.wrapOutboundOut(gathered), promise: nil) }
            context.flush()
        }
    }

    /// Writes what the writer gathered and flushes; the future completes once it is written.
    private func writeGatheredAndFlush(_ context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        context.writeAndFlush(wrapOutboundOut(writer.take() ?? ByteBuffer()))
    }

    public func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        guard let context, let exchange = current else { return }
        current = nil
        record(exchange)
        writer.end(trailers: trailers)
        if !exchange.keepAlive || !exchange.requestEnded {
            // Without keep-alive, or with a request body the application never read, the
            // connection cannot carry another request.
            writeGatheredAndFlush(context).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
        context.flush()
        drainPipelined()
        releaseHeldRead()
    }

    public func exchangeFailed(_ error: ExchangeError) {
        guard let context, var exchange = current else { return }
        current = nil
        exchange.timeout?.cancel()
        if exchange.responseStarted {
            // Too late for an error status: cut the response so the client sees it incomplete.
            context.close(promise: nil)
            return
        }
        exchange.status = Int(error.status.code)
        record(exchange)
        respond(with: error, version: exchange.version, requestHasBody: !exchange.requestEnded, context: context)
    }

    public func exchangeUpstreamWritabilityChanged() {
        releaseHeldRead()
    }

    private func releaseHeldRead() {
        guard heldRead, let context, pipelined.count < Self.maximumPipelined else { return }
        if let upstream = current?.upstream, !upstream.isWritable { return }
        heldRead = false
        context.read()
    }

    private func record(_ exchange: Exchange) {
        onComplete?(ExchangeRecord(request: exchange.head, status: exchange.status, startedAt: exchange.startedAt))
    }
}

@available(*, unavailable)
extension PublicRequestHandler: Sendable {}
