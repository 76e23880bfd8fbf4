import Foundation
import NIOCore
import PinholeCore
import PinholeHTTP2
import PinholeTLS

/// Everything a relay needs to run, checked when it is built.
public struct RelayConfiguration: Sendable {
    /// The address both listeners bind to.
    public var bindHost: String
    /// The shared public HTTP port: routes by Host (tunnel names under `domain`, and aliases).
    public var publicPort: Int
    /// Where agents connect, over TLS.
    public var agentPort: Int
    /// With a domain, tunnel `NAME` is reached as `NAME.domain` on the public port.
    public var domain: String?
    /// The relay's name or IP as the cluster sees it, used in the authority it hands out.
    public var publicHost: String?
    /// Without a domain, each tunnel gets a dedicated public port from this range.
    public var tunnelPorts: ClosedRange<Int>?
    /// Tokens agents may present. Never logged.
    public var tokens: [String]
    public var identity: TLSIdentity
    /// Tunnels connected (or connecting) at once, in all (`--max-tunnels`) and per token
    /// (`--max-tunnels-per-token`); an agent over either waits and retries.
    public var maxTunnels: Int = 1000
    public var maxTunnelsPerToken: Int = 32
    /// Names one token may own at once, connected or not (`--max-names-per-token`); a
    /// new name past it makes the relay forget the token's longest unused one.
    public var maxNamesPerToken: Int = 128
    /// Service aliases one hello may ask for (`--max-aliases`).
    public var maxAliases: Int = 16
    /// How long a name, its aliases and its dedicated port stay their token's once
    /// unused (`--forget-after`); nil for ever.
    public var forgetAfter: TimeAmount? = Self.defaultForgetAfter
    public static let defaultForgetAfter: TimeAmount = .hours(30 * 24)
    /// Where the registry (who owns which name, alias and port) is kept across restarts;
    /// nil keeps it in memory only. The command puts it beside `--cert`.
    public var registryPath: String?
    public static let registryFileName = "registry.json"
    public var keepaliveInterval: TimeAmount = .seconds(15)
    /// How long a disconnected agent's port and aliases stay out of reach of its token's
    /// other names (other tokens never get them; see `forgetAfter`).
    public var reservation: TimeAmount = Self.defaultReservation
    public static let defaultReservation: TimeAmount = .minutes(10)
    /// How long a connecting agent has to finish TLS and send its hello.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// No timeout by default: a request may sit at a breakpoint for as long as it takes.
    public var requestTimeout: TimeAmount?
    /// How long a public connection may carry no request before the relay closes it (nil: never).
    public var idleTimeout: TimeAmount? = PublicRequestHandler.defaultIdleTimeout
    public var http2 = HTTP2Configuration()
    /// With an identity, the public port(s) speak TLS with it, offering ALPN `h2` and
    /// `http/1.1` (`--public-tls`); without, plain HTTP/1.1 and h2c.
    public var publicTLS: TLSIdentity?

    /// The scheme public clients use: `https` behind `publicTLS`.
    public var publicScheme: String { publicTLS == nil ? "http" : "https" }
    /// Caps on public requests in flight (`--max-in-flight-per-address`,
    /// `--max-in-flight-per-tunnel`, `--in-flight-wait`; see `InFlightLimits`).
    public var inFlightCaps = InFlightLimits.Caps()
    /// `--stall-timeout` (see `PublicLimits`); nil for never.
    public var stallTimeout: TimeAmount? = PublicLimits.defaultStallTimeout
    /// Caps on open public connections, all public listeners together
    /// (`--max-connections`, `--max-connections-per-address`), and on agent connections
    /// (`--max-agent-connections`, `--max-agent-connections-per-address`): kept apart,
    /// so public clients can never take the places agents need.
    public var publicConnectionCaps = ConnectionLimits.Caps.publicDefault
    public var agentConnectionCaps = ConnectionLimits.Caps.agentDefault
    /// Token checks one address (IPv4) or /64 (IPv6) may have in any 5 s, however many
    /// connections it opens (`--token-checks`); further hellos are told to slow down.
    public var tokenChecksPer5Seconds = 10
    /// Tokens shorter than this are refused: a relay on the internet must not be
    /// guessable (the generated ones have 32 characters).
    public static let minimumTokenLength = 16

    public init(
        bindHost: String = "0.0.0.0", publicPort: Int = 8080, agentPort: Int = 4443, domain: String? = nil,
        publicHost: String? = nil, tunnelPorts: ClosedRange<Int>? = nil, tokens: [String], identity: TLSIdentity
    ) throws(RelayError) {
        self.bindHost = bindHost
        self.publicPort = publicPort
        self.agentPort = agentPort
        self.domain = domain?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        self.publicHost = publicHost
        self.tunnelPorts = tunnelPorts
        self.tokens = tokens
        self.identity = identity
        try validate()
    }

    /// Also run by `Relay.start()`, for fields set after `init`.
    func validate() throws(RelayError) {
        guard !tokens.isEmpty, tokens.allSatisfy({ !$0.isEmpty }) else {
            throw .configuration("the relay needs at least one non-empty agent token")
        }
        if let short = tokens.firstIndex(where: { $0.count < Self.minimumTokenLength }) {
            throw .configuration(
                "token \(short + 1) has \(tokens[short].count) characters; tokens need at least "
                    + "\(Self.minimumTokenLength) (leave them out and the relay makes one of 32)")
        }
        guard inFlightCaps.perAddress >= 1, inFlightCaps.perTunnel >= 1, inFlightCaps.waitLimit >= .zero else {
            throw .configuration("the caps on requests in flight must be at least 1, and the wait at least 0")
        }
        guard maxTunnels >= 1, maxTunnelsPerToken >= 1, maxAliases >= 0 else {
            throw .configuration(
                "--max-tunnels and --max-tunnels-per-token must be at least 1, --max-aliases 0 or more")
        }
        guard maxNamesPerToken >= maxTunnelsPerToken else {
            throw .configuration("--max-names-per-token must be at least --max-tunnels-per-token")
        }
        if let forgetAfter, forgetAfter <= .zero {
            throw .configuration("--forget-after must be at least 1 day (or 0 for never)")
        }
        for caps in [publicConnectionCaps, agentConnectionCaps] where caps.total < 1 || caps.perAddress < 1 {
            throw .configuration("the caps on open connections must be at least 1")
        }
        guard tokenChecksPer5Seconds >= 1 else {
            throw .configuration("--token-checks must be at least 1")
        }
        for port in [publicPort, agentPort] where !(0...65535).contains(port) {
            throw .configuration("port \(port) is out of range")
        }
        if let domain, let problem = DNS1123.subdomainViolation(domain) {
            throw .configuration("--domain \(domain): \(problem)")
        }
        guard domain != nil || tunnelPorts != nil else {
            throw .configuration("give --domain (tunnels as NAME.DOMAIN) or --tunnel-ports A-B (a port per tunnel)")
        }
        if let tunnelPorts {
            guard tunnelPorts.lowerBound >= 1, tunnelPorts.upperBound <= 65535 else {
                throw .configuration("--tunnel-ports must lie within 1-65535")
            }
            if tunnelPorts.contains(publicPort) || tunnelPorts.contains(agentPort) {
                throw .configuration("--tunnel-ports must not include the public or agent port")
            }
        }
    }
}

extension RelayConfiguration {
    /// A duration as a person says it: "30 days", "10 min", "90 s".
    public static func describe(_ amount: TimeAmount) -> String {
        let seconds = amount.nanoseconds / 1_000_000_000
        let day: Int64 = 24 * 3600
        if seconds >= day && seconds % day == 0 { return seconds == day ? "1 day" : "\(seconds / day) days" }
        return seconds >= 60 && seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds) s"
    }
}

/// Relay failures with a message a person can act on.
public enum RelayError: Error, Sendable, CustomStringConvertible {
    case configuration(String)
    /// A listener could not bind; `flag` is the option that sets its port.
    case bindFailed(what: String, host: String, port: Int, flag: String, reason: String)
    case certificate(String)

    public var description: String {
        switch self {
        case .configuration(let message): return message
        case .bindFailed(let what, let host, let port, let flag, let reason):
            return "cannot listen for \(what) on \(host):\(port): \(reason); choose another \(flag)"
        case .certificate(let message): return message
        }
    }
}
