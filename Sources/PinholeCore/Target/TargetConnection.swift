import NIOCore
import NIOHTTP1

/// One keep-alive connection to the target, carrying one exchange at a time.
///
/// It speaks HTTP/1.1 itself, as bytes: `HTTP1MessageWriter` frames the request and
/// `HTTP1ResponseParser` reads the answer, so a small exchange costs one write and one
/// read through the pipeline.
///
/// It also gates reads: while the exchange's downstream cannot take more response
/// body, `read` is held back, so the target is slowed by TCP instead of our memory.
final class TargetConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pool: TargetPool
    private var context: ChannelHandlerContext?
    private var exchange: TargetExchange?
    /// Whether the current exchange came from the idle pool (and so may retry once).
    private var reused = false
    private var responseBytesSeen = false
    private var keepAlive = true
    /// The target answered 101: the connection now carries another protocol's bytes.
    private var switchedProtocols = false
    private var heldRead = false
    private var flushScheduled = false
    private var closed = false
    /// The connection failed (a reset, say) rather than closing cleanly.
    private var failed = false
    private var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    private var parser = HTTP1ResponseParser()
    /// Bytes read but not yet parsed (a head split across reads).
    private var input = ByteBuffer()
    /// The request's head until it is written. Whether a body follows is known at once
    /// when the tunnel stream ended with its HEADERS (a GET); otherwise at the first
    /// body piece, the end, or the end of the event-loop tick, whichever comes first.
    private var unwrittenHead: ProxyRequestHead?

    init(pool: TargetPool) {
        self.pool = pool
    }

    var isReusable: Bool { !closed && exchange == nil && keepAlive && (context?.channel.isActive ?? false) }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: keeping it after removal made a cycle that kept
    /// every closed connection (handler, context, pipeline, channel) alive (issue 20).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func begin(_ exchange: TargetExchange, reused: Bool) {
        guard context != nil else {
            exchange.failToStart(reason: "the connection closed")
            return
        }
        self.exchange = exchange
        self.reused = reused
        responseBytesSeen = false
        let (head, body, end) = exchange.attach(to: self)
        // Whatever the app answers a handshake, its connection is not reused.
        if head.upgrade != nil { keepAlive = false }
        parser.expectResponse(bodyAllowed: head.allowsResponseBody, mayUpgrade: head.upgrade != nil)
        unwrittenHead = head
        for part in body { writeBody(part) }
        if case .some(let trailers) = end {
            writeEnd(trailers: trailers)
        } else if !head.mayHaveBody {
            // Known bodiless (the tunnel stream ended with its HEADERS): the head goes
            // now, and the request's end, already on its way, flushes it.
            writeHeadIfNeeded(hasBody: false)
        } else {
            scheduleFlush()
        }
        resumeReadingIfWanted()
    }

    private func writeHeadIfNeeded(hasBody: Bool) {
        guard let head = unwrittenHead else { return }
        unwrittenHead = nil
        writer.head(request: head, hasBody: hasBody)
    }

    /// Body pieces arrive one HTTP/2 DATA frame (64 KiB at most) at a time, usually
    /// several per event-loop tick; they are flushed together at the end of the tick.
    func writeBody(_ body: ByteBuffer) {
        guard let context else { return }
        writeHeadIfNeeded(hasBody: true)
        writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
        scheduleFlush()
    }

    func writeEnd(trailers: HTTPHeaders?) {
        guard let context else { return }
        writeHeadIfNeeded(hasBody: false)
        writer.end(trailers: trailers)
        if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
        context.flush()
        // The client ended its side of a switched protocol: so do we, after its last bytes.
        if switchedProtocols { context.close(mode: .output, promise: nil) }
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            guard let context = self.context else { return }
            // Still no end and no body: one may follow, so the head announces it.
            self.writeHeadIfNeeded(hasBody: true)
            if let gathered = self.writer.take() { context.write(self.wrapOutboundOut(gathered), promise: nil) }
            context.flush()
        }
    }

    /// The exchange was cancelled: this connection cannot be reused.
    func abort() {
        exchange = nil
        close()
    }

    func close() {
        guard !closed else { return }
        closed = true
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        responseBytesSeen = true
        var bytes = unwrapInboundIn(data)
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        do {
            while !closed, let event = try parser.next(from: &input) { deliver(event) }
        } catch {
            exchange?.receivedInvalidResponse(error)
            abort()
        }
    }

    private func deliver(_ event: HTTP1ResponseParser.Event) {
        switch event {
        case .head(let head, let reusable):
            keepAlive = keepAlive && reusable
            switchedProtocols = head.status == .switchingProtocols
            exchange?.receivedHead(head)
        case .body(let body):
            exchange?.receivedBody(body)
        case .end(let trailers):
            guard let exchange else { return }
            self.exchange = nil
            let requestDone = exchange.requestEnded
            exchange.receivedEnd(trailers: trailers)
            if requestDone && keepAlive && input.readableBytes == 0 {
                pool.release(self)
            } else {
                // The target answered before reading the whole request (or sent more than
                // was asked): the connection's state is unknown, so it is not reused.
                close()
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.downstreamIsWritable {
            heldRead = true
            return
        }
        context.read()
    }

    func resumeReadingIfWanted() {
        guard heldRead, let context, exchange?.downstreamIsWritable ?? true else { return }
        heldRead = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.connectionWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body that runs to the close ends here, unless the connection failed: a reset
        // cuts such a body short, and it must not pass for complete.
        if !failed, let end = parser.endOfInput() { deliver(end) }
        closed = true
        pool.forget(self)
        if let exchange {
            self.exchange = nil
            if reused && !responseBytesSeen && !exchange.sentBody {
                exchange.detachForRetry()
                pool.assign(exchange, mayRetry: false)
            } else {
                exchange.connectionLost()
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        close()
    }
}
