extension ExchangeError {
    /// Why Pinhole answered, in a few words for the request log: the part of `message`
    /// a developer watching the log needs (the target and host are in the header).
    public var logReason: String {
        switch self {
        case .malformedRequest(let reason): return "malformed request: \(reason)"
        case .noRoute(let host): return "no tunnel for \(host)"
        case .agentNotConnected: return "agent not connected"
        case .targetUnreachable(_, let reason): return reason
        case .tunnelLost(_, let reason): return "tunnel went down (\(reason))"
        case .targetClosedEarly: return "the app closed the connection"
        case .targetClosedWithoutAnswer: return "the app closed the connection without answering"
        case .agentStopped: return "the agent stopped"
        case .headTooLarge(let limit): return "limit: request head over \(limit / 1024) KiB"
        case .tooManyInFlight(.perAddress(let cap, _), _): return "limit: \(cap) in flight per address"
        case .tooManyInFlight(.perTunnel(let cap), _): return "limit: \(cap) in flight per tunnel"
        case .clientStalled(let seconds, let reading):
            return
                "limit: the client \(reading ? "stopped reading" : "stopped sending") for \(seconds) s (--stall-timeout)"
        case .streamReset(_, let reason): return "reset: \(reason)"
        case .http2Required: return "gRPC over HTTP/1.1 (needs HTTP/2)"
        case .clientNotAllowed(let client): return "not allowed: \(client) is outside --allow"
        case .timedOut(let seconds): return "timed out after \(seconds) s (--request-timeout)"
        case .headTimedOut(let seconds): return "request head timed out after \(seconds) s"
        case .protocolViolation(let reason): return "invalid response: \(reason)"
        }
    }
}
