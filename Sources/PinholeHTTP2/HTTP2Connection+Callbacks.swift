internal import CNghttp2
import NIOCore

// What the nghttp2 callbacks do. All of this runs *inside* a session call: it records
// events and defers operations, and never calls a delegate.
extension HTTP2Connection {
    /// Bytes this send pass has produced so far.
    var pendingWriteBytes: Int { outboundQueueBytes + outbound.readableBytes }

    func sendBytes(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard pendingWriteBytes < Self.maximumWriteSize else {
            machine.moreToSend()
            return Int(NGHTTP2_ERR_WOULDBLOCK.rawValue)
        }
        outbound.writeBytes(bytes)
        return bytes.count
    }

    func sendData(streamID: Int32, frameHeader: UnsafeRawBufferPointer, length: Int, padding: Int) -> Int32 {
        let frameSize = 9 + padding + length
        guard pendingWriteBytes == 0 || pendingWriteBytes + frameSize <= Self.maximumWriteSize else {
            machine.moreToSend()
            return Int32(NGHTTP2_ERR_WOULDBLOCK.rawValue)
        }
        // nghttp2 retries a frame refused above with the length it had then. If the stream
        // was reset (its queue emptied) or closed in between, fail this stream only:
        // NGHTTP2_ERR_CALLBACK_FAILURE would end the session, and every stream with it.
        guard let stream = streams[streamID], stream.outgoingBytes >= length else {
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        outbound.reserveCapacity(minimumWritableBytes: 9 + padding + (length < Self.sliceThreshold ? length : 0))
        outbound.writeBytes(frameHeader)
        if padding > 0 { outbound.writeInteger(UInt8(padding - 1)) }
        stream.takeOutgoing(length) { piece in
            guard piece.readableBytes >= Self.sliceThreshold else {
                outbound.writeImmutableBuffer(piece)
                return
            }
            queueOutbound()
            outboundQueue.append(piece)
            outboundQueueBytes += piece.readableBytes
        }
        if padding > 1 { outbound.writeRepeatingByte(0, count: padding - 1) }
        if stream.state.dataTaken(
            outgoingBytes: stream.outgoingBytes, lowWatermark: configuration.streamWriteBufferLowWatermark)
        {
            events.append(.streamWritable(stream))
        }
        return 0
    }

    /// Moves what `outbound` holds to the end of `outboundQueue`.
    private func queueOutbound() {
        guard outbound.readableBytes > 0 else { return }
        outboundQueueBytes += outbound.readableBytes
        outboundQueue.append(outbound)
        outbound = ByteBuffer()
    }

    func provideData(streamID: Int32, maximum: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        // A stream we no longer know fails alone (see sendData), not the whole session.
        guard let stream = streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let count = min(maximum, stream.outgoingBytes)
        if count > 0 {
            // The bytes are copied in `sendData`, straight from the stream's queue.
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
        }
        switch stream.state.provideData(maximum: maximum, queued: stream.outgoingBytes) {
        case .deferUntilResumed:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .data(let count):
            return count
        case .last(let count):
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return count
        case .lastBeforeTrailers(let count):
            // Trailers end the stream instead; they are submitted once this call returns.
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            deferredOperations.append(.submitTrailers(stream))
            return count
        case .reset(let code):
            // What was queued has gone (HEADERS included); the reset follows it.
            deferredOperations.append(.reset(stream, code))
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
    }

    func beginHeaders(streamID: Int32, category: nghttp2_headers_category) {
        if category == NGHTTP2_HCAT_REQUEST, role == .server {
            let stream = HTTP2Stream(id: streamID, connection: self, delegate: nil)
            streams[streamID] = stream
            events.append(.streamOpened(stream))
            headerBlockStream = stream
        } else {
            headerBlockStream = streams[streamID]
        }
        if let stream = headerBlockStream {
            // One allocation for a typical header block instead of growth by doubling.
            stream.incomingHeaders = HTTP2Headers()
            stream.incomingHeaders.reserveCapacity(16)
            stream.incomingHeaderBytes = 0
        }
    }

    /// The stream a header block is being received for. A block's fields arrive together
    /// (CONTINUATION frames follow its HEADERS at once, RFC 9113 §6.10), so the stream
    /// is found once per block, not once per field.
    private func headerBlockStream(_ streamID: Int32) -> HTTP2Stream? {
        if let stream = headerBlockStream, stream.id == streamID { return stream }
        return streams[streamID]
    }

    func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        guard let stream = headerBlockStream(streamID) else { return 0 }
        stream.incomingHeaderBytes += name.count + value.count + 32
        guard stream.incomingHeaderBytes <= configuration.maxHeaderListSize else {
            stream.resetReason = .headerListTooLarge(streamID: streamID, limit: configuration.maxHeaderListSize)
            // nghttp2 resets just this stream (INTERNAL_ERROR) and carries on.
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        stream.incomingHeaders.add(
            name: HeaderNameTable.string(name), value: String(decoding: value, as: UTF8.self))
        return 0
    }

    func frameReceived(_ frame: nghttp2_frame) {
        let streamID = frame.hd.stream_id
        let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(frame.hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard let stream = headerBlockStream(streamID) else { return }
            headerBlockStream = nil
            let headers = stream.incomingHeaders
            stream.incomingHeaders = HTTP2Headers()
            switch stream.state.headersReceived(
                informational: headers[":status"]?.hasPrefix("1") ?? false, endStream: endStream)
            {
            case .informational: return  // not forwarded; the final response follows
            case .headers: events.append(.streamPart(stream, .headers(headers)))
            case .trailers: events.append(.streamPart(stream, .trailers(headers)))
            }
            if endStream { endOfStream(stream) }
        case NGHTTP2_DATA.rawValue:
            if endStream, let stream = streams[streamID] { endOfStream(stream) }
        case NGHTTP2_RST_STREAM.rawValue:
            let code = HTTP2ErrorCode(rawValue: frame.rst_stream.error_code)
            // RST_STREAM(NO_ERROR) after the peer's whole message asks for no more of ours
            // (RFC 9113 §8.1): the stream ends as a normal close does, without an error.
            if let stream = streams[streamID], stream.resetReason == nil,
                code != .noError || !stream.state.peerMessageEnded
            {
                stream.resetReason = .streamReset(streamID: streamID, code: code)
            }
        case NGHTTP2_GOAWAY.rawValue:
            let code = HTTP2ErrorCode(rawValue: frame.goaway.error_code)
            machine.receivedGoAway(code: code, lastStreamID: frame.goaway.last_stream_id)
            let debugData = frame.goaway.opaque_data.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: frame.goaway.opaque_data_len), as: UTF8.self)
            }
            events.append(.goAway(code, lastStreamID: frame.goaway.last_stream_id, debugData: debugData ?? ""))
        case NGHTTP2_PING.rawValue:
            guard frame.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 else { return }
            let id = withUnsafeBytes(of: frame.ping.opaque_data) {
                UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self))
            }
            events.append(.pingAcknowledged(id))
        default:
            break
        }
    }

    /// nghttp2 gave up on a frame, for instance HEADERS larger than it will send. For a
    /// request it closes the stream itself; a response's or trailers' HEADERS it drops and
    /// leaves the stream open, and the peer would wait for them forever. Reset the stream.
    func frameNotSent(_ frame: nghttp2_frame, code: Int32) {
        guard UInt32(frame.hd.type) == NGHTTP2_HEADERS.rawValue, let stream = streams[frame.hd.stream_id] else {
            return
        }
        if stream.resetReason == nil {
            stream.resetReason = .streamResetLocally(
                streamID: stream.id, code: .internalError,
                reason: "its HEADERS could not be sent (\(String(cString: nghttp2_strerror(code))))")
        }
        deferredOperations.append(.reset(stream, .internalError))
    }

    /// A frame with END_STREAM went out on `streamID`: a peer asked to stop once it did
    /// (`stopPeerOnceEnded`) gets its RST_STREAM(NO_ERROR) now, after that frame.
    func endSent(streamID: Int32) {
        guard let stream = streams[streamID], stream.state.stopsPeer else { return }
        deferredOperations.append(.stopPeer(stream))
    }

    private func endOfStream(_ stream: HTTP2Stream) {
        guard stream.state.endReceived() else { return }
        events.append(.streamPart(stream, .end))
    }

    func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        connectionBytesToConsume += bytes.count
        guard let stream = streams[streamID] else { return }
        events.append(.streamPart(stream, .data(slice(bytes))))
    }

    /// A DATA payload as a ByteBuffer: a slice of the input when it lies inside it
    /// (nghttp2 hands out pointers into what we gave `mem_recv`), a copy otherwise.
    private func slice(_ bytes: UnsafeRawBufferPointer) -> ByteBuffer {
        if let input = currentInput, let start = bytes.baseAddress {
            let offset = start - input.base
            if offset >= 0, offset + bytes.count <= input.buffer.readableBytes,
                let slice = input.buffer.getSlice(at: input.buffer.readerIndex + offset, length: bytes.count)
            {
                return slice
            }
        }
        var copy = ByteBufferAllocator().buffer(capacity: bytes.count)
        copy.writeBytes(bytes)
        return copy
    }

    func streamClosed(streamID: Int32, code: HTTP2ErrorCode) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        if headerBlockStream === stream { headerBlockStream = nil }
        stream.state.closed()
        stream.discardOutgoing()
        var error = stream.resetReason
        if error == nil, code != .noError {
            if code == .refusedStream, let goAway = machine.goAwayError {
                error = goAway
            } else {
                error = .streamReset(streamID: streamID, code: code)
            }
        }
        events.append(.streamClosed(stream, error))
    }
}
