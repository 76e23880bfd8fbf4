internal import CNghttp2

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
public struct HTTP2ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public static let noError = HTTP2ErrorCode(rawValue: 0x0)
    public static let protocolError = HTTP2ErrorCode(rawValue: 0x1)
    public static let internalError = HTTP2ErrorCode(rawValue: 0x2)
    public static let flowControlError = HTTP2ErrorCode(rawValue: 0x3)
    public static let settingsTimeout = HTTP2ErrorCode(rawValue: 0x4)
    public static let streamClosed = HTTP2ErrorCode(rawValue: 0x5)
    public static let frameSizeError = HTTP2ErrorCode(rawValue: 0x6)
    public static let refusedStream = HTTP2ErrorCode(rawValue: 0x7)
    public static let cancel = HTTP2ErrorCode(rawValue: 0x8)
    public static let compressionError = HTTP2ErrorCode(rawValue: 0x9)
    public static let connectError = HTTP2ErrorCode(rawValue: 0xa)
    public static let enhanceYourCalm = HTTP2ErrorCode(rawValue: 0xb)
    public static let inadequateSecurity = HTTP2ErrorCode(rawValue: 0xc)
    public static let http11Required = HTTP2ErrorCode(rawValue: 0xd)

    /// The RFC's name, such as `CANCEL`.
    public var description: String {
        String(cString: nghttp2_http2_strerror(rawValue))
    }
}

/// What went wrong on an HTTP/2 connection or stream, in words a person can act on.
public enum HTTP2Error: Error, Sendable, Equatable {
    /// The peer reset the stream.
    case streamReset(streamID: Int32, code: HTTP2ErrorCode)
    /// We reset the stream (because our side asked to, or a limit was hit).
    case streamResetLocally(streamID: Int32, code: HTTP2ErrorCode, reason: String)
    /// The peer sent GOAWAY; streams after `lastStreamID` were not processed and new ones are refused.
    case goAway(code: HTTP2ErrorCode, lastStreamID: Int32)
    /// We sent GOAWAY: the connection is draining, so no new stream can start.
    case connectionDraining
    /// The connection closed while the stream was still open.
    case connectionClosed
    /// The peer broke the protocol; the connection was closed with GOAWAY(PROTOCOL_ERROR) or similar.
    case protocolViolation(String)
    /// The peer's header list exceeded our limit.
    case headerListTooLarge(streamID: Int32, limit: Int)
    /// Invalid use of the API (a programmer mistake above this module), reported instead of trapping.
    case misuse(String)
    /// nghttp2 refused an operation; the description says what that ended and what to do.
    case library(operation: String, code: Int32)
}

extension HTTP2Error: CustomStringConvertible {
    public var description: String {
        switch self {
        case .streamReset(let id, let code):
            return "peer reset stream \(id): \(code)"
        case .streamResetLocally(let id, let code, let reason):
            return "stream \(id) reset (\(code)): \(reason)"
        case .goAway(let code, let lastStreamID):
            return "connection closed by GOAWAY(\(code)) after stream \(lastStreamID)"
        case .connectionDraining:
            return "the connection is shutting down (GOAWAY sent); open a new connection"
        case .connectionClosed:
            return "the HTTP/2 connection closed before the stream finished"
        case .protocolViolation(let reason):
            return "the peer broke HTTP/2: \(reason)"
        case .headerListTooLarge(let id, let limit):
            return "stream \(id): header list larger than \(limit) bytes"
        case .misuse(let reason):
            return "HTTP/2 API misuse: \(reason)"
        case .library(let operation, let code):
            return
                "\(operation) failed: \(String(cString: nghttp2_strerror(code))); \(Self.remedy(forLibraryCode: code))"
        }
    }

    /// What an nghttp2 failure meant for the connection, and what to do about it.
    private static func remedy(forLibraryCode code: Int32) -> String {
        switch code {
        case NGHTTP2_ERR_NOMEM.rawValue:
            return "the process is out of memory, so the connection was closed; free memory and reconnect"
        case NGHTTP2_ERR_CALLBACK_FAILURE.rawValue:
            return "a PinholeHTTP2 callback failed and the connection was closed (a bug: please report it)"
        case NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE.rawValue:
            return "this connection has used all its stream ids and is draining; retry on a new connection"
        case NGHTTP2_ERR_START_STREAM_NOT_ALLOWED.rawValue, NGHTTP2_ERR_SESSION_CLOSING.rawValue:
            return "the connection is shutting down; retry on a new connection"
        case NGHTTP2_ERR_STREAM_CLOSED.rawValue, NGHTTP2_ERR_STREAM_CLOSING.rawValue,
            NGHTTP2_ERR_STREAM_SHUT_WR.rawValue, NGHTTP2_ERR_INVALID_STREAM_STATE.rawValue:
            return "the stream had already ended; retry the request on a new stream"
        case NGHTTP2_ERR_INVALID_ARGUMENT.rawValue, NGHTTP2_ERR_INVALID_STATE.rawValue,
            NGHTTP2_ERR_DATA_EXIST.rawValue, NGHTTP2_ERR_DEFERRED_DATA_EXIST.rawValue,
            NGHTTP2_ERR_INVALID_STREAM_ID.rawValue:
            return "PinholeHTTP2 asked for something nghttp2 does not allow (a bug: please report it)"
        default:
            return nghttp2_is_fatal(code) != 0
                ? "the connection was closed; reconnect" : "it was not carried out; retry it"
        }
    }
}
