import NIOCore
import NIOHTTP1

/// One keep-alive connection to the target, carrying one exchange at a time. Its
/// lifecycle is `TargetConnectionStateMachine`'s; this handler feeds it events and
/// carries out the actions it returns.
///
/// It speaks HTTP/1.1 itself, as bytes: `HTTP1MessageWriter` frames the request and
/// `HTTP1ResponseParser` reads the answer, so a small exchange costs one write and one
/// read through the pipeline.
///
/// It also gates reads: while the exchange's downstream cannot take more response
/// body, `read` is held back, so the target is slowed by TCP instead of our memory.
///
/// It is created for the request it opens for, and joins the channel's pipeline once
/// connected (not in the channel initializer: Happy Eyeballs may open several channels
/// for one connect).
final class TargetConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pool: TargetPool
    private var context: ChannelHandlerContext?
    private var machine: TargetConnectionStateMachine
    /// The request being carried, from its start until its outcome is passed on.
    private var exchange: TargetExchange?
    /// Request body that arrived while the connection was opening.
    private var heldBody: [ByteBuffer] = []
    private var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
    private var parser = HTTP1ResponseParser()
    /// Bytes read but not yet parsed (a head split across reads).
    private var input = ByteBuffer()

    /// A connection to be opened for `exchange`; `ended` when the request's end has
    /// already come (it is sent again after a pooled connection proved dead).
    init(pool: TargetPool, opening exchange: TargetExchange, ended: Bool = false) {
        self.pool = pool
        self.exchange = exchange
        self.machine = TargetConnectionStateMachine(opening: .init(exchange.head), ended: ended)
    }

    var isReusable: Bool { machine.isIdle && (context?.channel.isActive ?? false) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            perform(machine.connected())
        } else {
            perform(machine.connectFailed(reason: "the connection closed"))
        }
    }

    /// The context holds this handler: keeping it after removal made a cycle that kept
    /// every closed connection (handler, context, pipeline, channel) alive (issue 20).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func connectFailed(reason: String) {
        perform(machine.connectFailed(reason: reason))
    }

    /// A request on this connection, taken idle from the pool.
    func start(_ exchange: TargetExchange) {
        self.exchange = exchange
        perform(machine.start(.init(exchange.head)))
    }

    // MARK: From the exchange (calls for an exchange this connection no longer carries are dropped)

    func isWritable(for exchange: TargetExchange) -> Bool {
        guard let context else { return machine.mayHoldMore }
        return context.channel.isWritable
    }

    func sendBody(_ body: ByteBuffer, of exchange: TargetExchange) {
        guard exchange === self.exchange else { return }
        perform(machine.requestBody(body))
    }

    func sendEnd(of exchange: TargetExchange) {
        guard exchange === self.exchange else { return }
        perform(machine.requestEnd())
    }

    func cancel(_ exchange: TargetExchange) {
        guard exchange === self.exchange else { return }
        perform(machine.cancel())
    }

    func downstreamWritabilityChanged(of exchange: TargetExchange) {
        guard exchange === self.exchange else { return }
        perform(machine.downstreamWritable())
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        machine.bytesReceived()
        var bytes = unwrapInboundIn(data)
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        do {
            while !machine.isClosed, let event = try parser.next(from: &input) {
                switch event {
                case .head(let head, let reusable):
                    perform(machine.responseHead(head, reusable: reusable))
                case .body(let body):
                    perform(machine.responseBody(body))
                case .end(let trailers):
                    perform(machine.responseEnd(trailers: trailers, inputLeft: input.readableBytes > 0))
                }
            }
        } catch {
            perform(machine.invalidResponse(error))
        }
    }

    func read(context: ChannelHandlerContext) {
        perform(machine.read(downstreamWritable: exchange?.downstream?.canTakeResponseBody ?? true))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(machine.channelWritabilityChanged())
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body that runs to the close ends here, unless the connection failed (the
        // machine then is closed already): a reset cuts such a body short.
        perform(machine.channelInactive(bodyEndsHere: parser.endOfInput() != nil))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(machine.errorCaught())
    }

    // MARK: Actions

    private func perform(_ action: TargetConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .holdBody(let body):
            heldBody.append(body)
        case .startRequest(let writeHead, let replayEnd, let scheduleFlush):
            startRequest(writeHead: writeHead, replayEnd: replayEnd, scheduleFlush: scheduleFlush)
        case .writeBody(let body, let writeHead, let scheduleFlush):
            guard let context, let exchange else { return }
            if writeHead { writer.head(request: exchange.head, hasBody: true) }
            writer.body(body) { context.write(wrapOutboundOut($0), promise: nil) }
            if scheduleFlush { self.scheduleFlush(context) }
        case .writeEnd(let writeHead, let closeOutput):
            guard let context, let exchange else { return }
            if writeHead { writer.head(request: exchange.head, hasBody: false) }
            writer.end(trailers: exchange.trailers)
            if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
            context.flush()
            // The client ended its side of a switched protocol: so do we, after its last bytes.
            if closeOutput { context.close(mode: .output, promise: nil) }
        case .flush(let writeHead):
            guard let context else { return }
            if writeHead, let exchange { writer.head(request: exchange.head, hasBody: true) }
            if let gathered = writer.take() { context.write(wrapOutboundOut(gathered), promise: nil) }
            context.flush()
        case .read:
            context?.read()
        case .forwardHead(let head):
            exchange?.downstream?.exchangeReceivedHead(head)
        case .forwardBody(let body):
            exchange?.downstream?.exchangeReceivedBody(body)
        case .forwardEnd(let trailers, let then):
            takeExchange()?.end(trailers: trailers)
            switch then {
            case .release: pool.release(self)
            case .close: close()
            case .nothing: break
            }
        case .forwardWritability:
            exchange?.downstream?.exchangeUpstreamWritabilityChanged()
        case .fail(let failure, let close):
            takeExchange()?.fail(failure)
            if close { self.close() }
        case .retry(let ended, let close):
            if let exchange = takeExchange() { pool.retry(exchange, ended: ended) }
            if close { self.close() }
        case .dropRequest:
            takeExchange()
        case .dropRequestAndClose:
            takeExchange()
            close()
        case .joinPool:
            pool.release(self)
        case .leavePool:
            pool.forget(self)
        case .close:
            close()
        }
    }

    private func startRequest(writeHead: Bool, replayEnd: Bool, scheduleFlush: Bool) {
        guard let context, let exchange else { return }
        // The request reaches the app now (the inspector's "queued" time ends here).
        exchange.downstream?.exchangeRequestDelivered()
        let head = exchange.head
        parser.expectResponse(bodyAllowed: head.allowsResponseBody, mayUpgrade: head.upgrade != nil)
        if writeHead { writer.head(request: head, hasBody: false) }
        let held = heldBody
        heldBody = []
        for body in held { perform(machine.requestBody(body)) }
        if replayEnd { perform(machine.requestEnd()) }
        if scheduleFlush { self.scheduleFlush(context) }
    }

    /// Body pieces arrive one HTTP/2 DATA frame (64 KiB at most) at a time, usually
    /// several per event-loop tick; they are flushed together at the end of the tick.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().execute {
            self.perform(self.machine.flushDue())
        }
    }

    /// The exchange leaves this connection; nothing of it is held here any more.
    @discardableResult
    private func takeExchange() -> TargetExchange? {
        defer {
            exchange = nil
            heldBody = []
        }
        return exchange
    }

    func close() {
        pool.forget(self)
        context?.close(promise: nil)
    }
}
