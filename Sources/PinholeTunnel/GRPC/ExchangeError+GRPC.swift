import PinholeCore
import PinholeHTTP2

// A gRPC client reads failures from `grpc-status` and `grpc-message`, not from an HTTP
// status and a text body: a 502 reaches its caller as "Received http2 header with status:
// 502" at best. So a gRPC call that Pinhole cannot deliver gets what a gRPC server would
// send: HTTP 200 with a Trailers-Only response (gRPC over HTTP/2, "Responses") carrying
// the same words as the plain answer.

/// gRPC status codes Pinhole answers with (grpc/doc/statuscodes.md).
public enum GRPCStatus {
    public static let ok = 0
    public static let cancelled = 1
    public static let deadlineExceeded = 4
    public static let permissionDenied = 7
    public static let resourceExhausted = 8
    public static let unimplemented = 12
    public static let `internal` = 13
    public static let unavailable = 14
}

extension ExchangeError {
    /// The status a gRPC client gets instead of this error's HTTP status. Follows gRPC's
    /// own mapping of HTTP statuses (doc/http-grpc-status-mapping.md): 404 is
    /// UNIMPLEMENTED, 502 and 503 are UNAVAILABLE; our `--request-timeout` is a deadline.
    public var grpcStatus: Int {
        switch self {
        case .malformedRequest, .protocolViolation, .http2Required: return GRPCStatus.internal
        case .noRoute: return GRPCStatus.unimplemented
        case .timedOut: return GRPCStatus.deadlineExceeded
        // Pinhole's own limits: the caller may try again later, or with less.
        case .headTooLarge, .tooManyInFlight: return GRPCStatus.resourceExhausted
        case .clientStalled: return GRPCStatus.cancelled
        case .clientNotAllowed: return GRPCStatus.permissionDenied
        case .agentNotConnected, .agentStopped, .targetUnreachable, .tunnelLost, .targetClosedEarly,
            .targetClosedWithoutAnswer, .headTimedOut, .streamReset:
            return GRPCStatus.unavailable
        }
    }

    /// A Trailers-Only gRPC response: `:status` 200, the gRPC content type, `grpc-status`
    /// and `grpc-message` (percent-encoded, as the message field requires).
    public var grpcTrailersOnly: HTTP2Headers {
        [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", String(grpcStatus)),
            ("grpc-message", GRPCMessage.percentEncoded(message)),
        ]
    }
}

/// The `grpc-message` field's encoding: UTF-8, with every byte outside printable ASCII,
/// and `%` itself, written as `%XX`.
public enum GRPCMessage {
    public static func percentEncoded(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += byte < 0x10 ? "%0" + hex : "%" + hex
            }
        }
        return out
    }

    /// The status in a response's headers (Trailers-Only) or trailers, if any.
    static func status(in fields: HTTP2Headers) -> Int? {
        fields["grpc-status"].flatMap { Int($0) }
    }
}
