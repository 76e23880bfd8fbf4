import NIOCore
import NIOHTTP1

// MARK: Carrying out the machine's actions

extension PublicRequestHandler {
    func perform(_ action: Machine.Action) {
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
}
