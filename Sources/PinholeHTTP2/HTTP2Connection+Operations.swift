internal import CNghttp2
import NIOCore

// Running work on the session outside nghttp2, and delivering what it recorded.
extension HTTP2Connection {
    func perform(_ operation: Operation) {
        carryOut(operation, machine.operationRequested())
    }

    func carryOut(_ operation: Operation, _ action: HTTP2ConnectionStateMachine.Action) {
        switch action {
        case .deferOperation:
            // Inside nghttp2, or before the session exists (streams opened while the
            // channel is still connecting): run it later.
            deferredOperations.append(operation)
        case .executeOperation:
            execute(operation)
            scheduleSend()
        default:
            if case .openStream(let stream, _, _) = operation {
                stream.resetReason = terminalError ?? .connectionClosed
            }
        }
    }

    /// Carries out a lifecycle action (operations and sends have their own paths).
    func carryOut(_ action: HTTP2ConnectionStateMachine.Action) {
        switch action {
        case .none, .receive, .deferOperation, .executeOperation, .refuse, .sendPass:
            break
        case .scheduleFlush:
            scheduleSend()
        case .flush:
            flushOutput()
        case .flushWrites:
            context?.flush()
        case .deliverEvents:
            deliverEvents()
        case .deliverEventsAndFlush:
            deliverEvents()  // requests made before the channel was active
            flushOutput()
        case .submitGoAway:
            submitGoAway(code: .noError, debugData: "")
        case .close:
            // What passes wrote before delegates they ran closed it goes out first: a
            // close drops unflushed writes.
            context?.flush()
            context?.close(promise: nil)
        case .sendFinalFramesAndClose:
            sendFinalFrames()
            context?.close(promise: nil)
        case .terminate:
            // Sends what is queued (such as nghttp2's GOAWAY) before the error closes the channel.
            flushOutput()
            carryOut(machine.finalFramesSent())
        case .failAndClose(let error):
            context?.fireErrorCaught(error)
            context?.flush()
            context?.close(promise: nil)
        case .tearDown(let error):
            tearDown(with: error)
        }
    }

    /// Ends the connection on `error`: sends whatever is queued, reports it, and closes.
    func terminate(with error: HTTP2Error) {
        carryOut(machine.terminate(error))
    }

    private func execute(_ operation: Operation) {
        guard let session, !machine.isClosed else {
            if case .openStream(let stream, _, _) = operation {
                stream.resetReason = terminalError ?? .connectionClosed
            }
            return
        }
        switch operation {
        case .openStream(let stream, let headers, let endStream):
            let id = submit(endStream: endStream) { provider in
                headers.withNameValuePairs { nghttp2_submit_request(session, nil, $0, $1, provider, nil) }
            }
            guard id > 0 else {
                stream.resetReason = .library(operation: "opening a stream", code: id)
                if id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE.rawValue {
                    if case .submitGoAway = machine.streamIDsExhausted() {
                        submitGoAway(code: .noError, debugData: "stream ids used up")
                    }
                } else if nghttp2_is_fatal(id) != 0 {
                    terminate(with: .library(operation: "opening a stream", code: id))
                }
                return
            }
            stream.id = id
            stream.state.headersSubmitted(endStream: endStream)
            streams[id] = stream
        case .sendHeaders(let stream, let headers, let endStream):
            guard stream.state.mayStartSending else { return }
            let result = submit(endStream: endStream) { provider in
                headers.withNameValuePairs { nghttp2_submit_response(session, stream.id, $0, $1, provider) }
            }
            guard result == 0 else {
                failed(stream, .library(operation: "sending response headers", code: result))
                return
            }
            stream.state.headersSubmitted(endStream: endStream)
        case .resumeData(let stream):
            guard stream.state.resumeRequested() else { return }
            let result = nghttp2_session_resume_data(session, stream.id)
            if result != 0 { failed(stream, .library(operation: "resuming a stream's body", code: result)) }
        case .submitTrailers(let stream):
            guard let trailers = stream.state.takeTrailers() else { return }
            let result = trailers.withNameValuePairs { nghttp2_submit_trailer(session, stream.id, $0, $1) }
            if result != 0 { failed(stream, .library(operation: "sending trailers", code: result)) }
        case .reset(let stream, let code):
            guard !stream.state.isClosed, stream.id > 0 else { return }
            if stream.resetReason == nil {
                stream.resetReason = .streamResetLocally(streamID: stream.id, code: code, reason: "reset by this side")
            }
            submitReset(stream, code, session: session)
        case .stopPeer(let stream):
            // Asked again now: the peer's message may have ended meanwhile.
            guard stream.state.stopsPeer else { return }
            submitReset(stream, .noError, session: session)
        case .resetAfterQueued(let stream, let code):
            switch stream.state.resetAfterQueuedRequested(code) {
            case .resetNow:
                stream.discardOutgoing()
                execute(.reset(stream, code))
            case .resume:
                execute(.resumeData(stream))
            case .waitForProvider, .none:
                break
            }
        case .consume(let stream, let count):
            guard !stream.state.isClosed else { return }
            let result = nghttp2_session_consume_stream(session, stream.id, count)
            if result != 0 { failed(stream, .library(operation: "returning a stream's window", code: result)) }
        }
    }

    /// An nghttp2 call about `stream` failed: out of memory ends the connection; anything
    /// else ends only that stream, whose owner learns why.
    private func failed(_ stream: HTTP2Stream, _ error: HTTP2Error) {
        if case .library(_, let code) = error, nghttp2_is_fatal(code) != 0 {
            terminate(with: error)
            return
        }
        if stream.resetReason == nil { stream.resetReason = error }
        perform(.reset(stream, .internalError))
    }

    /// Calls `body` with a data provider, or nil when the stream ends with its headers.
    private func submit(endStream: Bool, _ body: (UnsafePointer<nghttp2_data_provider>?) -> Int32) -> Int32 {
        if endStream { return body(nil) }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readStreamData)
        return withUnsafePointer(to: &provider) { body($0) }
    }

    private func submitReset(_ stream: HTTP2Stream, _ code: HTTP2ErrorCode, session: OpaquePointer) {
        let result = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, code.rawValue)
        // Anything but running out of memory means the stream is already gone.
        if nghttp2_is_fatal(result) != 0 {
            terminate(with: .library(operation: "resetting a stream", code: result))
        }
    }

    /// Delivers what the last nghttp2 call recorded and runs what it deferred,
    /// until both are empty (a delegate may cause more of either).
    func deliverEvents() {
        // A delegate that reaches a session call again (a flush, say) must not start a
        // second loop: it would swap the queue being worked through back in and deliver
        // its events twice. This loop runs until both queues are empty, so it picks up
        // whatever the nested call recorded.
        guard machine.deliveryStarted() else { return }
        defer { machine.deliveryFinished() }
        while !deferredOperations.isEmpty || !events.isEmpty {
            // While streams are open the queues keep what a burst grew them to: with ten
            // clients' requests in one read, regrowing them from 16 on every read was the
            // largest single allocation in profiles. A connection with no stream open
            // (hundreds of idle tunnels) lets a large queue go.
            let keepAll = !streams.isEmpty
            // Swap in the spare queues, so the ones being worked through are not shared
            // while new work is appended (emptying a shared array would reallocate it).
            swap(&deferredOperations, &spareOperations)
            for operation in spareOperations { execute(operation) }
            // The caller on the stack (a read's end, the flush loop, the session start) sends.
            if !spareOperations.isEmpty { machine.moreToSend() }
            spareOperations.removeAll(keepingCapacity: keepAll || spareOperations.capacity <= Self.keptQueueCapacity)
            swap(&events, &spareEvents)
            for event in spareEvents { deliver(event) }
            spareEvents.removeAll(keepingCapacity: keepAll || spareEvents.capacity <= Self.keptQueueCapacity)
        }
    }

    private func deliver(_ event: SessionEvent) {
        switch event {
        case .streamOpened(let stream):
            if stream.delegate == nil, let streamAcceptor { stream.delegate = streamAcceptor(stream) }
        case .streamPart(let stream, let part):
            stream.delegate?.stream(stream, received: part)
        case .streamClosed(let stream, let error):
            let delegate = stream.delegate
            stream.delegate = nil  // breaks the stream <-> delegate cycle
            delegate?.streamClosed(stream, error: error)
        case .streamWritable(let stream):
            stream.delegate?.streamWritabilityChanged(stream)
        case .goAway(let code, let lastStreamID, let debugData):
            context?.fireUserInboundEventTriggered(
                HTTP2ConnectionEvent.goAwayReceived(code: code, lastStreamID: lastStreamID, debugData: debugData))
        case .pingAcknowledged(let id):
            if let (sent, promise) = pendingPings.removeValue(forKey: id) {
                promise.succeed(.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - sent.uptimeNanoseconds)))
            }
        }
    }
}
