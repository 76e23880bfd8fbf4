import NIOCore
import NIOHTTP1

// The response half of `PublicRequestHandler`: as the downstream of an exchange, it
// writes the answer back to the public client as it comes, framed by
// `HTTP1MessageWriter`, and after a 101 passes bytes both ways as they are.

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
        if head.status == .switchingProtocols, exchange.head.upgrade == nil {
            exchange.upstream?.cancel()
            return exchangeFailed(.protocolViolation("a switch of protocols that nobody asked for"))
        }
        if exchange.head.upgrade != nil {
            // The connection ends with this exchange: its client meant to leave HTTP.
            exchange.keepAlive = false
            if head.status == .switchingProtocols {
                current = exchange
                startSwitchedProtocol(head, context: context)
                return
            }
            // Declined: the handshake was an ordinary request after all, and ends here.
            exchange.upstream?.sendEnd(trailers: nil)
        }
        current = exchange
        // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told.
        let connection = !exchange.keepAlive ? "close" : (isHTTP10 ? "keep-alive" : nil)
        writer.head(
            status: head.status, version: exchange.version, headers: head.headers, hasBody: hasBody,
            connection: connection)
        scheduleFlush(context)
    }

    /// Answers 101 and from then on passes bytes as they are: what the client sent early
    /// first, then whatever it sends.
    private func startSwitchedProtocol(_ head: ProxyResponseHead, context: ChannelHandlerContext) {
        switched = true
        // A client that ends its side (FIN) may still read: its end goes on, in order,
        // after what it sent (see `userInboundEventTriggered`).
        try? context.channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        writer.switchingProtocols(to: head.upgrade ?? current?.head.upgrade ?? "websocket", headers: head.headers)
        // Written now, so that body pieces passed on whole cannot overtake it.
        if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
        scheduleFlush(context)
        if input.readableBytes > 0 {
            let early = input
            input = ByteBuffer()
            current?.upstream?.sendBody(early)
        }
        releaseHeldRead()
    }

    public func exchangeReceivedBody(_ body: ByteBuffer) {
        // A piece that was on its way when the exchange failed goes nowhere.
        guard let context, current != nil else { return }
        writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
        scheduleFlush(context)
    }

    /// Head, body and end usually arrive in the same event-loop tick; flushing once at
    /// the end of it sends them in one write. A stream that trickles (server-sent
    /// events) still goes out within the tick each piece arrives in.
    func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        // The task captures only `self` (the context is read back from it): a closure over
        // a single object needs no allocated context, one over two does, per response.
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            guard let context = self.context else { return }
            if let gathered = self.writer.take() { context.write(self.wrapOutboundOut(gathered), promise: nil) }
            context.flush()
        }
    }

    /// Writes what the writer gathered and flushes; the future completes once it is written.
    func writeGatheredAndFlush(_ context: ChannelHandlerContext) -> EventLoopFuture<Void> {
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
            closeAfterAnswer(context)
            return
        }
        if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
        context.flush()
        parseAvailable(context)
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
        respond(with: error, version: exchange.version, context: context)
    }

    public func exchangeUpstreamWritabilityChanged() {
        releaseHeldRead()
    }

    func releaseHeldRead() {
        guard heldRead, let context, !mustHoldReads else { return }
        heldRead = false
        context.read()
    }

    func record(_ exchange: PublicExchange) {
        onComplete?(ExchangeRecord(request: exchange.head, status: exchange.status, startedAt: exchange.startedAt))
    }
}
