import NIOCore
import PinholeCore
import PinholeTLS

/// Why a connection to the relay failed, as one line for the reconnect log: what was
/// tried (the relay's address) and what to check, for the usual causes. A wrong port
/// is the most common: the public port accepts TCP and then says nothing TLS can use.
enum RelayTrouble {
    /// The relay accepted TCP but did not complete TLS and the handshake in time.
    struct Silent: Error {
        let seconds: String
    }

    /// The relay closed the connection before answering the hello.
    struct ClosedDuringHandshake: Error {}

    static func describe(_ error: any Error, relay: AgentConfiguration.RelayEndpoint) -> String {
        let address = relay.description
        let agentPort = "is \(relay.port) the relay's agent port (default 4443, the one its banner shows)"
        if ConnectionErrorText.isUnknownHost(error) {
            return "cannot resolve the relay host '\(relay.host)'; check the name in --relay, and this machine's DNS"
        }
        if ConnectionErrorText.isRefused(error) {
            return "relay \(address) refused the connection; is the relay running, "
                + "and is port \(relay.port) open in its firewall?"
        }
        if case ChannelError.connectTimeout(let timeout) = error {
            return "relay \(address) did not answer within \(timeout.nanoseconds / 1_000_000_000) s; "
                + "is the host up, and is port \(relay.port) open in its firewall?"
        }
        if let silent = error as? Silent {
            return "relay \(address) accepted the connection but did not complete the handshake within "
                + "\(silent.seconds) s; \(agentPort), not its public port?"
        }
        if error is ClosedDuringHandshake {
            return "relay \(address) closed the connection during the handshake; \(agentPort)?"
        }
        if let error = error as? TLSError {
            switch error {
            case .handshakeFailed(let reason), .protocolViolation(let reason):
                return "relay \(address) did not answer with TLS (\(reason)); \(agentPort), "
                    + "not a plain HTTP port?"
            default:
                return "relay \(address): \(error)"
            }
        }
        return "relay \(address): \(ConnectionErrorText.describe(error))"
    }
}
