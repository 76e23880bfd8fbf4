internal import CNghttp2
import NIOCore

extension HTTP2Connection {
    /// Creates the nghttp2 session and queues our SETTINGS (and, for a client, the preface).
    func start(context: ChannelHandlerContext) throws(HTTP2Error) {
        guard session == nil else { return }
        self.context = context
        var option: OpaquePointer?
        try check(nghttp2_option_new(&option), "creating session options")
        defer { nghttp2_option_del(option) }
        // Window updates follow what consumers actually take (see `HTTP2Stream.consumed`).
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, max(configuration.maxHeaderListSize, 16 * 1024))
        nghttp2_option_set_stream_reset_rate_limit(
            option, UInt64(configuration.streamResetBurst), UInt64(configuration.streamResetsPerSecond))

        let callbacks = try makeSessionCallbacks()
        defer { nghttp2_session_callbacks_del(callbacks) }
        var created: OpaquePointer?
        let userData = Unmanaged.passUnretained(self).toOpaque()
        var memory = makeSessionMemory()
        let result = withUnsafeMutablePointer(to: &memory) { memory in
            role == .client
                ? nghttp2_session_client_new3(&created, callbacks, userData, option, memory)
                : nghttp2_session_server_new3(&created, callbacks, userData, option, memory)
        }
        try check(result, "creating an HTTP/2 session")
        session = created

        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: UInt32(configuration.maxConcurrentStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(configuration.streamWindowSize)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: UInt32(configuration.maxFrameSize)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(configuration.maxHeaderListSize)),
            // RFC 9218: no RFC 7540 priority tree. nghttp2 then schedules streams without
            // a dependency tree and keeps no closed streams for it.
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
        ]
        if role == .client {
            settings.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
        }
        try check(
            nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count),
            "queueing SETTINGS")
        // The connection window is returned as soon as DATA arrives; per-stream windows
        // are what bound memory, so one stalled stream never starves the others.
        try check(
            nghttp2_session_set_local_window_size(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, 1 << 30),
            "enlarging the connection window")
        carryOut(machine.sessionStarted())
    }

    private func check(_ result: Int32, _ operation: String) throws(HTTP2Error) {
        guard result == 0 else { throw .library(operation: operation, code: result) }
    }

    /// Feeds bytes from the peer to nghttp2 and delivers what they meant.
    func receive(_ buffer: ByteBuffer) {
        guard case .receive = machine.readStarted(), let session else { return }
        var returned = HTTP2ConnectionStateMachine.Action.none
        let result = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress else { return 0 }
            currentInput = (UnsafeRawPointer(base), buffer)
            machine.sessionCallStarted()
            defer {
                returned = machine.sessionCallReturned()
                currentInput = nil
            }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        var consumed: Int32 = 0
        if connectionBytesToConsume > 0 {
            consumed = nghttp2_session_consume_connection(session, connectionBytesToConsume)
            connectionBytesToConsume = 0
            machine.moreToSend()
        }
        carryOut(returned)
        if result < 0 {
            terminate(
                with: .protocolViolation(lastProtocolComplaint ?? String(cString: nghttp2_strerror(Int32(result)))))
        } else if consumed != 0 {
            terminate(with: .library(operation: "returning the connection window", code: consumed))
        }
    }

    func channelReadComplete() {
        carryOut(machine.readCompleted())
    }

    func writabilityChanged(isWritable: Bool) {
        carryOut(machine.writabilityChanged(isWritable: isWritable))
    }

    /// Sends what nghttp2 has ready, once per event-loop tick no matter how many
    /// streams asked: many frames go out in one write (and so in few TLS records).
    func scheduleSend() {
        guard case .scheduleFlush = machine.sendRequested() else { return }
        eventLoop.assumeIsolated().execute { [self] in
            carryOut(machine.flushTaskFired())
        }
    }

    func flushOutput() {
        guard let session, let context else { return }
        var wrote = false
        var action = machine.flushStarted(isWritable: context.channel.isWritable)
        while case .sendPass = action {
            let (result, written) = sendPass(session, context)
            wrote = wrote || written > 0
            // Flushed together with the passes after it, or at once (see `passWrote`).
            carryOut(machine.passWrote(written, coalescingUpTo: Self.coalescedFlushLimit))
            action = machine.sendPassFinished(
                failure: result == 0 ? nil : .library(operation: "sending frames", code: result),
                isWritable: context.channel.isWritable)
        }
        carryOut(machine.passesEnded())
        if case .terminate = action {
            carryOut(action)
            return
        }
        // Keep the buffer while frames flow. A tunnel going quiet (no stream open, or a
        // call that found nothing to send) lets a large one go: hundreds of idle tunnels
        // should not each hold one. A small one stays: a connection whose requests are
        // all answered at each flush (h2load's, or the agent's to its app) would otherwise
        // grow a new buffer by doubling on every flush, about 1% of the agent's CPU.
        if (streams.isEmpty && outbound.capacity > Self.keptOutboundCapacity)
            || (!wrote && outbound.capacity > 16 * 1024)
        {
            outbound = ByteBuffer()
        }
        closeIfDrained()
    }

    /// One send pass written even when the channel is not writable, for a connection
    /// about to close: `flushOutput` would wait for writability, and the close would then
    /// drop what nghttp2 still holds. nghttp2 puts control frames (GOAWAY) before DATA.
    func sendFinalFrames() {
        guard let session, let context else { return }
        // The connection closes next whatever happened; a failure here changes nothing.
        // The flush is unconditional: it also sends what the pass of an outer
        // `flushOutput` wrote before the delegates that pass ran ended the connection, not
        // yet counted (`passWrote`); the close would drop it unflushed.
        _ = sendPass(session, context)
        _ = machine.passesEnded()
        context.flush()
    }

    /// One `nghttp2_session_send`: writes (without a flush) what it produced, then runs
    /// the delegates it queued. Returns nghttp2's result and how many bytes were written.
    private func sendPass(
        _ session: OpaquePointer, _ context: ChannelHandlerContext
    ) -> (result: Int32, written: Int) {
        // Reuse the buffer written last time: the TLS handler encrypts at flush and
        // drops it, so it is usually ours alone again and clearing it costs nothing. (A
        // second pass before the flush finds it still held, and clearing gives it new
        // storage: the write keeps its bytes.)
        outbound.clear()
        machine.sessionCallStarted()
        let result = nghttp2_session_send(session)
        let returned = machine.sessionCallReturned()
        let written = pendingWriteBytes
        if written > 0 {
            // The queue is taken before anything is written: whatever a write sets off (a
            // change of writability, and the send it may start) must find it empty.
            var queue: [ByteBuffer] = []
            swap(&queue, &outboundQueue)
            outboundQueueBytes = 0
            for buffer in queue { context.write(NIOAny(buffer), promise: nil) }
            if outbound.readableBytes > 0 { context.write(NIOAny(outbound), promise: nil) }
            if outboundQueue.isEmpty {
                queue.removeAll(keepingCapacity: true)
                outboundQueue = queue
            }
        }
        carryOut(returned)
        return (result, written)
    }

    /// After GOAWAY (either way), close once the last stream is done.
    func closeIfDrained() {
        guard let session else { return }
        let sessionOver = nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
        carryOut(
            machine.flushFinished(
                sessionOver: sessionOver, hasOpenStreams: !streams.isEmpty, complaint: lastProtocolComplaint))
    }

    /// The channel is gone.
    func tearDown() {
        carryOut(machine.channelClosed())
    }

    /// Every open stream and PING ends with `error` (or the reason it was reset, or the
    /// peer's GOAWAY that left it unprocessed).
    func tearDown(with error: HTTP2Error) {
        let goAwayError = machine.goAwayError
        for (_, stream) in streams {
            stream.state.closed()
            events.append(.streamClosed(stream, stream.resetReason ?? goAwayError ?? error))
        }
        streams.removeAll()
        headerBlockStream = nil  // it holds its connection
        let pings = pendingPings
        pendingPings.removeAll()
        for (_, ping) in pings { ping.promise.fail(error) }
        let pending = events
        events.removeAll()
        deferredOperations.removeAll()
        for case .streamClosed(let stream, let error) in pending {
            let delegate = stream.delegate
            stream.delegate = nil
            delegate?.streamClosed(stream, error: error)
        }
        context = nil
    }
}
