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
    /// The agent reached the target, which closed the connection without answering.
    case targetClosedWithoutAnswer(target: String)
    /// The agent was stopped (Ctrl-C) while the request was in flight.
    case agentStopped
    /// No response within the configured request timeout.
    case timedOut(seconds: Int)
    /// The client started a request head and did not finish it in time.
    case headTimedOut(seconds: Int)
    /// The request head is larger than the tunnel carries (`HeadLimits`).
    case headTooLarge(limit: Int)
    /// A cap on requests in flight was met, and no place freed up in time.
    case tooManyInFlight(InFlightLimits.Limit, waited: TimeAmount)
    /// The client stopped sending its request body, or reading its answer, for this
    /// long (`--stall-timeout`).
    case clientStalled(seconds: Int, reading: Bool)
    /// Something on the way answered in a way HTTP does not allow.
    case protocolViolation(String)
    /// An HTTP/2 stream on the way was reset with `code` (an RFC 9113 error code);
    /// `reason` says by whom, in words. HTTP/2 downstreams pass the reset on.
    case streamReset(code: UInt32, reason: String)
    /// The request needs HTTP/2 end to end (gRPC) and arrived over HTTP/1.1.
    case http2Required(String)
    /// The client's address is outside the embedded relay's `--allow` ranges.
    case clientNotAllowed(client: String)

    private static func seconds(_ amount: TimeAmount) -> String {
        let tenths = amount.nanoseconds / 100_000_000
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }

    /// `timedOut` for a `--request-timeout` of `timeout`.
    public static func timedOut(after timeout: TimeAmount) -> ExchangeError {
        .timedOut(seconds: Int(timeout.nanoseconds / 1_000_000_000))
    }

    public var status: HTTPResponseStatus {
        switch self {
        case .malformedRequest: return .badRequest
        case .noRoute: return .notFound
        case .agentNotConnected, .agentStopped: return .serviceUnavailable
        case .targetUnreachable, .tunnelLost, .targetClosedEarly, .targetClosedWithoutAnswer, .protocolViolation,
            .streamReset:
            return .badGateway
        case .http2Required: return .httpVersionNotSupported
        case .timedOut: return .gatewayTimeout
        case .headTimedOut: return .requestTimeout
        case .headTooLarge: return .requestHeaderFieldsTooLarge
        case .tooManyInFlight: return .serviceUnavailable
        case .clientStalled: return .requestTimeout
        case .clientNotAllowed: return .forbidden
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
        case .targetClosedWithoutAnswer(let target):
            return "pinhole: \(target) accepted the request and closed the connection without answering"
        case .agentStopped:
            return "pinhole: the agent stopped"
        case .timedOut(let seconds):
            return "pinhole: no response within \(seconds) s (--request-timeout)"
        case .headTimedOut(let seconds):
            return "pinhole: the request head did not arrive within \(seconds) s"
        case .headTooLarge(let limit):
            return
                "pinhole: the request head is larger than \(limit / 1024) KiB, counting each field's name and value"
                + " plus 32 bytes (as HTTP/2 does)"
        case .tooManyInFlight(.perAddress(let cap, let group), let waited):
            return "pinhole: \(group) already has \(cap) requests in flight, the most one address may have"
                + " (--max-in-flight-per-address); none ended within \(Self.seconds(waited)) s, try again later"
        case .tooManyInFlight(.perTunnel(let cap), let waited):
            return "pinhole: this tunnel already carries \(cap) requests, the most it may (--max-in-flight-per-tunnel);"
                + " none ended within \(Self.seconds(waited)) s, try again later"
        case .clientStalled(let seconds, let reading):
            return "pinhole: the client \(reading ? "read nothing of the answer" : "sent none of the request body")"
                + " for \(seconds) s (--stall-timeout)"
        case .protocolViolation(let reason):
            return "pinhole: invalid response on the way: \(reason)"
        case .streamReset(_, let reason):
            return "pinhole: \(reason)"
        case .http2Required(let reason):
            return "pinhole: \(reason)"
        case .clientNotAllowed(let client):
            // The ranges allowed are the developer's business, not the caller's.
            return "pinhole: this agent does not serve \(client); its developer can allow it with --allow"
        }
    }
}

extension ExchangeError: CustomStringConvertible {
    public var description: String { message }
}
