import NIOCore
import NIOHTTP1

/// Why a proxied request could not be answered by the application, and what the
/// caller sees instead: a status and a short plain body naming the cause.
public enum ExchangeError: Error, Sendable, Equatable {
    /// The request could not be parsed or lacks what HTTP requires.
    case malformedRequest(String)
    /// No tunnel answers for this host.
    case noRoute(host: String)
    /// The tunnel exists but its agent is not connected right now.
    case agentNotConnected(host: String)
    /// The agent could not reach its local target.
    case targetUnreachable(target: String, reason: String)
    /// The tunnel went down while the request was in flight.
    case tunnelLost(host: String, reason: String)
    /// The target closed the connection before the response was complete.
    case targetClosedEarly(target: String)
    /// No response within the configured request timeout.
    case timedOut(seconds: Int)
    /// The client started a request head and did not finish it in time.
    case headTimedOut(seconds: Int)
    /// The request head is larger than the tunnel carries (`HeadLimits`).
    case headTooLarge(limit: Int)
    /// Something on the way answered in a way HTTP does not allow.
    case protocolViolation(String)

    /// `timedOut` for a `--request-timeout` of `timeout`.
    public static func timedOut(after timeout: TimeAmount) -> ExchangeError {
        .timedOut(seconds: Int(timeout.nanoseconds / 1_000_000_000))
    }

    public var status: HTTPResponseStatus {
        switch self {
        case .malformedRequest: return .badRequest
        case .noRoute: return .notFound
        case .agentNotConnected: return .serviceUnavailable
        case .targetUnreachable, .tunnelLost, .targetClosedEarly, .protocolViolation: return .badGateway
        case .timedOut: return .gatewayTimeout
        case .headTimedOut: return .requestTimeout
        case .headTooLarge: return .requestHeaderFieldsTooLarge
        }
    }

    /// The answer's body, `message` as a line of text, and its Content-Type.
    public var body: ByteBuffer { ByteBuffer(string: message + "\n") }
    public static let bodyContentType = "text/plain; charset=utf-8"

    /// The plain-text body the caller gets.
    public var message: String {
        switch self {
        case .malformedRequest(let reason):
            return "pinhole: malformed request: \(reason)"
        case .noRoute(let host):
            return "pinhole: no tunnel for \(host)"
        case .agentNotConnected(let host):
            return "pinhole: the agent for \(host) is not connected; start it (or wait for it to reconnect)"
        case .targetUnreachable(let target, let reason):
            return "pinhole: the agent could not reach \(target): \(reason)"
        case .tunnelLost(let host, let reason):
            return "pinhole: the tunnel for \(host) went down during the request (\(reason))"
        case .targetClosedEarly(let target):
            return "pinhole: \(target) closed the connection before the response was complete"
        case .timedOut(let seconds):
            return "pinhole: no response within \(seconds) s (--request-timeout)"
        case .headTimedOut(let seconds):
            return "pinhole: the request head did not arrive within \(seconds) s"
        case .headTooLarge(let limit):
            return
                "pinhole: the request head is larger than \(limit / 1024) KiB, counting each field's name and value"
                + " plus 32 bytes (as HTTP/2 does)"
        case .protocolViolation(let reason):
            return "pinhole: invalid response on the way: \(reason)"
        }
    }
}

extension ExchangeError: CustomStringConvertible {
    public var description: String { message }
}
