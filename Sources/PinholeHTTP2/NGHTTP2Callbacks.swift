internal import CNghttp2

// The C side of the session. Each callback is a file-private function: it recovers
// the `HTTP2Connection` from nghttp2's user data and calls one method, which only
// records what happened (see `HTTP2Connection` on reentrancy). Anything unexpected
// returns NGHTTP2_ERR_CALLBACK_FAILURE, which ends the session; nothing traps.

/// Calls `body` with the connection nghttp2's user data points to, or returns `failure`.
/// The connection is not retained for the call: it is on the stack below nghttp2 (one of
/// its methods made the session call that is calling back), so it outlives the callback.
/// That saves a retain and a release on every callback, once per header field included.
private func withConnection<Result>(
    _ userData: UnsafeMutableRawPointer?, failure: Result, _ body: (HTTP2Connection) -> Result
) -> Result {
    guard let userData else { return failure }
    return Unmanaged<HTTP2Connection>.fromOpaque(userData)._withUnsafeGuaranteedRef(body)
}

private let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)

extension HTTP2Connection {
    func makeSessionCallbacks() throws(HTTP2Error) -> OpaquePointer {
        var callbacks: OpaquePointer?
        let result = nghttp2_session_callbacks_new(&callbacks)
        guard result == 0, let callbacks else { throw .library(operation: "allocating callbacks", code: result) }
        nghttp2_session_callbacks_set_send_callback(callbacks) { _, data, length, _, userData in
            guard let data else { return Int(callbackFailure) }
            return withConnection(userData, failure: Int(callbackFailure)) {
                $0.sendBytes(UnsafeRawBufferPointer(start: data, count: length))
            }
        }
        nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, header, length, _, userData in
            guard let frame, let header else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.sendData(
                    streamID: frame.pointee.hd.stream_id, frameHeader: UnsafeRawBufferPointer(start: header, count: 9),
                    length: length, padding: Int(frame.pointee.data.padlen))
            }
        }
        // DATA frames as large as the peer allows (nghttp2 stops at 16 KiB otherwise):
        // bulk bodies then cost a quarter of the per-frame work on both ends.
        nghttp2_session_callbacks_set_data_source_read_length_callback(callbacks) {
            _, _, _, sessionWindow, streamWindow, peerMaxFrameSize, _ in
            max(1, min(Int(sessionWindow), Int(streamWindow), Int(peerMaxFrameSize)))
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.beginHeaders(streamID: frame.pointee.hd.stream_id, category: frame.pointee.headers.cat)
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.header(
                    streamID: frame.pointee.hd.stream_id,
                    name: UnsafeRawBufferPointer(start: name, count: nameLength),
                    value: UnsafeRawBufferPointer(start: value, count: valueLength))
            }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.frameReceived(frame.pointee)
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let data else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.dataReceived(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            withConnection(userData, failure: callbackFailure) {
                $0.streamClosed(streamID: streamID, code: HTTP2ErrorCode(rawValue: errorCode))
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks) { _, frame, errorCode, userData in
            guard let frame else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.frameNotSent(frame.pointee, code: errorCode)
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, errorCode, userData in
            guard let frame else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.lastProtocolComplaint =
                    "invalid frame (type \(frame.pointee.hd.type)) on stream \(frame.pointee.hd.stream_id): "
                    + String(cString: nghttp2_strerror(errorCode))
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            // Called for every frame sent; only the end of a message, and an error GOAWAY,
            // matter here.
            guard let frame else { return callbackFailure }
            let type = UInt32(frame.pointee.hd.type)
            if frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                type == NGHTTP2_DATA.rawValue || type == NGHTTP2_HEADERS.rawValue
            {
                let streamID = frame.pointee.hd.stream_id
                return withConnection(userData, failure: callbackFailure) {
                    $0.endSent(streamID: streamID)
                    return 0
                }
            }
            guard type == NGHTTP2_GOAWAY.rawValue, frame.pointee.goaway.error_code != 0 else { return 0 }
            // nghttp2 puts its reason for ending the session in the GOAWAY's debug data.
            let goAway = frame.pointee.goaway
            let reason = goAway.opaque_data.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: goAway.opaque_data_len), as: UTF8.self)
            }
            let code = HTTP2ErrorCode(rawValue: goAway.error_code)
            return withConnection(userData, failure: callbackFailure) {
                $0.lastProtocolComplaint = "sent GOAWAY(\(code))" + (reason.map { ": " + $0 } ?? "")
                return 0
            }
        }
        nghttp2_session_callbacks_set_error_callback2(callbacks) { _, _, message, length, userData in
            guard let message else { return callbackFailure }
            return withConnection(userData, failure: callbackFailure) {
                $0.lastProtocolComplaint = String(
                    decoding: UnsafeRawBufferPointer(start: message, count: length), as: UTF8.self)
                return 0
            }
        }
        return callbacks
    }
}

/// nghttp2's data provider: how much of a stream's queued data goes into the next DATA frame.
func readStreamData(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let flags else { return Int(callbackFailure) }
    return withConnection(userData, failure: Int(callbackFailure)) {
        $0.provideData(streamID: streamID, maximum: length, flags: flags)
    }
}
