import NIOCore
import NIOHTTP1

/// One keep-alive connection to the target, carrying one exchange at a time.
///
/// It also gates reads: while the exchange's downstream cannot take more response
/// body, `read` is held back, so the target is slowed by TCP instead of our memory.
final class TargetConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: TargetPool
    private var context: ChannelHandlerContext?
    private var exchange: TargetExchange?
    /// Whether the current exchange came from the idle pool (and so may retry once).
    private var reused = false
    private var responseBytesSeen = false
    private var keepAlive = true
    private var heldRead = false
    private var flushScheduled = false
    private var closed = false

    init(pool: TargetPool) {
        self.pool = pool
    }

    var isReusable: Bool { !closed && exchange == nil && keepAlive && (context?.channel.isActive ?? false) }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func begin(_ exchange: TargetExchange, reused: Bool) {
        guard let context else {
            exchange.failToStart(reason: "the connection closed")
            return
        }
        self.exchange = exchange
        self.reused = reused
        responseBytesSeen = false
        let (head, body, end) = exchange.attach(to: self)
        keepAlive = head.isKeepAlive
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        for part in body { context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil) }
        if case .some(let trailers) = end { context.write(wrapOutboundOut(.end(trailers)), promise: nil) }
        context.flush()
        resumeReadingIfWanted()
    }

    /// Body pieces arrive one HTTP/2 DATA frame (64 KiB at most) at a time, usually
    /// several per event-loop tick; they are flushed together at the end of the tick.
    func writeBody(_ body: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    func writeEnd(trailers: HTTPHeaders?) {
        context?.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
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
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx responses are interim; the final response follows on the same exchange.
            if head.status.code < 200 { return }
            keepAlive = keepAlive && head.isKeepAlive
            exchange?.receivedHead(head)
        case .body(let body):
            exchange?.receivedBody(body)
        case .end(let trailers):
            guard let exchange else { return }
            self.exchange = nil
            let requestDone = exchange.requestEnded
            exchange.receivedEnd(trailers: trailers)
            if requestDone && keepAlive {
                pool.release(self)
            } else {
                // The target answered before reading the whole request: the connection's
                // state is unknown, so it is not reused.
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
        close()
    }
}
