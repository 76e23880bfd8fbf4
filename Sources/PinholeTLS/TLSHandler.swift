import NIOCore

/// Events the TLS handler sends up the pipeline.
public enum TLSEvent: Sendable, Equatable {
    /// The handshake finished; application data may flow. Carries the agreed ALPN id.
    case handshakeCompleted(negotiatedProtocol: String?)
    /// The pinned certificate matched, but its validity ended at `notAfter`; sent just
    /// before `handshakeCompleted`. The connection goes on: the pin is what is trusted.
    case pinnedCertificateExpired(notAfter: String)
}

/// Drives OpenSSL for one connection, in the client or server role.
///
/// Ciphertext from the channel goes into the `TLSConnection`; decrypted bytes go up
/// the pipeline. Plaintext writes are held until `flush`, then encrypted together
/// (small writes share records) and written as one ciphertext buffer, so the
/// channel's own outbound buffer and writability are the only backpressure needed.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle, handshaking, active
        /// The peer sent close_notify; we may still write (half-closure).
        case inputClosed
        /// We sent close_notify and are closing the channel.
        case closing
        case closed
    }

    /// Records carry at most 16 KiB; writes smaller than this are merged before encryption.
    private static let recordSize = 16 * 1024
    /// Unflushed plaintext beyond this is encrypted and handed down without waiting for flush.
    private static let eagerEncryptionThreshold = 64 * 1024
    /// How long a full close waits for its close_notify (and what was queued before it)
    /// to reach the socket. A peer that stopped reading would otherwise keep the
    /// connection open for as long as its TCP stays up.
    public static let closeTimeout = TimeAmount.seconds(5)

    private let tlsContext: TLSContext
    private let serverName: String?
    private var connection: TLSConnection?
    private var state = State.idle
    // Small to start: an idle tunnel holds one of these, and a burst grows it.
    private var pendingWrites = CircularBuffer<(data: ByteBuffer, promise: EventLoopPromise<Void>?)>(initialCapacity: 4)
    /// How many of `pendingWrites`, from the front, have been flushed.
    private var flushedWriteCount = 0
    /// Plaintext bytes in `pendingWrites`.
    private var pendingBytes = 0
    /// The most plaintext ever held here at once; tests assert it stays bounded.
    private(set) var peakPendingBytes = 0
    private var coalescing: ByteBuffer?
    /// Completes when our close_notify has been written.
    private var closeNotifyWritten: EventLoopFuture<Void>?

    /// `serverName` is what a client connects to: it is sent as SNI and checked
    /// against the certificate. Servers pass nil.
    public init(context: TLSContext, serverName: String? = nil) {
        self.tlsContext = context
        self.serverName = serverName
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        do {
            connection = try TLSConnection(
                context: tlsContext, serverName: serverName, allocator: context.channel.allocator)
        } catch {
            state = .closed
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard state == .idle, connection != nil else { return }
        state = .handshaking
        // A client speaks first; a server's first call just waits for input.
        if !tlsContext.isServer { advanceHandshake(context: context) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .handshaking:
            context.fireErrorCaught(TLSError.handshakeFailed(reason: "the peer closed the connection"))
        case .active:
            context.fireErrorCaught(TLSError.truncated)
        case .idle, .inputClosed, .closing, .closed:
            break
        }
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var ciphertext = unwrapInboundIn(data)
        guard let connection, state == .handshaking || state == .active else { return }
        connection.buffers.receive(&ciphertext)
        if state == .handshaking { advanceHandshake(context: context) }
        if state == .active { decryptAvailable(context: context, connection: connection) }
        connection.releaseIdleBuffers()
        writeCiphertext(context: context, promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // TCP said no more bytes. After close_notify that is the expected end (already
            // reported); before it, the stream was cut short.
            if state == .inputClosed || state == .closing || state == .closed { return }
            fail(
                context: context,
                with: state == .active ? .truncated : .handshakeFailed(reason: "the peer closed the connection"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Handshake

    private func advanceHandshake(context: ChannelHandlerContext) {
        guard let connection else { return }
        switch connection.handshake() {
        case .wantsInput:
            writeCiphertext(context: context, promise: nil)
        case .failed(let error):
            // Send the alert OpenSSL queued, so the peer learns why, then close.
            writeCiphertext(context: context, promise: nil)
            fail(context: context, with: error)
        case .complete:
            let negotiated = connection.negotiatedProtocol
            if !tlsContext.isServer, !tlsContext.applicationProtocols.isEmpty,
                negotiated.map({ !tlsContext.applicationProtocols.contains($0) }) ?? true
            {
                fail(
                    context: context,
                    with: .applicationProtocolMismatch(
                        offered: tlsContext.applicationProtocols, selected: negotiated))
                return
            }
            state = .active
            writeCiphertext(context: context, promise: nil)
            if let notAfter = connection.expiredPinNotAfter {
                context.fireUserInboundEventTriggered(TLSEvent.pinnedCertificateExpired(notAfter: notAfter))
            }
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(negotiatedProtocol: negotiated))
            if flushedWriteCount > 0 { encryptPendingWrites(context: context, count: flushedWriteCount, flush: true) }
        }
    }

    // MARK: Reading

    private func decryptAvailable(context: ChannelHandlerContext, connection: TLSConnection) {
        while true {
            // Plaintext is never longer than the ciphertext it came from.
            let capacity = max(connection.buffers.inboundBytes, 2048)
            // At most 64 KiB at a time: such buffers come from malloc's heap, larger ones
            // from fresh mappings that fault in page by page.
            var plaintext = context.channel.allocator.buffer(capacity: min(capacity, 64 * 1024))
            let result = connection.read(into: &plaintext)
            if plaintext.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(plaintext))
            }
            switch result {
            case nil:
                continue  // the buffer filled up; more may be waiting
            case .wantsInput:
                return
            case .closeNotify:
                receivedCloseNotify(context: context)
                return
            case .failed(let error):
                writeCiphertext(context: context, promise: nil)
                fail(context: context, with: error)
                return
            }
        }
    }

    private func receivedCloseNotify(context: ChannelHandlerContext) {
        let halfClosureAllowed =
            (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
        if halfClosureAllowed {
            state = .inputClosed
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            // Answer with our own close_notify, then close: an orderly end for both sides.
            close(context: context, mode: .all, promise: nil)
        }
    }

    // MARK: Writing

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard state != .closing, state != .closed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let data = unwrapOutboundIn(data)
        pendingWrites.append((data, promise))
        pendingBytes += data.readableBytes
        peakPendingBytes = max(peakPendingBytes, pendingBytes)
        // Plaintext held here is invisible to the channel's writability. Past a
        // threshold, encrypt it now and pass the ciphertext down unflushed, so a writer
        // that only checks `isWritable` still stops in time.
        if pendingBytes >= Self.eagerEncryptionThreshold, state == .active || state == .inputClosed {
            encryptPendingWrites(context: context, count: pendingWrites.count, flush: false)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        flushedWriteCount = pendingWrites.count
        guard state == .active || state == .inputClosed else { return }
        encryptPendingWrites(context: context, count: flushedWriteCount, flush: true)
    }

    /// Encrypts the first `count` pending writes into one ciphertext buffer and writes it.
    private func encryptPendingWrites(context: ChannelHandlerContext, count: Int, flush: Bool) {
        guard let connection else { return }
        var combinedPromise: EventLoopPromise<Void>?
        var failure: TLSError?
        var plaintextBytes = 0
        for index in pendingWrites.indices.prefix(count) {
            plaintextBytes += pendingWrites[index].data.readableBytes
        }
        connection.buffers.reserveOutbound(forPlaintext: plaintextBytes)
        pendingBytes -= plaintextBytes
        flushedWriteCount = max(0, flushedWriteCount - count)
        for remaining in (0..<count).reversed() {
            let (data, promise) = pendingWrites.removeFirst()
            if let promise {
                if let combinedPromise {
                    combinedPromise.futureResult.cascade(to: promise)
                } else {
                    combinedPromise = promise
                }
            }
            guard failure == nil else { continue }
            failure = encrypt(data, connection: connection, isLast: remaining == 0)
        }
        // Idle connections should not keep a record-sized scratch buffer each.
        coalescing = nil
        if let failure {
            combinedPromise?.fail(failure)
            fail(context: context, with: failure)
            return
        }
        writeCiphertext(context: context, promise: combinedPromise, flush: flush ? .always : .never)
        connection.buffers.releaseLargeOutbound()
    }

    /// Small writes wait in `coalescing` so that several share one TLS record. A lone
    /// write (the usual case: HTTP/2 hands over one buffer per flush, two when a
    /// response's trailers follow its body in the same flush) is not copied.
    private func encrypt(_ data: ByteBuffer, connection: TLSConnection, isLast: Bool) -> TLSError? {
        var data = data
        if isLast, coalescing == nil || coalescing!.readableBytes == 0 {
            if case .failed(let error) = connection.write(data) { return error }
            return nil
        }
        if data.readableBytes < Self.recordSize {
            if coalescing == nil { coalescing = ByteBufferAllocator().buffer(capacity: Self.recordSize) }
            coalescing!.writeBuffer(&data)
            if coalescing!.readableBytes < Self.recordSize && !isLast { return nil }
            return encryptCoalesced(connection: connection)
        }
        if let failure = encryptCoalesced(connection: connection) { return failure }
        if case .failed(let error) = connection.write(data) { return error }
        return nil
    }

    private func encryptCoalesced(connection: TLSConnection) -> TLSError? {
        guard let pending = coalescing, pending.readableBytes > 0 else { return nil }
        let step = connection.write(pending)
        coalescing!.clear()
        if case .failed(let error) = step { return error }
        return nil
    }

    /// When `writeCiphertext` flushes: reads and the handshake flush only what they
    /// produced; a flush from above also pushes ciphertext encrypted early, unflushed.
    private enum FlushMode {
        case never, ifWritten, always
    }

    private func writeCiphertext(
        context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: FlushMode = .ifWritten
    ) {
        if let ciphertext = connection?.buffers.takeOutbound() {
            context.write(wrapOutboundOut(ciphertext), promise: promise)
            if flush != .never { context.flush() }
        } else {
            promise?.succeed(())
            if flush == .always { context.flush() }
        }
    }

    // MARK: Closing

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            context.close(mode: .input, promise: promise)
        case .output:
            sendCloseNotify(context: context) { context.close(mode: .output, promise: promise) }
        case .all:
            let handshakeDone = state == .active || state == .inputClosed || state == .closing
            if state != .closed { state = .closing }
            failPendingWrites(ChannelError.ioOnClosedChannel)
            if handshakeDone {
                // Whichever comes first: the close_notify written, or the timeout.
                let ready = context.eventLoop.makePromise(of: Void.self)
                let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeTimeout) {
                    ready.succeed(())
                }
                sendCloseNotify(context: context) {
                    timeout.cancel()
                    ready.succeed(())
                }
                ready.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: .all, promise: promise) }
            } else {
                context.close(mode: .all, promise: promise)
            }
        }
    }

    /// Writes close_notify and runs `then` once it has reached the socket (or failed
    /// to). Writes are ordered, so by then everything written before it has gone too:
    /// closing never drops data that was already handed to us.
    private func sendCloseNotify(context: ChannelHandlerContext, then: @escaping () -> Void) {
        if let closeNotifyWritten {
            closeNotifyWritten.assumeIsolated().whenComplete { _ in then() }
            return
        }
        guard let connection, connection.handshakeComplete, case .complete = connection.shutdown(),
            let ciphertext = connection.buffers.takeOutbound()
        else {
            then()
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        closeNotifyWritten = written.futureResult
        context.writeAndFlush(wrapOutboundOut(ciphertext), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in then() }
    }

    private func fail(context: ChannelHandlerContext, with error: TLSError) {
        guard state != .closed, state != .closing else { return }
        state = .closing
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPendingWrites(_ error: Error) {
        flushedWriteCount = 0
        pendingBytes = 0
        while let (_, promise) = pendingWrites.popFirst() {
            promise?.fail(error)
        }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
