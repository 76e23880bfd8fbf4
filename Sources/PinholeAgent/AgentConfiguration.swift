import Foundation
import NIOCore
import PinholeCore
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel

/// How an agent runs: which application it forwards to, and where the public side is.
public struct AgentConfiguration: Sendable {
    public enum Mode: Sendable {
        /// The relay runs inside the agent: the cluster reaches this machine directly.
        case embedded(bindHost: String, publicPort: Int, publicHost: String?)
        /// The agent dials a relay on a VM.
        case relay(RelayEndpoint)
    }

    /// Where the relay is and how to talk to it. Its description is the address alone:
    /// the token must never reach a message.
    public struct RelayEndpoint: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var token: String
        public var trust: TLSTrust
        public var name: String
        /// Kubernetes Services to route here too (`service` or `service.namespace`).
        public var aliases: [String]
        /// The service this agent shares with other developers on the relay, and how.
        public var service: ServiceShare?

        public init(
            host: String, port: Int, token: String, trust: TLSTrust, name: String, aliases: [String] = [],
            service: ServiceShare? = nil
        ) {
            self.host = host
            self.port = port
            self.token = token
            self.trust = trust
            self.name = name
            self.aliases = aliases
            self.service = service
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var target: TargetAddress
    public var mode: Mode
    public var keepaliveInterval: TimeAmount = .seconds(15)
    /// None by default: a request may wait at a breakpoint as long as it needs.
    public var requestTimeout: TimeAmount?
    /// How long a connection to the embedded relay may carry no request before it is closed (nil: never).
    public var idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout
    /// The longest wait between reconnect attempts.
    public var reconnectCap: TimeAmount = .seconds(10)
    /// How long a TCP connect to the relay may take.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// How long the relay has, once TCP is up, to complete TLS and answer the hello. A
    /// relay that accepts and then says nothing (hung, or not a relay) is retried.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    public var http2 = HTTP2Configuration()
    /// Embedded relay: who may send requests (`--allow`); others get 403 naming the flag.
    public var allow = ClientAllowList.loopbackAndPrivate
    /// Embedded relay: caps on requests in flight per client address, as the relay has
    /// them (`--max-in-flight-per-address`, `--in-flight-wait`; see `InFlightLimits`).
    public var inFlightCaps = InFlightLimits.Caps(countsTunnels: false)
    /// Embedded relay: `--stall-timeout` (see `PublicLimits`); nil for never.
    public var stallTimeout: TimeAmount? = PublicLimits.defaultStallTimeout
    /// Embedded relay: caps on open public connections (`--max-connections`,
    /// `--max-connections-per-address`); over them a connection is closed at once.
    public var publicConnectionCaps = ConnectionLimits.Caps.publicDefault
    /// Embedded relay: with an identity, the public port speaks TLS with it, offering
    /// ALPN `h2` and `http/1.1` (`--public-cert`/`--public-key`).
    public var publicTLS: TLSIdentity?
    /// Whether each response of the target carries `x-pinhole-tunnel: NAME`, so the caller
    /// (and browser devtools) can see it was answered through this tunnel.
    public var marksResponses = true
    /// Whether requests are reported (`AgentEvent.request`, `.waiting`); without, they
    /// cost nothing for the log (`--quiet`).
    public var reportsRequests = true
    /// A request whose answer has been awaited this long is reported as `.waiting`.
    public var waitingThreshold: TimeAmount = .seconds(1)

    public init(target: TargetAddress, mode: Mode) {
        self.target = target
        self.mode = mode
    }

    /// A tunnel name that stays the same across restarts on this machine, for this user
    /// and target, so an applied VirtualService keeps pointing at it: `USER-xxxxxx`.
    public static func defaultName(target: TargetAddress) -> String {
        let environment = ProcessInfo.processInfo.environment
        let user = environment["USER"] ?? environment["LOGNAME"] ?? "dev"
        let hasher = SHA256Hasher()
        hasher.update("\(ProcessInfo.processInfo.hostName)|\(user)|\(target)")
        let suffix = hasher.finalize().prefix(6)
        var label = String(user.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(40))
        label = label.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        if label.isEmpty || !(label.first?.isLetter ?? false) { label = "dev" + label }
        return "\(label)-\(suffix)"
    }
}

extension AgentConfiguration {
    /// The response field naming the tunnel that answered.
    public static let tunnelHeaderName = "x-pinhole-tunnel"

    /// The name responses carry: the tunnel's, or for the embedded relay the stable name
    /// this machine, user and target would have on a relay.
    public var tunnelName: String {
        switch mode {
        case .relay(let endpoint): return endpoint.name
        case .embedded: return Self.defaultName(target: target)
        }
    }
}

/// What the agent reports while it runs; the command turns these into terminal lines or JSON.
public enum AgentEvent: Sendable {
    case tunnelReady(TunnelInfo)
    case request(ExchangeRecord)
    /// The agent is about to dial the relay for the first time (`host:port`).
    case connecting(relay: String)
    /// A request has waited `waitingThreshold` for the app's answer (held at a
    /// breakpoint, say); its `.request` follows when it ends, with the same `waitingID`.
    case waiting(RequestWatch.Waiting)
    case disconnected(reason: String)
    case reconnecting(attempt: Int, delay: TimeAmount, reason: String)
    /// The relay said who shares the agent's service now (on joining, and whenever a
    /// developer joins or leaves).
    case serviceMembers(ServiceMembers)
}

/// Where the public reaches the tunnel.
public struct TunnelInfo: Sendable, Equatable {
    public var name: String?
    public var url: String
    /// Host and port to put in an Istio redirect.
    public var authority: String
    public var host: String
    public var port: Int
    /// Other URLs that reach the same tunnel (an embedded relay's other addresses).
    public var alternatives: [String]
    public var relay: String

    public init(
        name: String?, url: String, authority: String, host: String, port: Int, alternatives: [String] = [],
        relay: String
    ) {
        self.name = name
        self.url = url
        self.authority = authority
        self.host = host
        self.port = port
        self.alternatives = alternatives
        self.relay = relay
    }
}

/// Why the agent stopped for good.
public enum AgentError: Error, Sendable, CustomStringConvertible {
    /// The relay refused the tunnel (bad token, name taken, ...).
    case refused(RefusalReason, String)
    /// The relay's certificate failed verification; retrying would not change that.
    case untrustedRelay(String)
    case bindFailed(host: String, port: Int, reason: String)
    /// Another agent connected with the same name and token, and the relay gave it the tunnel.
    case replaced(name: String)

    public var description: String {
        switch self {
        case .refused(_, let message): return "the relay refused the tunnel: \(message)"
        case .untrustedRelay(let message): return "cannot trust the relay: \(message)"
        case .bindFailed(let host, let port, let reason):
            return "cannot listen for public HTTP on \(host):\(port): \(reason); choose another --public-port"
        case .replaced(let name):
            return "another agent connected to the relay as '\(name)' with the same token and took the tunnel over, "
                + "so this one stopped; run one agent per name, or give this one another --name"
        }
    }
}
